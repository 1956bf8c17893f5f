"""Sign-off: the policy's gates, the signatures so far, and the electronic signature form."""

import streamlit as st

from app import cache, signing, state
from app.widgets import choose_version
from app.wording import plain
from core.domain.access import Permission, can
from core.domain.signoff import Signature
from core.errors import ModelBoardError
from core.services import promotion, signoff
from core.services.signoff import SignatureRequest

DEFAULT_MEANING = {"approve": "Approved for clinical use in {population}",
                   "reject": "Not approved for clinical use",
                   "request_changes": "Changes requested before approval"}
DECISION_WORDS = {"Approve": "approve", "Reject": "reject", "Request changes": "request_changes"}

user = state.viewer().user
store, registry = cache.store(), cache.registry()
st.title("Sign-off")
st.caption("A version reaches patients only when every gate passes and the people the policy names have signed. "
           "Signing asks for your username and password again.")
for message in state.take_flash():  # what the last signature did, above the refreshed gates and quorum
    st.success(message, icon=":material/draw:")
model, option = choose_version(user, model_key="signoff_model", version_key="signoff_version")
version = option.version

with st.spinner("Checking the gates, the signatures and the model's files…"):
    current = signoff.sign_off_state(store, registry, user, model, version)
# What this render shows is what a signature submitted from it refers to (the form's rerun recomputes `current`).
shown_key = f"signoff-shown:{model}:{version}"
now_shown = (current.evidence.card_sha256, current.evidence.evaluation_id, current.failing_gates)
shown = st.session_state.get(shown_key, now_shown)
st.session_state[shown_key] = now_shown

if current.in_production:
    st.info(f"{model} v{version} holds the 'production' alias: it is the version in clinical use.",
            icon=":material/verified:")
st.subheader("Policy")
if current.use_case:
    st.caption(f"Promotion policy of {current.policy_label}:")
    for line in current.use_case.promotion.sentences():
        st.markdown(f"- {line}")

st.subheader("Gates")
for gate in current.readiness.gates:
    icon = ":material/check_circle:" if gate.passed else ":material/cancel:"
    st.markdown(f"{icon} **{gate.name} — {'passed' if gate.passed else 'not passed'}.** {gate.explanation}")

st.subheader("Signatures")
quorum = current.readiness.quorum
st.markdown(f"**Quorum {'reached' if quorum.reached else 'not reached'}:** {plain(quorum.sentence)}.")
if current.readiness.blocking:
    st.warning("A valid rejection or change request blocks promotion until the evaluation or card changes: "
               + "; ".join(plain(s.signature.full_name) for s in current.readiness.blocking) + ".",
               icon=":material/block:")
if not current.standings:
    st.caption("No one has signed this version yet.")
for item in current.standings:
    with st.container(border=True):
        st.markdown(plain(item.signature.manifestation()), help=signing.signed_fingerprints(item.signature))
        st.caption(f"Rationale: {plain(item.signature.rationale)}")
        st.caption("Counts." if item.valid else f"Does not count — {item.reason}.")
signing.fingerprints(current.evidence)


def _outcome(signature: Signature, promoted: promotion.Promotion | None) -> None:
    """Show the page again with the new signature counted, and say above it what the signature did."""
    cache.clear_reads()
    cache.clear_governance()
    messages = [f"Signed: {plain(signature.manifestation())}"]
    if promoted is not None:
        kept = f", v{promoted.from_version} kept as 'previous'." if promoted.from_version else "."
        messages.append(f"{model} v{version} is now in production: MLflow alias 'production' moved to "
                        f"v{version}{kept}")
    state.set_flash(messages)
    st.rerun()


can_sign = can(user, Permission.SIGN_OFF)
if not can_sign:
    st.info("Your role reviews but does not sign: clinicians, clinical leads and data scientists sign.")
elif user.username in current.submitters:
    st.info(f"You submitted or built {model} v{version}, so you may not sign it (separation of duties).")
elif not current.in_production:
    st.subheader("Sign")
    with st.form("sign"):
        choice = st.radio("Decision", list(DECISION_WORDS), horizontal=True)
        meaning = st.text_input("Meaning of your signature", max_chars=signoff.MAX_MEANING,
                                placeholder="e.g. approved for clinical use in adult ICU (blank: a standard wording)")
        rationale = st.text_area("Rationale", max_chars=signoff.MAX_RATIONALE)
        st.caption("Electronic signature: enter both components again.")
        username = st.text_input("Username (signature)", max_chars=64)
        password = st.text_input("Password (signature)", type="password", max_chars=256)
        acknowledged = signing.eyes_open(current.outlook(user))
        if st.form_submit_button("Sign", type="primary", icon=":material/draw:"):
            decision = DECISION_WORDS[choice]
            population = current.use_case.target_population if current.use_case else "the intended population"
            request = SignatureRequest(model, version, decision,
                                       meaning.strip() or DEFAULT_MEANING[decision].format(population=population),
                                       rationale, username, password, shown[0], shown[1],
                                       acknowledged_gates=shown[2] if acknowledged else ())
            try:
                with st.spinner("Checking your signature and the policy…"):
                    signature, promoted = signoff.sign(cache.settings(), store, registry, user, request)
            except ModelBoardError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                _outcome(signature, promoted)

signing.exception_form(user, current, shown[:2], _outcome)
signing.rollback_form(user, current)
