"""Electronic signatures on a real demo: separation of duties, identity, voiding, expiry, and the policy's arithmetic.

The signing tests write signatures, so they use their own demo (built once for this module) rather than the
session's, whose sepsis-icu v2 other tests expect unsigned and unedited. Every test that signs first changes a
narrative so that it starts from evidence nobody has signed yet, whatever ran before it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from core.config import Settings
from core.domain.access import User, command_line_operator
from core.domain.clock import utc_now
from core.domain.signoff import Signature, SignerRequirement, quorum
from core.domain.usecase import parse_use_case
from core.errors import AuthenticationFailed, PermissionDenied, ValidationError
from core.services import model_card, signoff
from core.services.auth import get_user, unlock_user
from core.services.demo import DEMO_USERS
from core.services.installation import open_registry, open_store
from core.services.signoff import SignatureRequest, sign_off_state
from core.services.submission import StoredEvaluation, SubmissionRequest, latest_evaluation, submit_version
from tests.conftest import demo_copy

MODEL, VERSION = "sepsis-icu", 2
OPERATOR = command_line_operator("pytest")
PASSWORDS = {username: password for username, _name, _role, password in DEMO_USERS}
DEMO_YAML = Path(__file__).resolve().parents[2] / "data" / "usecases" / "sepsis-icu-adult.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings, demo_backend: str,
         request: pytest.FixtureRequest) -> Settings:
    """A demo of this module's own, with sepsis-icu v2 evaluated by the real worker."""
    return demo_copy(tmp_path_factory, reviewed_demo, "signoff", demo_backend, request)


def person(settings: Settings, username: str) -> User:
    user = get_user(open_store(settings), username)
    assert user is not None, username
    return user


def request(settings: Settings, username: str, *, decision: str = "approve", password: str | None = None,
            as_username: str | None = None, criteria: tuple[str, ...] = ()) -> SignatureRequest:
    """What the sign-off page submits for `username`, with the fingerprints of the card and evaluation now (and,
    the acknowledgement ticked, the gates failing now: tests/core/test_signoff_acknowledgement.py tests it)."""
    state = sign_off_state(open_store(settings), open_registry(settings), person(settings, username), MODEL, VERSION)
    return SignatureRequest(MODEL, VERSION, decision, "approved for clinical use in the adult ICU",
                            "Reviewed the card, the subgroup results and the comparison with production.",
                            as_username or username, PASSWORDS[username] if password is None else password,
                            state.evidence.card_sha256, state.evidence.evaluation_id, criteria,
                            acknowledged_gates=state.failing_gates)


def sign(settings: Settings, username: str, req: SignatureRequest | None = None) -> tuple[Signature, Any]:
    return signoff.sign(settings, open_store(settings), open_registry(settings), person(settings, username),
                        req or request(settings, username))


def fresh_evidence(settings: Settings) -> str:
    """Lee (the model's owner) rewrites a narrative field: every earlier signature stops counting."""
    text = f"Reviewed yearly and after any monitoring alert (revision {uuid.uuid4().hex[:8]})."
    assert model_card.save_narratives(open_store(settings), person(settings, "lee"), MODEL, VERSION,
                                      {"update_schedule": text}) == ["update_schedule"]
    return text


def signature_rows(settings: Settings, signer: str | None = None) -> list[dict[str, Any]]:
    return open_store(settings).query("SELECT * FROM signatures WHERE model_name = ? AND model_version = ? "
                                      "AND (? IS NULL OR signer = ?)", [MODEL, VERSION, signer, signer])


def audit_rows(settings: Settings, action: str, actor: str) -> list[dict[str, Any]]:
    return open_store(settings).query("SELECT * FROM audit_events WHERE action = ? AND actor = ? ORDER BY id",
                                      [action, actor])


