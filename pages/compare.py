"""Compare: the candidate against the version in production, on the same patients and threshold."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import state
from app.widgets import choose_evaluation
from core.domain.glossary import attribute
from core.metrics.comparison import SHOWN, gaps_in_words, groups_in_words, metric_sentences, metrics_in_words

user = state.viewer().user
st.title("Compare")
choice, evaluation = choose_evaluation(user, "Candidate")
comparison = evaluation.result.get("comparison") or {}
if not comparison.get("available"):
    st.info(f"No comparison: {comparison.get('reason', 'this evaluation predates comparisons')}.")
    st.stop()
prod = comparison["production_version"]
outcome = str(evaluation.result.get("outcome", "the outcome"))
outcome = outcome[:1].lower() + outcome[1:]
st.caption(f"Candidate v{choice.version} against v{prod}, which was in clinical use when the candidate was "
           f"evaluated; both flag a patient at a risk of {comparison['threshold']:.2f} or more, on the same patients. "
           "Each change comes with a 95 % interval: the range the true change plausibly lies in.",
           help=f"Intervals: {comparison['method']}.")

metrics = pd.DataFrame(comparison["metrics"])
st.dataframe(metrics_in_words(metrics), hide_index=True, width="stretch")
for sentence in metric_sentences(metrics, outcome):
    st.markdown("- " + sentence)

shown = metrics[metrics["metric"] != "alerts_per_1000"]
scale = 100.0  # rates in percentage points, AUROC × 100, on one axis
fig = go.Figure()
fig.add_scatter(x=shown["difference"] * scale, y=shown["metric"].map(lambda m: SHOWN[m][0]), mode="markers",
                error_x={"type": "data", "symmetric": False, "array": (shown["hi"] - shown["difference"]) * scale,
                         "arrayminus": (shown["difference"] - shown["lo"]) * scale}, name="candidate − production")
fig.add_vline(x=0, line_dash="dash")
fig.update_layout(title="Change with its 95 % interval (right of the line: the candidate is higher)",
                  xaxis_title="candidate minus production (percentage points; AUROC × 100)", showlegend=False)
st.plotly_chart(fig, width="stretch")

flips = comparison["flips"]
st.subheader("Patients whose decision flips")
st.markdown(f"Of {sum(flips.values()):,} patients, {flips['unchanged']:,} get the same decision from both versions.")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Newly caught", flips["newly_caught"])
c1.caption("Developed the outcome; flagged only by the candidate.")
c2.metric("Newly missed", flips["newly_missed"])
c2.caption("Developed the outcome; flagged only by production.")
c3.metric("New false alarms", flips["new_false_alarms"])
c3.caption("Did not develop it; flagged only by the candidate.")
c4.metric("False alarms removed", flips["false_alarms_removed"])
c4.caption("Did not develop it; flagged only by production.")

st.subheader("Groups of patients")
gaps = pd.DataFrame(comparison["gaps"])
if not gaps.empty:
    st.dataframe(gaps_in_words(gaps, attribute), hide_index=True, width="stretch")
    st.caption("Gap = the best group's sensitivity minus the worst group's, among groups with enough patients to "
               "judge; a positive change means the candidate treats groups less equally.")
st.dataframe(groups_in_words(pd.DataFrame(comparison["subgroups"]), attribute), hide_index=True, width="stretch")
st.caption("Sensitivity and specificity per 100 patients of the group; change in percentage points of sensitivity.")
