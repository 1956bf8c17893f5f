"""Parts of the Sign-off page: what an approval will do (said next to the Sign button), the fingerprints, and
the exception and rollback forms (signed actions besides approval)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app import cache, state
from core.domain.access import Permission, User, can
from core.domain.signoff import DECISION_LABELS, ApprovalOutlook, Evidence, Signature
from core.errors import ModelBoardError
from core.services import promotion, signoff
from core.services.signoff import SignatureRequest, SignOffState


def eyes_open(outlook: ApprovalOutlook) -> bool:
    """Inside the Sign form, just above the button: which gates pass and fail, and what an approval will do.
    While a gate fails, an approval needs the acknowledgement ticked (core refuses it otherwise); returns it."""
    with st.container(border=True):
        if outlook.passing:
            st.markdown(":material/check_circle: **Gates passing:** " + ", ".join(outlook.passing) + ".")
        if outlook.failing:
            st.markdown(":material/cancel: **Gates failing:** " + ", ".join(outlook.failing) + ".")
        st.markdown(f"**If you approve:** {outlook.sentence}")
        st.caption("A rejection or a change request is recorded and blocks promotion until the evaluation or the "
                   "card changes; it needs no acknowledgement.")
        if not outlook.needs_acknowledgement:
            return False
        return st.checkbox(outlook.acknowledgement_label, key="acknowledge-failing-gates",
                           help="Required to approve while a gate fails. Your signature records the gates that "
                                "failed when you approved.")


def signed_fingerprints(signature: Signature) -> str:
    """The full SHA-256 fingerprints a signature names (its line on screen shows 8 characters of each)."""
    return (f"Signed fingerprints (SHA-256): card {signature.card_sha256 or '—'}; evaluation "
            f"{signature.evaluation_sha256 or '—'}; model files {signature.artifact_sha256}.")


def fingerprints(evidence: Evidence) -> None:
    """The SHA-256 fingerprints a signature binds, shortened to 8 characters; the full values in the tooltip."""
    parts = {"card": evidence.card_sha256, "evaluation": evidence.evaluation_sha256,
             "model files": evidence.artifact_sha256}
    st.caption("Fingerprints now (SHA-256, first 8 characters) — " + ", ".join(
        f"{name} {value[:8]}…" if value else f"no {name} yet" for name, value in parts.items()) + ".",
        help="Full fingerprints: " + "; ".join(f"{name} {value or 'none'}" for name, value in parts.items()))


def exception_form(user: User, current: SignOffState, shown: tuple[str, str | None],
                   outcome: Callable[[Signature, promotion.Promotion | None], None]) -> None:
    """A clinical lead accepts failed criteria in a signed statement."""
    model, version = current.model, current.version
    can_sign = can(user, Permission.SIGN_OFF)
    accepters = current.use_case.promotion.exception_roles if current.use_case else ()
    accepted = {c for s in current.standings if s.valid and s.signature.kind == "exception"
                for c in s.signature.criteria}
    open_failures = [c for c in current.failed_criteria if c not in accepted]
    if can_sign and user.role in accepters and open_failures and user.username not in current.submitters:
        st.subheader("Accept a failed criterion")
        st.caption("The failure stays visible on every page; your signed statement appears beside it. State the "
                   "mitigation in the rationale.")
        with st.form("exception"):
            criteria = st.multiselect("Failed criteria you accept", open_failures)
            meaning = st.text_input("Meaning of your signature", "Accepted the failed criteria with the mitigation "
                                    "stated", max_chars=signoff.MAX_MEANING)
            rationale = st.text_area("Rationale and mitigation", max_chars=signoff.MAX_RATIONALE)
            username = st.text_input("Username (signature)", max_chars=64, key="exception-user")
            password = st.text_input("Password (signature)", type="password", max_chars=256, key="exception-password")
            if st.form_submit_button("Sign the exception", icon=":material/draw:"):
                request = SignatureRequest(model, version, "accept_exception", meaning, rationale, username, password,
                                           shown[0], shown[1], tuple(criteria))
                try:
                    with st.spinner("Checking your signature…"):
                        signature = signoff.accept_exception(cache.settings(), cache.store(), cache.registry(), user,
                                                                request)
                except ModelBoardError as exc:
                    st.error(str(exc), icon=":material/error:")
                else:
                    outcome(signature, None)


def rollback_form(user: User, current: SignOffState) -> None:
    """A signed rollback of the production version to the one before it."""
    model, store, registry = current.model, cache.store(), cache.registry()
    if not (current.in_production and can(user, Permission.ROLL_BACK)):
        return
    target = promotion.rollback_target(store, registry, model)
    if target is None:
        return
    st.subheader(f"Roll back to v{target}")
    st.caption(f"{DECISION_LABELS['rollback']} is a signed action: v{target} goes back into production at once.")
    with st.form("rollback"):
        rationale = st.text_area("Why", max_chars=signoff.MAX_RATIONALE)
        username = st.text_input("Username (signature)", max_chars=64, key="rollback-user")
        password = st.text_input("Password (signature)", type="password", max_chars=256, key="rollback-password")
        if not st.form_submit_button(f"Roll back to v{target}", icon=":material/undo:"):
            return
    try:
        with st.spinner("Rolling back…"):
            done = promotion.roll_back(cache.settings(), store, registry, user, model, username=username,
                                       password=password, rationale=rationale)
    except ModelBoardError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    cache.clear_reads()
    cache.clear_governance()
    state.set_flash([f"Rolled back: {model} v{done.to_version} is in production again."])
    st.rerun()
