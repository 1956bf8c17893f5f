"""Performance: ModelBoard's own evaluation of a version — metrics with intervals, calibration,
decision curve, speed and robustness — in clinical words."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import cache, state
from app.widgets import choose_evaluation
from app.wording import (
    calibration_lines,
    calibration_methods,
    inputs_in_words,
    performance_rows,
    robustness_rows,
    scoring_words,
)
from core.domain.glossary import per100
from core.services.input_review import inputs_view

METHOD_TOGGLE = "Show the method (for data scientists)"
user = state.viewer().user
st.title("Performance")
choice, evaluation = choose_evaluation(user)
glossary = cache.glossary(user, choice.model)
result = evaluation.result
outcome = str(result.get("outcome", "the outcome"))
outcome = outcome[:1].lower() + outcome[1:]
detail = result["overall_detail"]
st.caption(f"Evaluated by ModelBoard on {result['n']:,} patients ({result['data_source']}), flagging a patient at a "
           f"risk of {result['threshold']} or more: {detail['alerts_per_100']:.0f} alerts per 100 admissions; "
           f"{per100(detail['prevalence'])} patients developed {outcome}.")
scoring = result.get("scoring") or {}
inputs = inputs_view(evaluation)
if scoring:
    st.caption(":material/verified: " + scoring_words(scoring, outcome)
               + (" Inputs were read from the model's logged input example (it has no signature)."
                  if inputs is not None and inputs.inputs_from == "input example" else ""),
               help=str(scoring.get("sentence", "")))
if inputs is not None and inputs.complete_case:
    st.warning(inputs.complete_case, icon=":material/person_remove:")
methods = st.toggle(METHOD_TOGGLE)
if methods:
    st.code(f"{scoring.get('sentence', '')}\n{calibration_methods(result['calibration'])}", language=None)

st.dataframe(performance_rows(detail, outcome, methods=methods), hide_index=True, width="stretch")

cal = result["calibration"]
curve = pd.DataFrame(cal["curve"])
fig = go.Figure()
fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash"}, name="perfect calibration")
fig.add_scatter(x=curve["mean_predicted"], y=curve["observed_rate"], mode="lines+markers", name="this model",
                text=curve["count"], hovertemplate="predicted %{x:.0%}, observed %{y:.0%} (%{text} patients)")
fig.update_layout(title="Calibration: when the model says x %, how many develop it?",
                  xaxis={"title": "predicted risk", "tickformat": ".0%"},
                  yaxis={"title": "share who developed it", "tickformat": ".0%"})
st.plotly_chart(fig, width="stretch")
for line in calibration_lines(cal, outcome):
    st.markdown(line)

dca = pd.DataFrame(result["decision_curve"])
dca = dca[dca["threshold"] <= 0.5]
fig = go.Figure()
for column, name in (("net_benefit_model", "use the model"), ("net_benefit_treat_all", "treat everyone"),
                     ("net_benefit_treat_none", "treat no one")):
    fig.add_scatter(x=dca["threshold"], y=dca[column], mode="lines", name=name)
fig.add_vline(x=result["threshold"], line_dash="dot", annotation_text="use-case threshold")
fig.update_layout(title="Decision curve: net benefit by threshold (Vickers & Elkin 2006)",
                  xaxis_title="threshold probability", yaxis_title="net benefit", yaxis={"rangemode": "tozero"})
st.plotly_chart(fig, width="stretch")
st.caption("Where the model's line is above both others, acting on it does more good than treating everyone or no one.")

latency = result["latency"]
st.markdown(f"**Speed:** one patient scored in {latency['median_ms']:.1f} ms (median), {latency['p95_ms']:.1f} ms "
            f"(95th percentile); all {latency['rows']:,} in {latency['batch_seconds']:.2f} s.")

if inputs is not None:
    st.markdown("**The model's inputs, as the evaluation data gave them** (types from the model's signature; "
                "missing values were passed to the model as missing, never filled in):")
    st.dataframe(inputs_in_words(inputs.table, glossary), hide_index=True, width="stretch")
    for sentence in inputs.flagged:
        st.markdown("- " + sentence)
    if methods:
        st.code("\n".join(f"{raw}: {glossary.input(str(raw)).with_unit()}" for raw in inputs.table["Input"]),
                language=None)

robust, errors = robustness_rows(result["robustness"], glossary)
st.markdown("**Robustness:** what happens to the predicted risk when an input is missing, far outside the range "
            "seen, or a category the model never saw? (200 patients, one input changed at a time)")
st.dataframe(robust, hide_index=True, width="stretch")
if errors:
    with st.expander("The errors the model raised (for data scientists)"):
        st.code("\n\n".join(errors), language=None)
