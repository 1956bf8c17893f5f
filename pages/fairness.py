"""Fairness: for whom does the model fail? Stored subgroup metrics with CIs, and a threshold explorer."""

import plotly.graph_objects as go
import streamlit as st

from app import cache, state
from app.widgets import choose_evaluation
from app.wording import verdict
from core.services import review

user = state.viewer().user
store = cache.store()
st.title("Fairness")
st.caption("Computed by ModelBoard from the submitted model and evaluation data. Intervals: Wilson (proportions), "
           "DeLong (AUROC), 95 %.")
choice, evaluation = choose_evaluation(user, "Model version")
result, table = evaluation.result, review.subgroup_frame(evaluation)
outcome = str(result.get("outcome", "the outcome"))
outcome = outcome[:1].lower() + outcome[1:]

st.subheader("Use-case criteria")
for c in result["criteria"]:
    st.markdown(f"{verdict(c['passed'])} — **{c['criterion']}**: {c['observed']} (required {c['required']})")

overall = table[table["attribute_set"] == "overall"].iloc[0]
sets = [s for s in table["attribute_set"].unique() if s != "overall"]
chosen = st.selectbox("Compare groups by", sets, help="Single attributes first, then pairwise intersections.")
groups = table[table["attribute_set"] == chosen].reset_index(drop=True)

fig = go.Figure()
judged = groups[groups["enough_patients"]]
fig.add_bar(x=judged["group"], y=judged["sensitivity"], name="Sensitivity",
            error_y={"type": "data", "symmetric": False, "array": judged["sensitivity_hi"] - judged["sensitivity"],
                     "arrayminus": judged["sensitivity"] - judged["sensitivity_lo"]})
small = groups[~groups["enough_patients"]]
fig.add_bar(x=small["group"], y=small["sensitivity"].fillna(0), name="Too few patients to judge",
            marker_pattern_shape="/", opacity=0.4)
fig.add_hline(y=overall["sensitivity"], line_dash="dash", annotation_text="all patients")
fig.update_layout(title=f"Sensitivity by {chosen} at threshold {result['threshold']:.2f} (95 % CI)",
                  yaxis={"range": [0, 1], "title": "share of patients with the outcome who were flagged"})
st.plotly_chart(fig, width="stretch")

st.markdown(f"Of 100 patients who developed {outcome}, the model flagged **{overall['sensitivity'] * 100:.0f}**.")
for _, row in groups.iterrows():
    st.markdown("- " + review.natural_frequency(row, outcome))

groups["judgement"] = groups["enough_patients"].map({True: "judged", False: "too few patients to judge"})
columns = ["group", "n", "positives", "prevalence", "sensitivity", "sensitivity_lo", "sensitivity_hi", "specificity",
           "ppv", "npv", "auroc", "auroc_lo", "auroc_hi", "selection_rate", "judgement"]
st.dataframe(groups[columns], hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.3f") for c in columns[3:-1]})
st.caption("Blank cells are undefined (for example no patient with the outcome in the group), never zero.")

st.subheader("Threshold explorer")
threshold = st.slider("Threshold", 0.01, 0.99, float(result["threshold"]), 0.01,
                      help="Patients whose predicted risk is at or above the threshold are flagged.")
min_n = int(result.get("min_n", 100))
explored = review.explore_threshold(store, user, choice.evaluation_id, threshold, min_n)
if not explored.empty:
    view = explored[explored["attribute_set"].isin(["overall", chosen.split(" × ")[0]])]
    st.dataframe(view[["attribute_set", "group", "n", "tp", "fp", "fn", "tn", "sensitivity", "ppv",
                       "alerts_per_100"]], hide_index=True, width="stretch")
    first = view.iloc[0]
    st.markdown(f"At {threshold:.2f}: of 100 patients who developed {outcome}, the model flags "
                f"{first['sensitivity'] * 100:.0f}, raising about {first['alerts_per_100']:.0f} alerts per 100 "
                "admissions.")