def standing_of(settings: Settings, signature_id: str, *, now: datetime | None = None) -> signoff.Standing:
    state = sign_off_state(open_store(settings), open_registry(settings), OPERATOR, MODEL, VERSION, now=now)
    found = [s for s in state.standings if s.signature.id == signature_id]
    assert len(found) == 1, "a signature is never deleted, only voided or expired"
    return found[0]


# -- separation of duties and identity ------------------------------------------------------------------------------
def test_the_person_who_built_the_version_may_not_sign_it(demo: Settings) -> None:
    registry = open_registry(demo)
    builder = registry.get_version(MODEL, VERSION).summary.logged_by
    assert builder == "lee"  # read from MLflow's run, not from ModelBoard
    before = len(signature_rows(demo))
    for decision in ("approve", "reject"):
        with pytest.raises(PermissionDenied, match="separation of duties"):
            sign(demo, builder, request(demo, builder, decision=decision))
    assert len(signature_rows(demo)) == before


@pytest.mark.parametrize("username", ["kim", "admin"])
def test_auditors_and_administrators_never_sign(demo: Settings, username: str) -> None:
    who = person(demo, username)
    assert who.role in ("auditor", "admin")
    before = len(signature_rows(demo))
    with pytest.raises(PermissionDenied, match="may not sign off"):
        sign(demo, username)
    assert len(signature_rows(demo)) == before
    assert audit_rows(demo, "signature_failed", username) == []  # refused before the password was even checked


def test_only_the_policys_exception_role_may_accept_a_failed_criterion(demo: Settings) -> None:
    state = sign_off_state(open_store(demo), open_registry(demo), OPERATOR, MODEL, VERSION)
    assert state.failed_criteria and "clinician" not in state.use_case.promotion.exception_roles  # type: ignore[union-attr]
    for username in ("ng", "diaz"):
        with pytest.raises(PermissionDenied, match="only a clinical lead"):
            signoff.accept_exception(demo, open_store(demo), open_registry(demo), person(demo, username),
                                     request(demo, username, decision="accept_exception",
                                             criteria=state.failed_criteria))
    assert [r for r in signature_rows(demo) if r["kind"] == "exception"] == []


def test_a_wrong_password_is_refused_audited_and_counts_towards_lockout(demo: Settings) -> None:
    store = open_store(demo)

    def attempts() -> tuple[int, datetime | None]:
        row = store.query_one("SELECT failed_attempts, locked_until FROM users WHERE username = 'okafor'")
        assert row is not None
        return int(row["failed_attempts"]), row["locked_until"]

    unlock_user(store, OPERATOR, "okafor")
    failures_before = len(audit_rows(demo, "signature_failed", "okafor"))
    signatures_before = len(signature_rows(demo, "okafor"))
    with pytest.raises(AuthenticationFailed, match="Signature not accepted"):
        sign(demo, "okafor", request(demo, "okafor", password="not-okafors-password"))
    assert attempts() == (1, None)
    failed = audit_rows(demo, "signature_failed", "okafor")
    assert len(failed) == failures_before + 1
    detail = json.loads(failed[-1]["detail"])
    assert detail["reason"] == "wrong password" and detail["purpose"] == f"sign {MODEL} v{VERSION}"
    for _ in range(demo.max_failed_logins - 1):  # the same counter as a failed login: the account locks
        with pytest.raises(AuthenticationFailed):
            sign(demo, "okafor", request(demo, "okafor", password="still-the-wrong-one"))
    locked_until = attempts()[1]
    assert locked_until is not None and locked_until > utc_now()
    with pytest.raises(AuthenticationFailed):  # now even the right password is refused
        sign(demo, "okafor")
    assert json.loads(audit_rows(demo, "signature_failed", "okafor")[-1]["detail"])["reason"] == "account locked"
    assert len(signature_rows(demo, "okafor")) == signatures_before
    unlock_user(store, OPERATOR, "okafor")


