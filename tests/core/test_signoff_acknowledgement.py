"""Signing with eyes open: an approval while gates fail needs its signer's acknowledgement, which is stored with the
signature (its row, its audit event, the evidence package); core refuses one without it, from any caller, the
command line included. Rejections and change requests need none. What an approval will do is said in words.

Signs on a copy of the reviewed demo (sepsis-icu v2 evaluated: its use-case criteria fail and its card lacks a
field, so two gates fail)."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from datetime import datetime
from typing import Any

import pytest

from core.config import Settings
from core.domain.access import User
from core.domain.signoff import (
    CARD_GATE,
    CRITERIA_GATE,
    Gate,
    PromotionReadiness,
    Signature,
    SignerRequirement,
    approval_outlook,
    quorum,
)
from core.errors import ValidationError
from core.services import signoff, worklist
from core.services.auth import get_user
from core.services.demo import DEMO_USERS
from core.services.evidence import evidence_package
from core.services.installation import open_registry, open_store
from core.services.signoff import SignatureRequest, sign_off_state
from tests.conftest import demo_copy
from tests.core.test_cli import cli, one_line_error

MODEL, VERSION = "sepsis-icu", 2
PASSWORDS = {username: password for username, _name, _role, password in DEMO_USERS}
RATIONALE = "Reviewed the card, the subgroup results and the comparison with production."


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings, demo_backend: str,
         request: pytest.FixtureRequest) -> Settings:
    return demo_copy(tmp_path_factory, reviewed_demo, "acknowledgement", demo_backend, request)


def person(settings: Settings, username: str) -> User:
    user = get_user(open_store(settings), username)
    assert user is not None, username
    return user


def state_for(settings: Settings, username: str) -> signoff.SignOffState:
    return sign_off_state(open_store(settings), open_registry(settings), person(settings, username), MODEL, VERSION)


def request(settings: Settings, username: str, *, decision: str = "approve",
            acknowledged: tuple[str, ...] = ()) -> SignatureRequest:
    state = state_for(settings, username)
    return SignatureRequest(MODEL, VERSION, decision, "approved for clinical use in the adult ICU", RATIONALE,
                            username, PASSWORDS[username], state.evidence.card_sha256, state.evidence.evaluation_id,
                            acknowledged_gates=acknowledged)


def sign(settings: Settings, username: str, req: SignatureRequest) -> tuple[Signature, Any]:
    return signoff.sign(settings, open_store(settings), open_registry(settings), person(settings, username), req)


def rows(settings: Settings, signer: str) -> list[dict[str, Any]]:
    return open_store(settings).query("SELECT * FROM signatures WHERE model_name = ? AND model_version = ? AND "
                                      "signer = ?", [MODEL, VERSION, signer])


def test_two_gates_fail_on_the_demos_v2(demo: Settings) -> None:
    assert state_for(demo, "ng").failing_gates == (CRITERIA_GATE, CARD_GATE)


def test_an_approval_with_failing_gates_and_no_acknowledgement_is_refused_and_nothing_is_written(
        demo: Settings) -> None:
    for acknowledged in ((), (CRITERIA_GATE,)):  # none, or only some of them
        with pytest.raises(ValidationError, match="2 gates of sepsis-icu v2 fail now .*acknowledge-failing-gates"):
            sign(demo, "okafor", request(demo, "okafor", acknowledged=acknowledged))
    assert rows(demo, "okafor") == []


def test_the_acknowledgement_is_stored_with_the_signature_its_audit_event_and_the_evidence(demo: Settings) -> None:
    shown = state_for(demo, "ng").failing_gates
    signature, promoted = sign(demo, "ng", request(demo, "ng", acknowledged=shown))
    assert promoted is None  # the gates still fail: recorded, production unchanged
    assert signature.acknowledged_gates == shown
    (row,) = rows(demo, "ng")
    assert json.loads(row["acknowledged_gates"]) == list(shown)
    event = open_store(demo).query("SELECT CAST(detail AS VARCHAR) AS detail FROM audit_events WHERE action = 'signed' "
                                   "AND actor = 'ng' ORDER BY id DESC LIMIT 1")[0]
    assert json.loads(event["detail"])["acknowledged_failing_gates"] == list(shown)
    (read,) = [s for s in signoff.signatures_for(open_store(demo), person(demo, "ng"), MODEL, VERSION)
               if s.signer == "ng"]
    assert read.acknowledged_gates == shown
    assert f"approved knowing that 2 gates failed: {CRITERIA_GATE}; {CARD_GATE}" in read.manifestation()
    package = zipfile.ZipFile(io.BytesIO(evidence_package(open_store(demo), open_registry(demo),
                                                          person(demo, "kim"), MODEL, VERSION)))
    exported = [s for s in json.loads(package.read("signatures.json")) if s["signer"] == "ng"]
    assert exported[0]["acknowledged_gates"] == list(shown)
    # and v2 no longer waits for Dr Ng: her signature counts for the evidence as it stands
    mine = worklist.version_menu(open_store(demo), open_registry(demo), person(demo, "ng"), MODEL).option(VERSION)
    assert mine.signed_by_you and not mine.awaits_you


def test_a_rejection_needs_no_acknowledgement_and_stores_none(demo: Settings) -> None:
    signature, _ = sign(demo, "diaz", request(demo, "diaz", decision="request_changes"))
    assert signature.acknowledged_gates == ()
    (row,) = rows(demo, "diaz")
    assert row["acknowledged_gates"] is None


def _cli_sign(demo: Settings, username: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`python -m core.cli sign` in its own process, as an operator runs it (the password on standard input)."""
    return cli(demo, "sign", "--model", MODEL, "--version", str(VERSION), "--username", username,
               "--decision", "approve", "--rationale", RATIONALE, *extra, stdin=PASSWORDS[username] + "\n")


