"""Use cases: what each model is for, its threshold and minimum criteria, their versions; YAML in and out."""

import streamlit as st

from app import cache, state
from app.wording import plain
from core.domain.access import Permission, can
from core.domain.glossary import attribute
from core.errors import ValidationError
from core.services import usecases

user = state.viewer().user
store = cache.store()
st.title("Use cases")
st.caption("A use case says what a model is for, for whom, at which threshold, and what it must achieve before "
           "clinicians may approve it. Every change is a new version; evaluations name the version they used.")

found = usecases.list_use_cases(store, user)
if found:
    names = [u.name for u in found]
    chosen = found[names.index(st.selectbox("Use case", names))]
    st.subheader(f"{plain(chosen.title)} — version {chosen.version}")
    st.markdown(f"**Intended use.** {plain(chosen.intended_use)}")
    st.markdown(f"**Patients.** {plain(chosen.target_population)}  \n**Outcome.** {plain(chosen.outcome)} "
                f"(column `{chosen.label}`)")
    st.markdown(f"**Threshold.** A patient is flagged when the predicted risk is {chosen.threshold:.2f} or more.  \n"
                f"**Models governed.** {', '.join(chosen.models)}  \n**Groups checked for fairness.** "
                f"{', '.join(attribute(a) for a in chosen.sensitive_attributes) or 'none named'}")
    st.markdown("**Minimum criteria**")
    for sentence in chosen.plain_criteria():
        st.markdown(f"- {sentence}")
    st.markdown("**Versions**")
    st.dataframe([{"Version": h["version"], "Imported by": h["imported_by"] or "—",
                   "Imported (UTC)": f"{h['imported_at']:%d %b %Y %H:%M}" if h["imported_at"] else "—",
                   "Threshold": f"{h['threshold']:.2f}", "Models": h["models"] or "—", "Criteria": h["criteria"] or "—"}
                  for h in usecases.use_case_history(store, user, chosen.name)], hide_index=True, width="stretch")
    st.download_button("Export as YAML", lambda: usecases.export_yaml(store, user, chosen.name),
                       file_name=f"{chosen.name}-v{chosen.version}.yaml", mime="application/yaml")
else:
    st.info("No use case yet: a clinical lead or an administrator imports one below.")

if can(user, Permission.MANAGE_USE_CASES):
    st.subheader("Import a use case")
    st.caption("A YAML file like `data/usecases/sepsis-icu-adult.yaml`. Importing an unchanged file creates nothing; "
               "a changed one becomes the next version. Every import is recorded in the audit log.")
    upload = st.file_uploader("Use-case YAML", type=["yaml", "yml"])
    if upload is not None and st.button("Import", type="primary"):
        try:
            imported, created = usecases.import_use_case(store, user, upload.getvalue().decode("utf-8", "replace"))
        except ValidationError as exc:
            st.error(f"Not imported: {exc}", icon=":material/error:")
        else:
            word = "Imported as" if created else "Unchanged: still"
            st.success(f"{word} {imported.name} v{imported.version}.", icon=":material/check_circle:")
