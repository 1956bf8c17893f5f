"""Model card: a Model Facts label first, then the HTI-1 / CHAI detail, narratives and exports."""

from dataclasses import replace

import streamlit as st

from app import cache, signing, state
from app.widgets import choose_version
from app.wording import plain
from core.domain.access import Permission, can
from core.domain.card_words import CODE, card_value_in_words
from core.domain.glossary import words as in_words
from core.domain.model_card import FIELDS, NARRATIVE_KEYS, SECTIONS, to_chai_xml, to_html, to_markdown
from core.errors import ValidationError
from core.services import model_card, signoff
from core.services.audit import record_download
from core.services.submission import latest_evaluation

FACTS = ("Summary", "Mechanism", "Validation and performance", "Uses and directions", "Warnings")
user = state.viewer().user
store = cache.store()
st.title("Model card")
model, option = choose_version(user, model_key="card_model", version_key="card_version")
version = option.version
card = cache.card(user, model, version)
evaluation = latest_evaluation(store, user, model, version)
digest = model_card.record_rendered(store, user, card, evaluation.id if evaluation else None)

if card.missing_required:
    st.warning("Required fields still empty: " + ", ".join(f.label for f in card.missing_required) + ".",
               icon=":material/warning:")
else:
    st.success("Every required field is filled.", icon=":material/check_circle:")

words = cache.glossary(user, model)


def shown(key: str, value: str) -> tuple[str, str | None]:
    """The value in words as markdown (settings kept exact as code), and the stored value for the tooltip."""
    found = card_value_in_words(value, words, input_list=key == "inputs")
    text = "".join(p if p.startswith("`") else plain(p) for p in CODE.split(found.text))
    return text, (f"As stored: {found.raw}" if found.raw else None)


st.subheader("Model facts")
for name in FACTS:
    with st.container(border=True):
        st.markdown(f"**{name}**")
        for field, value in card.section(name):
            text, raw = shown(field.key, value) if value else ("— not provided", None)
            st.markdown(f"*{field.label}:* {text}", help=raw)

with st.expander("Full detail with ONC HTI-1 source attributes and CHAI sections"):
    for name in SECTIONS:
        st.markdown(f"#### {name}")
        for field, value in card.section(name):
            refs = f" · HTI-1 ({', '.join(map(str, field.hti1))})" if field.hti1 else ""
            st.markdown(f"**{field.label}** — from {in_words(field.source).lower()}{refs} · CHAI {field.chai}")
            text, raw = shown(field.key, value) if value else ("not provided", None)
            st.markdown(text, help=raw)

production, changes = cache.card_changes(user, model, version)
if changes:
    with st.expander(f"What changed since v{production}, the version in production ({len(changes)} fields)"):
        st.dataframe([{k: card_value_in_words(v, words).text for k, v in c.items()} for c in changes],
                     hide_index=True, width="stretch")

st.subheader("Signatures")
signatures = signoff.signatures_for(store, user, model, version)
for signature in signatures:
    st.markdown(f"- {plain(signature.manifestation())}", help=signing.signed_fingerprints(signature))
if not signatures:
    st.caption("No one has signed this version yet (see the Sign-off page).")
card = replace(card, signatures=tuple(s.manifestation() for s in signatures))  # shown in every export

st.caption(f"Card fingerprint (SHA-256 without signatures, first 8 characters): {digest[:8]}…. Each signature "
           "names the fingerprint of the card it was given for.", help=f"Full card fingerprint: {digest}")
c1, c2, c3, c4 = st.columns(4)
base = f"model-card-{model}-v{version}"
# Each export is produced only when its button is clicked (deferred data), not on every render.
exports = ((c1, "Markdown", lambda: to_markdown(card), "md", "text/markdown"),
           (c2, "HTML", lambda: to_html(card), "html", "text/html"),
           (c3, "PDF", lambda: model_card.to_pdf(card), "pdf", "application/pdf"),
           (c4, "CHAI XML", lambda: to_chai_xml(card), "xml", "application/xml"))
for column, label, produce, suffix, mime in exports:
    column.download_button(label, produce, file_name=f"{base}.{suffix}", mime=mime, on_click=record_download,
                           kwargs={"store": store, "viewer": user, "what": f"model card ({label})", "model": model,
                                   "version": version})

if can(user, Permission.EDIT_MODEL_CARD):
    st.subheader("Edit the narrative")
    labels = {f.key: f.label for f in FIELDS}
    with st.form("narrative"):
        edited = {key: st.text_area(labels[key], card.values.get(key, ""), max_chars=4000, height=80)
                  for key in NARRATIVE_KEYS}
        if st.form_submit_button("Save narrative", type="primary"):
            try:
                changed = model_card.save_narratives(store, user, model, version, edited)
            except ValidationError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                cache.clear_reads()
                st.success(f"Saved {len(changed)} changed field(s)." if changed else "Nothing changed.")
