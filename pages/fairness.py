"""Fairness: for whom does the model fail? Stored subgroup metrics and calibration with CIs, and a threshold
explorer."""

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app import cache, state
from app.inputs_panel import missing_for_groups
from app.widgets import choose_evaluation
from app.wording import criterion_verdict
from core.services import review
from core.services.input_review import inputs_view

user = state.viewer().user
st.title("Fairness")
st.caption("Computed by ModelBoard from the submitted model and evaluation data. Intervals: Wilson (proportions), "
           "DeLong (AUROC), 95 %.")
choice, evaluation = choose_evaluation(user, "Model version")
result, table = evaluation.result, review.subgroup_frame(evaluation)
outcome = str(result.get("outcome", "the outcome"))
outcome = outcome[:1].lower() + outcome[1:]
min_n = int(result.get("min_n", 100))

st.subheader("Use-case criteria")
for c in result["criteria"]:
    st.markdown(f"{criterion_verdict(c)} — **{c['criterion']}**: {c['observed']} (required {c['required']})")

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
for sentence in review.gap_sentences(evaluation, chosen):
    st.markdown("- " + sentence)
st.caption(f"Gaps count only groups of at least {min_n} patients.")

groups["judgement"] = groups["enough_patients"].map({True: "judged", False: "too few patients to judge"})
columns = ["group", "n", "positives", "prevalence", "sensitivity", "sensitivity_lo", "sensitivity_hi", "specificity",
           "ppv", "npv", "auroc", "auroc_lo", "auroc_hi", "selection_rate", "judgement"]
st.dataframe(groups[columns], hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.3f") for c in columns[3:-1]})
st.caption("Blank cells are undefined (for example no patient with the outcome in the group), never zero.")

inputs = inputs_view(evaluation)
if inputs is not None and inputs.gappy and chosen in set(inputs.shares["attribute"]):
    st.subheader(f"Missing inputs by {chosen}")
    missing_for_groups(inputs, chosen, min_n=min_n)

st.subheader("Calibration by group")
calibrated = review.calibration_by_group(evaluation, chosen)
if calibrated.empty:
    st.info("This evaluation was stored before per-group calibration existed: submit the version again to see it.")
else:
    fig = go.Figure()
    for enough, name, symbol in ((True, "observed (95 % CI)", "circle"),
                                 (False, "observed — too few patients to judge", "circle-open")):
        part = calibrated[calibrated["enough_patients"] == enough]
        fig.add_scatter(x=part["group"], y=part["observed_rate"], mode="markers", name=name,
                        marker={"symbol": symbol, "size": 10},
                        error_y={"type": "data", "symmetric": False,
                                 "array": part["observed_rate_hi"] - part["observed_rate"],
                                 "arrayminus": part["observed_rate"] - part["observed_rate_lo"]})
    fig.add_scatter(x=calibrated["group"], y=calibrated["mean_predicted"], mode="markers", name="predicted (mean)",
                    marker={"symbol": "diamond", "size": 10})
    fig.update_layout(title=f"Observed against predicted risk of {outcome} by {chosen}",
                      yaxis={"title": "share of patients", "rangemode": "tozero"})
    st.plotly_chart(fig, width="stretch")
    for _, row in calibrated.iterrows():
        st.markdown("- " + review.calibration_sentence(row, outcome))
    methods = result.get("subgroup_calibration_methods", {})
    fit_columns = [c for c in ("calibration_slope", "calibration_slope_lo", "calibration_slope_hi",
                               "calibration_intercept", "calibration_intercept_lo", "calibration_intercept_hi")
                   if c in calibrated]
    shown = ["group", "n", "mean_predicted", "observed_rate", "observed_expected", "observed_expected_lo",
             "observed_expected_hi", "ece", *fit_columns]
    st.dataframe(calibrated[shown], hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in shown[2:]})
    st.caption("Observed/expected: 1 means as many developed it as predicted, below 1 fewer (over-prediction). "
               "Slope ideal 1, intercept ideal 0; blank where a group has one outcome only or its outcomes are "
               "separated completely by the score. Methods: "
               + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in methods.items()))

st.subheader("Threshold explorer")
threshold = st.slider("Threshold", 0.01, 0.99, float(result["threshold"]), 0.01,
                      help="Patients whose predicted risk is at or above the threshold are flagged.")
view = cache.threshold_view(user, choice.evaluation_id, threshold=threshold, min_n=min_n, attribute_set=chosen,
                            outcome=outcome)
if view is not None:
    st.markdown(view.sentence)
    st.dataframe(view.groups[["group", "n", "tp", "fp", "fn", "tn", "sensitivity", "ppv", "alerts_per_100",
                              "judgement"]], hide_index=True, width="stretch",
                 column_config={"tp": "caught (TP)", "fp": "false alarms (FP)", "fn": "missed (FN)",
                                "tn": "left alone (TN)", "alerts_per_100": "alerts per 100 encounters"})
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("Sensitivity", "Alerts per 100"))
    for name, curve in view.curves.groupby("group", sort=False):
        dash = "dash" if name == "all patients" else "solid"
        fig.add_scatter(x=curve["threshold"], y=curve["sensitivity"], name=str(name), legendgroup=str(name),
                        line={"dash": dash}, row=1, col=1)
        fig.add_scatter(x=curve["threshold"], y=curve["alerts_per_100"], name=str(name), legendgroup=str(name),
                        line={"dash": dash}, showlegend=False, row=2, col=1)
    fig.add_vline(x=threshold, line_dash="dot")
    fig.update_layout(title=f"Sensitivity and alerts per 100 encounters by threshold, by {chosen}",
                      xaxis2_title="threshold")
    st.plotly_chart(fig, width="stretch")
    if view.left_out:
        st.caption(f"Not drawn, too few patients to judge (under {min_n}): {', '.join(view.left_out)}.")
