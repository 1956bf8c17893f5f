"""Model registry: registered models, their versions, and one version's lineage."""

import pandas as pd
import plotly.express as px
import streamlit as st

from app import cache, state
from app.wording import METRIC_NAMES, explain, plain
from core.domain.glossary import words
from core.domain.models import KEY_METRICS
from core.services.audit import HEX, short_id

# Run metrics and counts MLflow runs commonly log, in words; anything else is its name put into words.
RUN_METRICS = METRIC_NAMES | {"n_derivation": "Patients in the derivation cohort (training)",
                              "n_validation": "Patients in the validation cohort (evaluation)",
                              "decision_threshold": "Decision threshold", "val_prevalence": "How common (validation)",
                              "val_ece": "Calibration error (validation)"}


def _metric_text(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 10 else f"{value:.3f}"


def _hex_short(text: str) -> str:
    return HEX.sub(lambda m: short_id(m.group(0)), text)


user = state.viewer().user
st.title("Model registry")
st.caption("Read live from MLflow, the source of truth for models. ModelBoard never copies the registry.")

models = cache.models(user)
if not models:
    st.info("No models are registered in MLflow yet. A data scientist registers them with the MLflow API.")
    st.stop()

names = [m.name for m in models]
asked = st.query_params.get("model")
model_name = st.selectbox("Registered model", names, index=names.index(asked) if asked in names else 0)
model = next(m for m in models if m.name == model_name)
st.write(plain(model.description) if model.description else "No description was given for this model.")
st.caption(" · ".join(f"alias **{a}** → version {v}" for a, v in sorted(model.aliases.items())) or "No aliases set.")

versions = cache.versions(user, model_name)
st.subheader("Versions")
st.caption("Metrics below were **reported by the model's authors** when they logged the run in MLflow. "
           "ModelBoard has not verified them; its own evaluation comes with clinical review.")
table = pd.DataFrame([{
    "Version": v.version,
    "Aliases": ", ".join(v.aliases) or "—",
    "Status": v.status_label,
    **{METRIC_NAMES[k]: _metric_text(v.key_metrics.get(k)) for k in KEY_METRICS},
    "Logged by": v.logged_by or "—",
    "Logged at (UTC)": f"{v.created_at:%d %b %Y %H:%M}",
} for v in versions])
st.dataframe(table, hide_index=True, width="stretch")

chart_rows = [{"Version": f"v{v.version}", "Metric": METRIC_NAMES[k], "Value": v.key_metrics[k]}
              for v in versions for k in KEY_METRICS if k in v.key_metrics and k != "val_brier"]
if chart_rows:
    fig = px.bar(pd.DataFrame(chart_rows), x="Metric", y="Value", color="Version", barmode="group",
                 range_y=[0, 1], title="Reported validation metrics by version (higher is better)")
    st.plotly_chart(fig, width="stretch")

st.subheader("Version detail")
numbers = [v.version for v in versions]
asked_version = st.query_params.get("version")
asked_number = int(asked_version) if asked_version and asked_version.isdigit() else None
default = numbers.index(asked_number) if asked_number in numbers else 0
version = st.selectbox("Version", numbers, index=default, format_func=lambda n: f"v{n}")
detail = cache.version_detail(user, model_name, version)
summary = detail.summary
role = "in clinical use (alias 'production')" if "production" in summary.aliases else summary.status_label.lower()
st.markdown(f"#### {model_name} v{version} — {role}")
st.write(plain(summary.description) if summary.description else "No description was given for this version.")

outcome = plain(detail.params.get("outcome", "the outcome"))  # a run parameter: free text
cols = st.columns(len(KEY_METRICS))
for col, key in zip(cols, KEY_METRICS, strict=False):
    if key in detail.metrics:
        col.metric(METRIC_NAMES[key], f"{detail.metrics[key]:.3f}")
        col.caption(explain(key, detail.metrics[key], outcome))

lineage, metrics, raw = st.tabs(["Lineage", "All metrics", "Parameters and tags (for data scientists)"])
with lineage:
    st.dataframe(pd.DataFrame([
        {"Fact": "Run", "Value": short_id(summary.run_id) or "—"},
        {"Fact": "Run name", "Value": detail.run_name or "—"},
        {"Fact": "Logged by", "Value": summary.logged_by or "—"},
        {"Fact": "Logged at (UTC)", "Value": f"{summary.created_at:%d %b %Y %H:%M}"},
        {"Fact": "Git commit of the training code", "Value": short_id(detail.git_commit) or "not logged"},
        {"Fact": "Model artifact source", "Value": _hex_short(detail.source)},
    ]), hide_index=True, width="stretch")
    st.caption("Ids are shortened to 8 characters; the full run id, commit and source are under 'Parameters and "
               "tags'.")
    st.markdown("**Datasets logged with the run** (derivation cohort = training, validation cohort = evaluation)")
    if detail.datasets:
        st.dataframe(pd.DataFrame([{"Used for": words(d.context), "Name": d.name, "Fingerprint": short_id(d.digest),
                                    "Rows": f"{d.rows:,}" if d.rows is not None else "—",
                                    "Source": words(d.source_type)} for d in detail.datasets]),
                     hide_index=True, width="stretch")
    else:
        st.caption("No dataset was logged with this run.")
with metrics:
    st.dataframe(pd.DataFrame([{"Metric": RUN_METRICS.get(k, words(k)), "Value": _metric_text(v)}
                               for k, v in sorted(detail.metrics.items())], columns=["Metric", "Value"]),
                 hide_index=True, width="stretch")
    st.caption("As logged by the model's authors in MLflow; raw names are under 'Parameters and tags'.")
with raw:
    st.caption("As MLflow stores them, for matching this page to the training code.")
    ids = {"run_id": summary.run_id, "git_commit": detail.git_commit, "source": detail.source}
    st.code("\n".join(f"{k} = {v}" for k, v in ids.items()), language="text")
    st.markdown("**Parameters**")
    st.code("\n".join(f"{k} = {v}" for k, v in sorted(detail.params.items())) or "(none)", language="text")
    st.markdown("**Metrics**")
    st.code("\n".join(f"{k} = {v}" for k, v in sorted(detail.metrics.items())) or "(none)", language="text")
    st.markdown("**Tags**")
    tags = [f"version  {k} = {v}" for k, v in sorted(detail.version_tags.items())]
    tags += [f"run      {k} = {v}" for k, v in sorted(detail.run_tags.items())]
    st.code("\n".join(tags) or "(none)", language="text")
    if detail.datasets:
        st.markdown("**Datasets**")
        st.code("\n".join(f"{d.context}  {d.name}  {d.digest}  {d.source_type}" for d in detail.datasets),
                language="text")