def test_signing_with_someone_elses_username_and_password_is_refused(demo: Settings) -> None:
    before, signatures_before = len(audit_rows(demo, "signature_failed", "ng")), len(signature_rows(demo))
    impostor = request(demo, "okafor")  # okafor's own username and password, submitted from ng's session
    with pytest.raises(AuthenticationFailed):
        sign(demo, "ng", impostor)
    failed = audit_rows(demo, "signature_failed", "ng")
    assert len(failed) == before + 1
    assert json.loads(failed[-1]["detail"])["reason"] == "username is not the signer's own"
    assert len(signature_rows(demo)) == signatures_before


def test_a_stale_card_fingerprint_is_refused(demo: Settings) -> None:
    shown = request(demo, "ng")  # what ng opened …
    fresh_evidence(demo)  # … before Lee edited the card
    now = sign_off_state(open_store(demo), open_registry(demo), OPERATOR, MODEL, VERSION).evidence.card_sha256
    assert shown.shown_card_sha256 != now
    before = len(signature_rows(demo, "ng"))
    with pytest.raises(ValidationError, match="changed after you opened it"):
        sign(demo, "ng", shown)
    assert len(signature_rows(demo, "ng")) == before


def test_one_person_signs_a_version_once(demo: Settings) -> None:
    fresh_evidence(demo)
    before = len(signature_rows(demo, "ng"))
    signature, promoted = sign(demo, "ng")
    assert promoted is None  # one approval is far from the quorum
    with pytest.raises(ValidationError, match="one person signs a version once"):
        sign(demo, "ng")
    rows = signature_rows(demo, "ng")
    assert len(rows) == before + 1
    card = sign_off_state(open_store(demo), open_registry(demo), OPERATOR, MODEL, VERSION).evidence.card_sha256
    assert [r["id"] for r in rows if r["card_sha256"] == card] == [signature.id]


# -- voiding and expiry -------------------------------------------------------------------------------------------
def test_editing_the_card_voids_earlier_signatures(demo: Settings) -> None:
    fresh_evidence(demo)
    signature, _ = sign(demo, "okafor")
    assert standing_of(demo, signature.id).valid
    fresh_evidence(demo)
    after = standing_of(demo, signature.id)
    assert not after.valid and after.reason.startswith("voided: the model card changed")
    state = sign_off_state(open_store(demo), open_registry(demo), OPERATOR, MODEL, VERSION)
    assert signature.id not in {s.signature.id for s in state.standings if s.valid}
    assert "Dr. Chidi Okafor" not in state.readiness.quorum.sentence


def test_a_new_evaluation_voids_earlier_signatures(demo: Settings, tmp_path: Path) -> None:
    store, registry = open_store(demo), open_registry(demo)
    fresh_evidence(demo)
    signature, _ = sign(demo, "okafor")
    assert standing_of(demo, signature.id).valid
    before = latest_evaluation(store, OPERATOR, MODEL, VERSION)
    assert before is not None and signature.evaluation_id == before.id
    data = pd.read_parquet(registry.evaluation_dataset_path(MODEL, VERSION))
    subset = tmp_path / "resampled.parquet"
    data.sample(frac=0.9, random_state=11).to_parquet(subset, index=False)
    again: StoredEvaluation = submit_version(demo, store, registry, person(demo, "diaz"),
                                             SubmissionRequest(MODEL, VERSION, eval_data=subset))
    assert again.status == "complete" and not again.reused and again.result_sha256 != before.result_sha256
    now = standing_of(demo, signature.id)
    assert not now.valid and now.reason.startswith("voided: the evaluation changed"), now.reason
    # diaz submitted this evaluation and is now one of the people who may not sign the version
    with pytest.raises(PermissionDenied, match="separation of duties"):
        sign(demo, "diaz")


