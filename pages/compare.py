"""Compare: the candidate against the version in production, on the same patients and threshold."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import state
from app.widgets import choose_evaluation

NAMES = {"auroc": "AUROC", "sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV",
         "alerts_per_1000": "Alerts per 1,000 admissions"}
user = state.viewer().user
st.title("Compare")
choice, evaluation = choose_evaluation(user, "Candidate")
comparison = evaluation.result.get("comparison") or {}
if not comparison.get("available"):
    st.info(f"No comparison: {comparison.get('reason', 'this evaluation predates comparisons')}.")
    st.stop()
prod = comparison["production_version"]
st.caption(f"Candidate v{choice.version} against v{prod}, which held 'production' when the candidate was evaluated; "
           f"both at threshold {comparison['threshold']:.2f} on the same patients. Intervals: {comparison['method']}.")

metrics = pd.DataFrame(comparison["metrics"])
fig = go.Figure()
shown = metrics[metrics["metric"] != "alerts_per_1000"]
fig.add_scatter(x=shown["difference"], y=shown["metric"].map(NAMES), mode="markers",
                error_x={"type": "data", "symmetric": False, "array": shown["hi"] - shown["difference"],
                         "arrayminus": shown["difference"] - shown["lo"]}, name="candidate − production")
fig.add_vline(x=0, line_dash="dash")
fig.update_layout(title="Difference with 95 % interval (right of the line: the candidate is higher)",
                  xaxis_title="candidate minus production")
st.plotly_chart(fig, width="stretch")
for _, m in metrics.iterrows():
    unchanged = m["lo"] <= 0 <= m["hi"]
    clear = " — the interval includes no change" if unchanged else " — a real change: the interval excludes zero"
    st.markdown(f"- **{NAMES[m['metric']]}**: {m['production']:.3f} → {m['candidate']:.3f} "
                f"({m['difference']:+.3f}; 95 % interval {m['lo']:+.3f} to {m['hi']:+.3f}){clear}")

flips = comparison["flips"]
st.subheader("Patients whose decision flips")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Newly caught", flips["newly_caught"])
c1.caption("Developed the outcome; flagged only by the candidate.")
c2.metric("Newly missed", flips["newly_missed"])
c2.caption("Developed the outcome; flagged only by production.")
c3.metric("New false alarms", flips["new_false_alarms"])
c3.caption("Did not develop it; flagged only by the candidate.")
c4.metric("False alarms removed", flips["false_alarms_removed"])
c4.caption("Did not develop it; flagged only by production.")

st.subheader("Subgroups")
gaps = pd.DataFrame(comparison["gaps"])
if not gaps.empty:
    st.dataframe(gaps.rename(columns={"attribute_set": "attribute", "gap_candidate": "sensitivity gap, candidate",
                                      "gap_production": "sensitivity gap, production", "gap_change": "change"}),
                 hide_index=True, width="stretch")
    st.caption("Gap = best minus worst group sensitivity among groups with enough patients; a positive change "
               "means the candidate treats groups less equally.")
groups = pd.DataFrame(comparison["subgroups"])
st.dataframe(groups[groups["attribute_set"] != "overall"], hide_index=True, width="stretch")
