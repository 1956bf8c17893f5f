"""Explanations: what pushes the model's risk up or down, overall and for one patient, from the SHAP values
ModelBoard computed once per evaluation; effects in percentage points of risk where the model allows it."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import cache, state
from app.widgets import choose_evaluation
from core.domain.glossary import attribute as attribute_words
from core.services import review

METHOD_TOGGLE = "Show the method (for data scientists)"
user = state.viewer().user
st.title("Explanations")
choice, evaluation = choose_evaluation(user, "Model version")
glossary = cache.glossary(user, choice.model)
view = review.explanation_view(evaluation, glossary)
if view is None:
    st.info("This evaluation was stored without explanations; submit the version again to compute them.")
    st.stop()
scale = view.scale
st.caption(f"How much each input pushed the predicted risk up or down, in {scale}. A positive effect raises the "
           "risk, a negative one lowers it. These describe the model, not the patient's physiology.",
           help="Raw input names are shown when you hover over a bar or a dot.")
if st.toggle(METHOD_TOGGLE):
    st.code(view.method_note, language=None)

st.subheader("What drives the model's risk overall")
top = view.importance.head(10).iloc[::-1]
fig = px.bar(top, x="effect", y="name", orientation="h", custom_data=["feature"],
             title=f"Average influence on the risk ({scale}, ignoring direction)",
             labels={"effect": f"average influence ({scale})", "name": ""})
fig.update_traces(hovertemplate="%{y}: %{x:.2f}<br>input %{customdata[0]}<extra></extra>")
st.plotly_chart(fig, width="stretch")
leader = view.importance.iloc[0]
unit = " percentage points" if view.in_points else ""
st.markdown(f"The strongest driver is **{leader['name']}**: on average it moves a patient's risk by "
            f"{leader['effect']:.1f}{unit}, up or down.")

order = list(top["name"][::-1])
swarm = view.swarm[view.swarm["feature"].isin(top["feature"])]
fig = px.scatter(swarm, x="effect", y="name", color="value_rank", opacity=0.5, custom_data=["feature"],
                 color_continuous_scale="RdBu_r", category_orders={"name": order},
                 title="Each dot is a patient: how their value pushed the risk up or down",
                 labels={"effect": f"effect on the risk ({scale})", "value_rank": "the patient's value (low → high)",
                         "name": ""})
fig.update_traces(hovertemplate="%{x:.2f}<br>input %{customdata[0]}<extra></extra>")
st.plotly_chart(fig, width="stretch")
st.caption("Colour shows where the patient's value stands among these patients (blue low, red high); grey: not "
           "recorded. Right of zero the input raised the risk, left of it lowered it.")

attributes = sorted(view.by_group["attribute"].unique()) if not view.by_group.empty else []
if attributes:
    attribute = st.selectbox("Compare groups by", attributes, format_func=attribute_words)
    words = attribute_words(attribute)
    groups = view.by_group[(view.by_group["attribute"] == attribute) & view.by_group["feature"].isin(top["feature"])]
    fig = px.bar(groups, x="name", y="share", color="group", barmode="group", custom_data=["feature"],
                 title=f"Does the model lean on the same inputs in every group? ({words})",
                 labels={"name": "", "share": "share of the group's total influence", "group": words})
    fig.update_layout(yaxis_tickformat=".0%")
    st.plotly_chart(fig, width="stretch")
    st.caption("Bars of similar height in every group: the model relies on the same inputs for all of them.")

st.subheader("One patient: what pushed this patient's risk up or down")
kinds = sorted(view.patients["kind"].unique())
kind = st.selectbox("Show", kinds, index=kinds.index(next((k for k in kinds if k.startswith("missed")), kinds[0])))
candidates = view.patients[view.patients["kind"] == kind]
patient = st.selectbox("Patient (encounter)", candidates["encounter_id"].tolist())
explained = review.patient_explanation(evaluation, patient, view, glossary)
rows = explained.rows
fig = go.Figure(go.Waterfall(orientation="h", y=[*rows["label"], "Predicted risk" if view.in_points else "Output"],
                             x=[*rows["effect"], 0], base=explained.start,
                             measure=["relative"] * len(rows) + ["total"], textposition="outside",
                             text=[*(f"{v:+.1f}" for v in rows["effect"]), f"{explained.end:.1f}"],
                             customdata=[*rows["feature"], ""],
                             hovertemplate="%{y}: %{text}<br>input %{customdata}<extra></extra>"))
fig.update_layout(title=f"What pushed the risk of {patient} up or down ({scale})",
                  xaxis_title="predicted risk (%)" if view.in_points else "the model's output",
                  yaxis={"autorange": "reversed"}, showlegend=False)
st.plotly_chart(fig, width="stretch")
st.caption(explained.sentence)