def test_a_signature_expires_after_the_policys_validity(demo: Settings) -> None:
    fresh_evidence(demo)
    signature, promoted = sign(demo, "patel")
    assert promoted is None
    days = sign_off_state(open_store(demo), open_registry(demo), OPERATOR, MODEL,
                          VERSION).use_case.promotion.signoff_valid_days  # type: ignore[union-attr]
    assert standing_of(demo, signature.id, now=signature.signed_at + timedelta(days=days - 1)).valid
    expired = standing_of(demo, signature.id, now=signature.signed_at + timedelta(days=days + 1))
    assert not expired.valid and expired.reason.startswith("expired") and str(days) in expired.reason


# -- quorum arithmetic ----------------------------------------------------------------------------------------------
def approval(signer: str, role: str, minutes: int) -> Signature:
    return Signature(uuid.uuid4().hex, MODEL, VERSION, "sign_off", "approve", signer, f"Dr. {signer.title()}", role,
                     "approved", "a rationale", datetime(2026, 11, 1) + timedelta(minutes=minutes), "e", "e" * 64,
                     "c" * 64, "a" * 64, "use case x v1")


def test_a_clinical_lead_fills_the_clinical_lead_place_before_a_clinician_place() -> None:
    lead, clinician = approval("patel", "clinical_lead", 0), approval("ng", "clinician", 1)
    for requirements in ((SignerRequirement("clinician", 1), SignerRequirement("clinical_lead", 1)),
                         (SignerRequirement("clinical_lead", 1), SignerRequirement("clinician", 1))):
        result = quorum(requirements, [lead, clinician])
        assert result.reached, result.sentence
        by_group = {s.requirement.group: s.signed_by for s in result.slots}
        assert by_group == {"clinical_lead": (lead.full_name,), "clinician": (clinician.full_name,)}
        assert [s.requirement for s in result.slots] == list(requirements)  # reported in the policy's order


def test_one_signer_fills_one_place_only() -> None:
    lead = approval("patel", "clinical_lead", 0)
    twice = quorum((SignerRequirement("clinician", 2),), [lead, approval("patel", "clinical_lead", 5)])
    assert not twice.reached and twice.slots[0].signed_by == (lead.full_name,)
    both = quorum((SignerRequirement("clinical_lead", 1), SignerRequirement("clinician", 1)), [lead])
    assert not both.reached
    assert [s.signed_by for s in both.slots] == [(lead.full_name,), ()]


def test_roles_outside_a_group_never_count_for_it() -> None:
    approvals = [approval("diaz", "data_scientist", 0), approval("kim", "auditor", 1), approval("adm", "admin", 2)]
    result = quorum((SignerRequirement("clinician", 1), SignerRequirement("data_scientist", 1)), approvals)
    assert not result.reached
    assert [s.signed_by for s in result.slots] == [(), ("Dr. Diaz",)]
    assert result.sentence == "0 of 1 clinicians; 1 of 1 data scientists (Dr. Diaz)"


# -- the policy in the use-case YAML --------------------------------------------------------------------------------
def use_case_with(promotion: Any) -> dict[str, Any]:
    document = yaml.safe_load(DEMO_YAML.read_text(encoding="utf-8"))
    document["promotion"] = promotion
    return document


def test_the_shipped_policy_is_read_as_written() -> None:
    written = yaml.safe_load(DEMO_YAML.read_text(encoding="utf-8"))["promotion"]
    policy = parse_use_case(use_case_with(written)).promotion
    assert {r.group: r.count for r in policy.signers} == written["signers"]
    assert policy.signoff_valid_days == written["signoff_valid_days"]
    assert policy.require_complete_card is written["require_complete_card"]
    assert list(policy.exception_roles) == written["exception_roles"]


