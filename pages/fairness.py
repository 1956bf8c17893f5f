"""Fairness: for whom does the model fail? It opens on the finding (the group with the largest clinically relevant
gap), then stored subgroup metrics and calibration with CIs, and a threshold explorer."""

import pandas as pd
import streamlit as st

from app import cache, state
from app.fairness_view import (
    calibration_figure,
    calibration_table,
    column_help,
    methods_caption,
    sensitivity_figure,
    subgroup_table,
    threshold_figure,
    threshold_table,
)
from app.inputs_panel import missing_for_groups
from app.navigation import page_file
from app.widgets import choose_evaluation
from app.wording import criterion_verdict, plain
from core.domain.criteria import criterion_words
from core.domain.glossary import attribute
from core.services import findings, review
from core.services.input_review import inputs_view


def show(frame: pd.DataFrame) -> None:
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={c: st.column_config.TextColumn(c, help=h) for c, h in column_help(list(frame)).items()})


user = state.viewer().user
st.title("Fairness")
st.caption("Computed by ModelBoard from the submitted model and evaluation data. Intervals: Wilson (proportions), "
           "DeLong (AUROC), 95 %.")
choice, evaluation = choose_evaluation(user, "Model version")
result, table = evaluation.result, review.subgroup_frame(evaluation)
outcome = findings.outcome_words(str(result.get("outcome", "")))
min_n = int(result.get("min_n", 100))
found = findings.evaluation_review(cache.store(), user, choice.evaluation_id)

finding = found.finding
if finding is not None and finding.clinically_relevant:
    st.warning(plain(found.headline), icon=":material/groups:")
    if finding.calibration:
        st.markdown(plain(finding.calibration))
    if found.also_below_sentence():
        st.markdown(plain(str(found.also_below_sentence())))
    if finding.cause:
        st.markdown(f":material/description: A cause is documented on the model card, under "
                    f"**{finding.cause.label}**: “{plain(finding.cause.text)}”")
        st.page_link(page_file("model_card.py"), label=f"Open the model card of {choice.model} v{choice.version}",
                     icon=":material/arrow_forward:",
                     query_params={"model": choice.model, "version": str(choice.version)})
    else:
        st.caption("The model card records no known cause for this group.")
else:
    st.info(plain(found.headline), icon=":material/groups:")

st.subheader("Use-case criteria")
for c in result["criteria"]:
    words = criterion_words(c)
    st.markdown(f"{criterion_verdict(c)} — **{words.name}**: {plain(words.observed)} (required {words.required})")

overall = table[table["attribute_set"] == "overall"].iloc[0]
sets = [s for s in table["attribute_set"].unique() if s != "overall"]
chosen = st.selectbox("Compare groups by", sets, index=sets.index(found.attribute) if found.attribute in sets else 0,
                      format_func=attribute, key=f"groups-{choice.evaluation_id}",
                      help="Opens on the attribute with the largest gap. Single attributes first, then pairs.")
groups = table[table["attribute_set"] == chosen].reset_index(drop=True)
words = attribute(chosen).lower()
worst = finding.worst.group if finding is not None and finding.attribute == chosen \
    else findings.lowest_group(table, chosen, min_n)
st.plotly_chart(sensitivity_figure(groups, float(overall["sensitivity"]), worst,
                                   f"Sensitivity by {words} at threshold {result['threshold']:.2f} (95 % CI)"),
                width="stretch")
if worst is not None:
    st.caption(f"Highlighted (orange, crossed, labelled “lowest”): {plain(worst)}, the judged group with the lowest "
               "sensitivity; other groups grey.")

st.markdown(f"Of 100 patients who developed {outcome}, the model flagged **{overall['sensitivity'] * 100:.0f}**.")
for _, row in groups.iterrows():
    st.markdown("- " + plain(review.natural_frequency(row, outcome)))
for sentence in review.gap_sentences(evaluation, chosen):
    st.markdown("- " + plain(sentence))
st.caption(f"Gaps count only groups of at least {min_n} patients.")
show(subgroup_table(groups))
st.caption("“—”: undefined (for example no patient with the outcome in the group), never zero.")

inputs = inputs_view(evaluation)
if inputs is not None and inputs.gappy and chosen in set(inputs.shares["attribute"]):
    st.subheader(f"Missing inputs by {words}")
    missing_for_groups(inputs, chosen, min_n=min_n, names=cache.glossary(user, choice.model).input_name)

st.subheader("Calibration by group")
calibrated = review.calibration_by_group(evaluation, chosen)
if calibrated.empty:
    st.info("This evaluation was stored before per-group calibration existed: submit the version again to see it.")
else:
    st.plotly_chart(calibration_figure(calibrated, f"Observed against predicted risk of {outcome} by {words}"),
                    width="stretch")
    for _, row in calibrated.iterrows():
        st.markdown("- " + plain(review.calibration_sentence(row, outcome)))
    show(calibration_table(calibrated))
    st.caption("Observed / predicted: 1 means as many developed it as predicted, below 1 fewer (over-prediction). "
               "Slope ideal 1, intercept ideal 0; “—” where a group has one outcome only or its outcomes are "
               "separated completely by the score. Methods: "
               + methods_caption(result.get("subgroup_calibration_methods", {})))

st.subheader("Threshold explorer")
threshold = st.slider("Threshold", 0.01, 0.99, float(result["threshold"]), 0.01,
                      help="Patients whose predicted risk is at or above the threshold are flagged.")
view = cache.threshold_view(user, choice.evaluation_id, threshold=threshold, min_n=min_n, attribute_set=chosen,
                            outcome=outcome)
if view is not None:
    st.markdown(plain(view.sentence))
    show(threshold_table(view.groups))
    st.plotly_chart(threshold_figure(view.curves, threshold,
                                     f"Sensitivity and alerts per 100 patients by threshold, by {words}"),
                    width="stretch")
    if view.left_out:
        st.caption(f"Not drawn, too few patients to judge (under {min_n}): {plain(', '.join(view.left_out))}.")