def test_the_command_line_refuses_without_the_flag_and_stores_the_acknowledgement_with_it(demo: Settings) -> None:
    refused = _cli_sign(demo, "patel")
    assert refused.returncode == 1
    assert "--acknowledge-failing-gates" in one_line_error(refused)
    assert rows(demo, "patel") == []
    signed = _cli_sign(demo, "patel", "--acknowledge-failing-gates")
    assert signed.returncode == 0, signed.stderr
    out = signed.stdout
    assert "Your approval is recorded; production will not change until the 2 failing gates are resolved" in out
    (row,) = rows(demo, "patel")
    assert json.loads(row["acknowledged_gates"]) == [CRITERIA_GATE, CARD_GATE]


# -- what an approval will do, in words (hand-built readiness) -------------------------------------------------
def _signature(signer: str, role: str) -> Signature:
    return Signature("", MODEL, VERSION, "sign_off", "approve", signer, signer.title(), role, "", "",
                     datetime(2026, 12, 1), "e", "e" * 64, "c" * 64, "a" * 64, "policy")


POLICY = (SignerRequirement("clinician", 2), SignerRequirement("data_scientist", 1))


def _readiness(failing: tuple[str, ...], approvals: list[Signature]) -> PromotionReadiness:
    gates = tuple(Gate(name, name not in failing, "") for name in ("Evaluation complete", CRITERIA_GATE, CARD_GATE))
    return PromotionReadiness(gates, quorum(POLICY, approvals))


def test_the_last_approval_needed_says_production_moves_at_once() -> None:
    approvals = [_signature("ng", "clinician"), _signature("okafor", "clinician")]
    outlook = approval_outlook(_readiness((), approvals), POLICY, approvals, _signature("diaz", "data_scientist"),
                               production_version=1)
    assert not outlook.needs_acknowledgement
    assert outlook.sentence == ("Your approval is the last one needed: production moves to v2 at once, and v1 is "
                                "kept as 'previous'.")


def test_an_approval_short_of_the_quorum_says_who_else_must_approve() -> None:
    outlook = approval_outlook(_readiness((), []), POLICY, [], _signature("ng", "clinician"), production_version=1)
    assert outlook.sentence == ("Your approval is recorded; production moves to v2 once 1 more clinician and 1 more "
                                "data scientist also approve.")


def test_failing_gates_hold_production_and_an_exception_is_named_only_where_it_helps() -> None:
    one = approval_outlook(_readiness((CRITERIA_GATE,), []), POLICY, [], _signature("ng", "clinician"),
                           production_version=1, exception_roles=("clinical_lead",))
    assert one.sentence == ("Your approval is recorded; production will not change until the failing gate is "
                            "resolved or a clinical lead signs an exception.")
    assert one.acknowledgement_label.startswith(f"I have read that 1 gate fails: {CRITERIA_GATE}.")
    card = approval_outlook(_readiness((CARD_GATE,), []), POLICY, [], _signature("ng", "clinician"),
                            production_version=1, exception_roles=("clinical_lead",))
    assert "exception" not in card.sentence and card.failing == (CARD_GATE,)