@pytest.mark.parametrize("promotion,fragment", [
    ({"signers": {"clinician": 2}, "quorum": 3}, "promotion.quorum is not a known setting"),
    ({"signers": {"clinician": 0}}, "promotion.signers.clinician must be a whole number from 1 to 10, not 0"),
    ({"signers": {"clinician": 11}}, "promotion.signers.clinician must be a whole number from 1 to 10, not 11"),
    ({"signers": {"clinician": True}}, "promotion.signers.clinician must be a whole number from 1 to 10, not True"),
    ({"signers": {"clinician": "two"}}, "must be a whole number from 1 to 10, not 'two'"),
    ({"signers": {"auditor": 1}}, "promotion.signers.auditor is not a signer group"),
    ({"signers": {"admin": 1}}, "auditors and administrators never sign"),
    ({"signers": {}}, "promotion.signers must map a signer group to a count"),
    ({"signers": ["clinician"]}, "promotion.signers must map a signer group to a count"),
    ({"signoff_valid_days": 0}, "promotion.signoff_valid_days must be a whole number of days from 1 to 3650"),
    ({"signoff_valid_days": "90"}, "promotion.signoff_valid_days must be a whole number of days"),
    ({"require_complete_card": "yes"}, "promotion.require_complete_card must be true or false"),
    ({"exception_roles": ["auditor"]}, "promotion.exception_roles must be a list drawn from"),
    ({"exception_roles": "clinical_lead"}, "promotion.exception_roles must be a list drawn from"),
    (["clinician", 2], "promotion must be a mapping"),
])
def test_a_bad_policy_is_refused_with_a_message_naming_the_setting(promotion: Any, fragment: str) -> None:
    with pytest.raises(ValidationError, match="use case not accepted") as refused:
        parse_use_case(use_case_with(promotion))
    assert fragment in str(refused.value)


def test_every_policy_problem_is_listed_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_use_case(use_case_with({"signers": {"auditor": 1, "clinician": 0}, "signoff_valid_days": -1,
                                      "colour": "red"}))
    message = str(refused.value)
    for fragment in ("promotion.colour", "promotion.signers.auditor", "promotion.signers.clinician",
                     "promotion.signoff_valid_days"):
        assert fragment in message


# -- a criterion that cannot be judged --------------------------------------------------------------------------------
def test_a_criterion_that_cannot_be_judged_blocks_sign_off_until_a_clinical_lead_accepts_it(demo: Settings,
                                                                                           tmp_path: Path) -> None:
    """160 patients, enough to evaluate, but no subgroup reaches the use case's 100 patients: the subgroup
    criteria cannot be judged, so they fail the criteria gate like a failure, until a signed exception."""
    store, registry = open_store(demo), open_registry(demo)
    data = pd.read_parquet(registry.evaluation_dataset_path(MODEL, VERSION))
    small = pd.concat([data[data["sepsis_48h"] == 1].head(15), data[data["sepsis_48h"] == 0].head(145)])
    assert data.groupby("sex").size().min() >= 100 and small.groupby("sex").size().max() < 100
    path = tmp_path / "small.parquet"
    small.to_parquet(path, index=False)
    evaluation = submit_version(demo, store, registry, person(demo, "lee"),
                                SubmissionRequest(MODEL, VERSION, eval_data=path))
    unjudged = [c["criterion"] for c in evaluation.result["criteria"] if not c.get("judged", True)]
    assert unjudged and all(not c["passed"] for c in evaluation.result["criteria"] if c["criterion"] in unjudged)

    def criteria_gate() -> Any:
        state = sign_off_state(store, registry, OPERATOR, MODEL, VERSION)
        return state, next(g for g in state.readiness.gates if g.name == "Use-case criteria")

    state, gate = criteria_gate()
    assert set(unjudged) <= set(state.failed_criteria) and not gate.passed
    assert all(name in gate.explanation for name in unjudged), gate.explanation
    signoff.accept_exception(demo, store, registry, person(demo, "patel"),
                             request(demo, "patel", decision="accept_exception", criteria=state.failed_criteria))
    state, gate = criteria_gate()
    assert gate.passed and "accepted in a signed exception" in gate.explanation, gate.explanation
    assert set(unjudged) <= set(state.failed_criteria)  # still shown as not judged, with the exception beside it
