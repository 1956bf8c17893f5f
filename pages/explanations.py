"""Explanations: why the model decides, from SHAP values ModelBoard computed once per evaluation."""

import math

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import state
from app.widgets import choose_evaluation
from core.services import review

user = state.viewer().user
st.title("Explanations")
choice, evaluation = choose_evaluation(user, "Model version")
view = review.explanation_view(evaluation)
if view is None:
    st.info("This evaluation was stored without explanations; submit the version again to compute them.")
    st.stop()
st.caption(f"SHAP values by {view.method}, in {view.units}; background: {view.background}. A positive value "
           "pushes the patient's risk up, a negative one down.")

top = view.importance.head(10).iloc[::-1]
st.plotly_chart(px.bar(top, x="mean_abs_shap", y="feature", orientation="h",
                       title="What drives the model overall (mean |SHAP|)",
                       labels={"mean_abs_shap": f"average impact on the prediction ({view.units})", "feature": ""}),
                width="stretch")
leader = view.importance.iloc[0]
st.markdown(f"The strongest driver is **{leader['feature']}**.")

swarm = view.swarm[view.swarm["feature"].isin(top["feature"])]
fig = px.scatter(swarm, x="shap", y="feature", color="value_rank", opacity=0.5,
                 color_continuous_scale="RdBu_r", category_orders={"feature": list(top["feature"][::-1])},
               title="Each dot is a patient: where their value pushed the prediction",
                 labels={"shap": f"SHAP value ({view.units})", "value_rank": "input value (low → high)",
                         "feature": ""})
st.plotly_chart(fig, width="stretch")

attribute = st.selectbox("Mean |SHAP| by group of", sorted(view.by_group["attribute"].unique()))
groups = view.by_group[(view.by_group["attribute"] == attribute) & view.by_group["feature"].isin(top["feature"])]
st.plotly_chart(px.bar(groups, x="feature", y="mean_abs_shap", color="group", barmode="group",
                       title=f"Does the model lean on the same inputs for every {attribute} group?"),
                width="stretch")

st.subheader("One patient")
kinds = sorted(view.patients["kind"].unique())
kind = st.selectbox("Show", kinds, index=kinds.index(next((k for k in kinds if k.startswith("missed")), kinds[0])))
candidates = view.patients[view.patients["kind"] == kind]
patient = st.selectbox("Patient (encounter)", candidates["encounter_id"].tolist())
row = candidates[candidates["encounter_id"] == patient].iloc[0]
parts = review.patient_contributions(evaluation, patient)
labels = [f"{f} = {review.format_value(v)}" for f, v in zip(parts["feature"], parts["value"], strict=True)]
fig = go.Figure(go.Waterfall(orientation="h", y=labels, x=parts["shap"], base=view.base_value))
fig.update_layout(title=f"Why {patient} scored {row['score']:.2f}", xaxis_title=f"prediction ({view.units})",
                  yaxis={"autorange": "reversed"})
st.plotly_chart(fig, width="stretch")
final = view.base_value + parts["shap"].sum()
risk = 1 / (1 + math.exp(-final)) if view.units == "log-odds" else final
st.caption(f"Starting from the average prediction, each input moves this patient's prediction; the end point "
           f"corresponds to a risk of {risk:.0%}. Outcome: {kind}.")
