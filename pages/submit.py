"""Submit (data scientists): send a registered version for clinical review; see past submissions."""

import streamlit as st

from app import cache, state
from app.wording import verdict
from core.errors import NotFound, ValidationError
from core.services.packaged_model import submit_packaged_upload
from core.services.submission import EvaluationFailed, SubmissionRequest, submissions_by, submit_upload, submit_version
from core.services.usecases import use_case_for_model

user = state.viewer().user
st.title("Submit")
st.caption("ModelBoard evaluates the version itself, in a separate worker process, on the evaluation data you give.")

models = [m.name for m in cache.models(user)]
if not models:
    st.info("No registered models yet: register one in MLflow first.")
    st.stop()
model = st.selectbox("Registered model", models)
versions = [v.version for v in cache.versions(user, model)]
version = st.selectbox("Version", versions, format_func=lambda n: f"v{n}")
try:
    use_case = use_case_for_model(cache.store(), user, model)
    st.caption(f"Use case **{use_case.name}** v{use_case.version}: threshold {use_case.threshold}, outcome column "
               f"`{use_case.label}`, sensitive attributes {', '.join(use_case.sensitive_attributes)}.")
except NotFound as exc:
    st.warning(str(exc), icon=":material/warning:")
    st.stop()

packaged = st.file_uploader("Or a packaged MLflow model instead of the version above (.zip of the folder written "
                            "by save_model; stored, never loaded here)", type=["zip"])
source = st.radio("Evaluation data", ["The validation cohort logged with the run", "Upload a CSV or Parquet file"],
                  index=1 if packaged else 0)
upload = st.file_uploader("Evaluation file", type=["csv", "parquet"]) if source.startswith("Upload") else None
deidentified = st.checkbox("I declare this data de-identified", help="Needed only if ModelBoard finds columns that "
                           "look like identifiers; the declaration is recorded in the audit log.")

if st.button("Submit for clinical review", type="primary"):
    request = SubmissionRequest(model, int(version), deidentified=deidentified)
    bar = st.progress(0.0, text="Checking the evaluation data…")

    def progress(step: str, fraction: float) -> None:
        bar.progress(min(fraction, 1.0), text=step)

    try:
        if packaged is not None:
            if upload is None:
                raise ValidationError("a packaged model needs its evaluation data: upload a CSV or Parquet file")
            stored = submit_packaged_upload(cache.settings(), cache.store(), cache.registry(), user, model=model,
                                            content=packaged.getvalue(), eval_name=upload.name,
                                            eval_content=upload.getvalue(), deidentified=deidentified,
                                            progress=progress)
        elif upload is not None:
            stored = submit_upload(cache.settings(), cache.store(), cache.registry(), user, request,
                                   file_name=upload.name, content=upload.getvalue(), progress=progress)
        else:
            stored = submit_version(cache.settings(), cache.store(), cache.registry(), user, request,
                                    progress=progress)
    except (ValidationError, EvaluationFailed) as exc:
        bar.empty()
        st.error(f"Not submitted: {exc}", icon=":material/error:")
    else:
        bar.progress(1.0, text="Done")
        cache.clear_reads()
        word = "was already evaluated on this data" if stored.reused else "is evaluated"
        st.success(f"{model} v{stored.version} {word} and is now in clinical review.", icon=":material/check_circle:")
        for c in stored.result["criteria"]:
            st.markdown(f"{verdict(c['passed'])} — {c['criterion']}: {c['observed']} (required {c['required']})")

st.subheader("Your submissions")
mine = submissions_by(cache.store(), user)
if mine:
    st.dataframe(mine, hide_index=True, width="stretch")
else:
    st.caption("You have not submitted anything yet.")
