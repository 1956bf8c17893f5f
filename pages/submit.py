"""Submit (data scientists): send a candidate for clinical review; see past submissions and why they failed."""

import re

import streamlit as st

from app import cache, state
from app.wording import criterion_verdict
from core.domain.glossary import attribute, words
from core.errors import ModelBoardError, NotFound, ValidationError
from core.services.audit import short_id
from core.services.packaged_model import submit_packaged_upload
from core.services.submission import (
    Progress,
    StoredEvaluation,
    SubmissionRequest,
    submissions_by,
    submit_upload,
    submit_version,
)
from core.services.usecases import use_case_for_model

STORED_UPLOAD = re.compile(r"\b[0-9a-f]{32}\.(csv|parquet)\b")  # kept_upload's name for an upload
KINDS = ("A registered version", "An MLflow run not registered yet", "A packaged MLflow model (.zip)")
user = state.viewer().user
st.title("Submit")
st.caption("ModelBoard evaluates the candidate itself, in a separate worker process, on the evaluation data you "
           "give. Nothing you upload is loaded by this server.")

models = [m.name for m in cache.models(user)]
if not models:
    st.info("No registered models yet: register one in MLflow first.")
    st.stop()
model = st.selectbox("Registered model", models)
try:
    use_case = use_case_for_model(cache.store(), user, model)
    st.caption(f"Use case **{use_case.name}** v{use_case.version}: threshold {use_case.threshold}, outcome column "
               f"`{use_case.label}`, groups checked for fairness: "
               f"{', '.join(attribute(a) for a in use_case.sensitive_attributes) or 'none named'}.")
except NotFound as exc:
    st.warning(str(exc), icon=":material/warning:")
    st.stop()

kind = st.radio("Candidate", KINDS, horizontal=True)
version, run_id, packaged = 0, "", None
if kind == KINDS[0]:
    version = st.selectbox("Version", [v.version for v in cache.versions(user, model)], format_func=lambda n: f"v{n}")
elif kind == KINDS[1]:
    run_id = st.text_input("MLflow run ID", max_chars=32, placeholder="32 hexadecimal characters",
                           help="ModelBoard registers the run's model as the next version of this model, and "
                                "removes that version again if the evaluation fails.").strip()
else:
    packaged = st.file_uploader("Packaged model (.zip of the folder written by mlflow.<flavor>.save_model; stored, "
                                "never loaded here)", type=["zip"])

needs_file = kind != KINDS[0]
source = st.radio("Evaluation data", ["The validation cohort logged with the run", "Upload a CSV or Parquet file"],
                  index=1 if needs_file else 0, disabled=needs_file,
                  help="A run that is not registered yet, or a packaged model, needs its evaluation file.")
upload = st.file_uploader("Evaluation file", type=["csv", "parquet"]) if source.startswith("Upload") else None
deidentified = st.checkbox("I declare this data de-identified", help="Needed only if ModelBoard finds columns that "
                           "look like identifiers; the declaration is recorded in the audit log.")
complete_case = st.checkbox("Evaluate complete cases only", help="Leave out patients with any missing input. Only "
                            "for a model that cannot take missing values: the figures then do not describe those "
                            "patients, and the model card says how many were left out, from which groups.")


def _submit(progress: Progress) -> StoredEvaluation:
    """Route the form to the one core service that handles this kind of candidate."""
    settings, store, registry = cache.settings(), cache.store(), cache.registry()
    if needs_file and upload is None:
        raise ValidationError("this candidate needs its evaluation data: upload a CSV or Parquet file")
    if kind == KINDS[2]:
        if packaged is None:
            raise ValidationError("choose the packaged model's .zip file first")
        return submit_packaged_upload(settings, store, registry, user, model=model, content=packaged.getvalue(),
                                      eval_name=upload.name, eval_content=upload.getvalue(),
                                      deidentified=deidentified, complete_case=complete_case, progress=progress)
    if kind == KINDS[1] and not run_id:
        raise ValidationError("enter the MLflow run ID of the run that logged the model")
    request = SubmissionRequest(model, int(version), deidentified=deidentified, run_id=run_id or None,
                                complete_case=complete_case)
    if upload is not None:
        return submit_upload(settings, store, registry, user, request, file_name=upload.name,
                             content=upload.getvalue(), progress=progress)
    return submit_version(settings, store, registry, user, request, progress=progress)


def _as_uploaded(message: str) -> str:
    """The upload is checked under the random name it is kept under for the check; say the name the user chose."""
    return STORED_UPLOAD.sub(upload.name, message) if upload is not None else message


if st.button("Submit for clinical review", type="primary"):
    bar = st.progress(0.0, text="Checking the evaluation data…")
    try:
        stored = _submit(lambda step, fraction: bar.progress(min(fraction, 1.0), text=step))
    except ModelBoardError as exc:
        bar.empty()
        st.error(f"Not submitted: {_as_uploaded(str(exc))}", icon=":material/error:")
    else:
        bar.progress(1.0, text="Done")
        cache.clear_reads()
        word = "was already evaluated on this data" if stored.reused else "is evaluated"
        st.success(f"{model} v{stored.version} {word} and is now in clinical review.", icon=":material/check_circle:")
        for c in stored.result["criteria"]:
            st.markdown(f"{criterion_verdict(c)} — {c['criterion']}: {c['observed']} (required {c['required']})")

st.subheader("Your submissions")
mine = submissions_by(cache.store(), user)
if mine:
    st.dataframe([{
        "Evaluation": short_id(m["id"]), "Model": f"{m['model_name']} v{m['model_version']}",
        "Status": words(str(m["status"])).lower(),
        "Submitted (UTC)": f"{m['submitted_at']:%d %b %Y %H:%M}" if m["submitted_at"] else "—",
        "Finished (UTC)": f"{m['finished_at']:%d %b %Y %H:%M}" if m["finished_at"] else "—",
        "Failed criteria": "; ".join(m["failed_criteria"]) or "none", "Error": m["error"] or "—",
    } for m in mine], hide_index=True, width="stretch")
    st.caption("Evaluation ids are shortened to 8 characters; the audit log export carries them in full.")
else:
    st.caption("You have not submitted anything yet.")
