"""Signing off a model version: who may sign, what they signed, and whether the policy is satisfied.

Every signature re-asks for the signer's username and password, names the
card, evaluation and model files it was given for (by SHA-256), and is written
with its audit row in one transaction. An approval that completes the quorum
hands over to promotion, which moves the MLflow alias.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.adapters.registry import Registry
from core.adapters.store import Cursor, Store
from core.config import Settings
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.domain.model_card import ModelCard
from core.domain.models import STATUS_TAG
from core.domain.signoff import (
    ALERT_GATE,
    CARD_GATE,
    CRITERIA_GATE,
    DECISIONS,
    EVALUATION_GATE,
    USE_CASE_GATE,
    ApprovalOutlook,
    Evidence,
    Gate,
    PromotionReadiness,
    Signature,
    Standing,
    approval_outlook,
    quorum,
    standing,
)
from core.domain.usecase import UseCase
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.services.alerts import open_alerts
from core.services.audit import record_event
from core.services.auth import LoginPolicy, confirm_identity
from core.services.model_card import build_card, card_sha256
from core.services.submission import StoredEvaluation, latest_evaluation
from core.services.usecases import use_case_for_model

MAX_MEANING, MAX_RATIONALE = 300, 4_000


@dataclass(frozen=True)
class SignatureRequest:
    """What a signer submits: the decision, its meaning and rationale, both identification components,
    and the fingerprints of the card and evaluation they were shown."""

    model: str
    version: int
    decision: str
    meaning: str
    rationale: str
    username: str
    password: str
    shown_card_sha256: str
    shown_evaluation_id: str | None
    criteria: tuple[str, ...] = ()  # for a clinical lead's exception: the failed criteria accepted
    # For an approval: the failing gates the signer was shown and acknowledged (the page's tick box, the command
    # line's --acknowledge-failing-gates). An approval while a gate fails is refused without them.
    acknowledged_gates: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignOffState:
    """Everything the sign-off page shows for one version."""

    model: str
    version: int
    use_case: UseCase | None
    policy_label: str
    evidence: Evidence
    card: ModelCard
    evaluation: StoredEvaluation | None
    standings: tuple[Standing, ...]
    readiness: PromotionReadiness
    submitters: frozenset[str]
    production_version: int | None
    failed_criteria: tuple[str, ...]

    @property
    def in_production(self) -> bool:
        return self.production_version == self.version

    @property
    def failing_gates(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.readiness.gates if not g.passed)

    def outlook(self, signer: User) -> ApprovalOutlook:
        """What `signer`'s approval would do now: recorded only, or the last one needed (production moves)."""
        policy = self.use_case.promotion if self.use_case else None
        approvals = [s.signature for s in self.standings if s.valid and s.signature.kind == "sign_off"
                     and s.signature.decision == "approve"]
        theirs = Signature("", self.model, self.version, "sign_off", "approve", signer.username, signer.full_name,
                           signer.role, "", "", utc_now(), self.evidence.evaluation_id, self.evidence.evaluation_sha256,
                           self.evidence.card_sha256, self.evidence.artifact_sha256, self.policy_label)
        return approval_outlook(self.readiness, policy.signers if policy else (), approvals, theirs,
                                production_version=self.production_version,
                                exception_roles=policy.exception_roles if policy else ())


def _signature(row: dict[str, Any]) -> Signature:
    return Signature(row["id"], row["model_name"], int(row["model_version"]), row["kind"], row["decision"],
                     row["signer"], row["full_name"], row["role"], row["meaning"], row["rationale"], row["signed_at"],
                     row["evaluation_id"], row["evaluation_sha256"], row["card_sha256"], row["artifact_sha256"],
                     row["policy"], tuple(json.loads(row["criteria"] or "[]")),
                     tuple(json.loads(row.get("acknowledged_gates") or "[]")))


def signatures_for(store: Store, viewer: User, model: str, version: int) -> list[Signature]:
    """Every signature given for a version, oldest first, voided and expired ones included."""
    require(viewer, Permission.VIEW_REGISTRY)
    rows = store.query("SELECT * FROM signatures WHERE model_name = ? AND model_version = ? ORDER BY signed_at",
                       [model, version])
    return [_signature(r) for r in rows]


def signatures_by_id(store: Store, ids: list[str]) -> list[Signature]:
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    rows = store.query(f"SELECT * FROM signatures WHERE id IN ({marks}) ORDER BY signed_at", ids)  # noqa: S608
    return [_signature(r) for r in rows]


def submitters(store: Store, registry: Registry, model: str, version: int) -> frozenset[str]:
    """Who submitted or built the version: they may not sign it (separation of duties)."""
    rows = store.query("SELECT DISTINCT submitted_by AS who FROM evaluations WHERE model_name = ? "
                       "AND model_version = ? UNION SELECT DISTINCT actor FROM audit_events WHERE model_name = ? "
                       "AND model_version = ? AND action IN ('run_registered', 'model_uploaded', 'version_submitted')",
                       [model, version, model, version])
    names = {r["who"] for r in rows}
    names.add(registry.get_version(model, version).summary.logged_by)
    return frozenset(names)


def current_evidence(store: Store, registry: Registry, viewer: User, model: str,
                     version: int) -> tuple[Evidence, ModelCard, StoredEvaluation | None]:
    evaluation = latest_evaluation(store, viewer, model, version)
    card = build_card(store, registry, viewer, model, version)
    evidence = Evidence(evaluation.id if evaluation else None, evaluation.result_sha256 if evaluation else None,
                        card_sha256(card), registry.artifact_sha256(model, version))
    return evidence, card, evaluation


def sign_off_state(store: Store, registry: Registry, viewer: User, model: str, version: int,
                   *, now: datetime | None = None) -> SignOffState:
    """The version's gates, signatures (with whether each still counts) and quorum, as of `now`."""
    require(viewer, Permission.VIEW_REGISTRY)
    now = now or utc_now()
    try:
        use_case: UseCase | None = use_case_for_model(store, viewer, model)
    except NotFound:
        use_case = None
    evidence, card, evaluation = current_evidence(store, registry, viewer, model, version)
    policy = use_case.promotion if use_case else None
    days = policy.signoff_valid_days if policy else 90
    standings = tuple(standing(s, evidence, now=now, valid_days=days)
                      for s in signatures_for(store, viewer, model, version))
    failed = tuple(c["criterion"] for c in (evaluation.result.get("criteria", []) if evaluation else [])
                   if not c["passed"])
    valid = [s.signature for s in standings if s.valid]
    accepted = {c for s in valid if s.kind == "exception" for c in s.criteria}
    gates = _gates(store, viewer, use_case, card, evaluation, failed, accepted, model, version)
    approvals = [s for s in valid if s.kind == "sign_off" and s.decision == "approve"]
    blocking = tuple(s for s in standings if s.valid and s.signature.kind == "sign_off"
                     and s.signature.decision in ("reject", "request_changes"))
    readiness = PromotionReadiness(gates, quorum(policy.signers if policy else (), approvals), blocking)
    return SignOffState(model, version, use_case, _policy_label(use_case), evidence, card, evaluation, standings,
                        readiness, submitters(store, registry, model, version),
                        registry.version_for_alias(model, "production"), failed)


def _policy_label(use_case: UseCase | None) -> str:
    return f"use case {use_case.name} v{use_case.version}" if use_case else "no use case"


def _gates(store: Store, viewer: User, use_case: UseCase | None, card: ModelCard,
           evaluation: StoredEvaluation | None, failed: tuple[str, ...], accepted: set[str], model: str,
           version: int) -> tuple[Gate, ...]:
    gates = [Gate(USE_CASE_GATE, use_case is not None,
                  f"Governed by use case {use_case.name} v{use_case.version}." if use_case else
                  "No use case governs this model: an administrator must bind one before anyone can sign."),
             Gate(EVALUATION_GATE, evaluation is not None,
                  "ModelBoard evaluated this version." if evaluation else
                  "ModelBoard has not evaluated this version: a data scientist submits it first.")]
    open_failures = [c for c in failed if c not in accepted]
    gates.append(Gate(CRITERIA_GATE, evaluation is not None and not open_failures,
                      "Every criterion is met." if evaluation and not failed else
                      "Failed criteria are accepted in a signed exception: " + "; ".join(failed) + "."
                      if evaluation and not open_failures else
                      "Not met (and not accepted by a signed exception): " + "; ".join(open_failures) + "."
                      if evaluation else "No evaluation yet."))
    if use_case is None or use_case.promotion.require_complete_card:
        missing = [f.label for f in card.missing_required]
        gates.append(Gate(CARD_GATE, not missing, "Every required field is filled." if not missing else
                          "Required fields still empty: " + ", ".join(missing) + "."))
    critical = open_alerts(store, viewer, model=model, version=version, severity="critical")
    gates.append(Gate(ALERT_GATE, not critical, "No critical alert is open on this version."
                      if not critical else "Open critical alerts: " + "; ".join(a.title for a in critical) + "."))
    return tuple(gates)


def _check_request(request: SignatureRequest, signer: User, state: SignOffState, kind: str) -> None:
    """Refuse, before anything is written, what the rules do not allow; say why."""
    problems = []
    if kind == "sign_off" and request.decision not in DECISIONS:
        problems.append(f"decision must be one of {', '.join(DECISIONS)}, not {request.decision!r}")
    if not request.meaning.strip() or len(request.meaning) > MAX_MEANING:
        problems.append(f"state the meaning of your signature in 1–{MAX_MEANING} characters, "
                        "e.g. 'approved for clinical use in adult ICU'")
    if len(request.rationale.strip()) < 10 or len(request.rationale) > MAX_RATIONALE:
        problems.append(f"give your rationale in 10–{MAX_RATIONALE} characters")
    if problems:
        raise ValidationError("; ".join(problems))
    if signer.username in state.submitters:
        raise PermissionDenied(f"{signer.full_name} submitted or built {state.model} v{state.version} and so may not "
                               "sign it: separation of duties needs someone else.")
    if state.use_case is None or state.evaluation is None:
        raise ValidationError(f"{state.model} v{state.version} cannot be signed yet: "
                              + " ".join(g.explanation for g in state.readiness.gates[:2] if not g.passed))
    if (request.shown_card_sha256 != state.evidence.card_sha256
            or request.shown_evaluation_id != state.evidence.evaluation_id):
        raise ValidationError("The model card or evaluation changed after you opened it. Reload the page, "
                              "review what changed and sign again.")
    if any(s.valid and s.signature.signer == signer.username and s.signature.kind == kind for s in state.standings):
        raise ValidationError(f"{signer.full_name} has already signed {state.model} v{state.version} as it stands; "
                              "one person signs a version once.")
    if kind == "sign_off" and request.decision == "approve":
        _check_acknowledgement(request, state)


def _check_acknowledgement(request: SignatureRequest, state: SignOffState) -> None:
    """An approval while gates fail is allowed only when its signer acknowledged each failing gate: they must
    know their approval is recorded but does not move production (issue 14, signing with eyes open)."""
    failing = state.failing_gates
    missing = [g for g in failing if g not in request.acknowledged_gates]
    if missing:
        count = len(failing)
        raise ValidationError(
            f"{count} gate{'s' if count != 1 else ''} of {state.model} v{state.version} "
            f"fail{'' if count != 1 else 's'} now ({'; '.join(failing)}): approving anyway needs your "
            "acknowledgement. Tick 'I have read that … fail' above the Sign button (reload the page first if it "
            "did not show these gates), or pass --acknowledge-failing-gates to `python -m core.cli sign`.")


def store_signature(cur: Cursor, signature: Signature, action: str, **extra: Any) -> None:
    """Write a signature and its audit row in the caller's transaction (the audit row repeats what was
    signed, so the chain holds it even if the signatures table were tampered with)."""
    cur.execute("INSERT INTO signatures (id, model_name, model_version, kind, decision, signer, full_name, role, "
                "meaning, rationale, signed_at, evaluation_id, evaluation_sha256, card_sha256, artifact_sha256, "
                "policy, criteria, acknowledged_gates) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [signature.id, signature.model, signature.version, signature.kind, signature.decision,
                 signature.signer, signature.full_name, signature.role, signature.meaning, signature.rationale,
                 signature.signed_at, signature.evaluation_id, signature.evaluation_sha256, signature.card_sha256,
                 signature.artifact_sha256, signature.policy, json.dumps(list(signature.criteria)),
                 json.dumps(list(signature.acknowledged_gates)) if signature.acknowledged_gates else None])
    record_event(cur, actor=signature.signer, action=action, model=signature.model, version=signature.version,
                 detail={"signature": signature.id, "decision": signature.decision, "meaning": signature.meaning,
                         "rationale": signature.rationale, "card_sha256": signature.card_sha256,
                         "evaluation_sha256": signature.evaluation_sha256, "criteria": list(signature.criteria),
                         "artifact_sha256": signature.artifact_sha256, "policy": signature.policy,
                         **({"acknowledged_failing_gates": list(signature.acknowledged_gates)}
                            if signature.acknowledged_gates else {}), **extra})


def _write(store: Store, signer: User, request: SignatureRequest, state: SignOffState, *, kind: str,
           decision: str, action: str) -> Signature:
    signature = Signature(uuid.uuid4().hex, state.model, state.version, kind, decision, signer.username,
                          signer.full_name, signer.role, request.meaning.strip(), request.rationale.strip(),
                          utc_now(), state.evidence.evaluation_id, state.evidence.evaluation_sha256,
                          state.evidence.card_sha256, state.evidence.artifact_sha256, state.policy_label,
                          tuple(request.criteria), _acknowledged(request, state, kind))
    try:
        with store.transaction() as cur:
            store_signature(cur, signature, action)
    except Conflict as exc:
        raise ValidationError(f"{signer.full_name} has already signed {state.model} v{state.version} as it stands; "
                              "one person signs a version once.") from exc
    return signature


def _acknowledged(request: SignatureRequest, state: SignOffState, kind: str) -> tuple[str, ...]:
    """What is stored with an approval: the gates failing as it was given (each acknowledged by its signer)."""
    return state.failing_gates if kind == "sign_off" and request.decision == "approve" else ()


Promoter = Callable[[Settings, Store, Registry, User, str, int], Any]


def sign(settings: Settings, store: Store, registry: Registry, signer: User, request: SignatureRequest,
         *, promote: Promoter | None = None) -> tuple[Signature, Any]:
    """Record an approval, rejection or change request; an approval that completes the policy promotes the
    version (through `promote`, default core.services.promotion.promote_if_ready). Returns the signature and
    the promotion (or None)."""
    require(signer, Permission.SIGN_OFF)
    confirm_identity(store, LoginPolicy.from_settings(settings), signer, request.username, request.password,
                     purpose=f"sign {request.model} v{request.version}")
    state = sign_off_state(store, registry, signer, request.model, request.version)
    _check_request(request, signer, state, "sign_off")
    if state.in_production:  # a label must never contradict the alias: 'rejected' while patients are scored by it
        raise ValidationError(
            f"{request.model} v{request.version} is already in production; a sign-off signature cannot change "
            "that. To take it out of clinical use, a clinical lead signs a rollback on the Sign-off page.")
    signature = _write(store, signer, request, state, kind="sign_off", decision=request.decision, action="signed")
    if request.decision != "approve":
        registry.tag_version(request.model, request.version, {STATUS_TAG: {
            "reject": "rejected", "request_changes": "changes_requested"}[request.decision]})
        return signature, None
    if promote is None:
        from core.services.promotion import promote_if_ready

        promote = promote_if_ready
    return signature, promote(settings, store, registry, signer, request.model, request.version)


def accept_exception(settings: Settings, store: Store, registry: Registry, signer: User,
                     request: SignatureRequest) -> Signature:
    """A clinical lead (or whoever the policy names) accepts failed criteria in a signed statement; the
    failure stays visible everywhere, with this signature beside it."""
    require(signer, Permission.SIGN_OFF)
    confirm_identity(store, LoginPolicy.from_settings(settings), signer, request.username, request.password,
                     purpose=f"accept an exception for {request.model} v{request.version}")
    state = sign_off_state(store, registry, signer, request.model, request.version)
    roles = state.use_case.promotion.exception_roles if state.use_case else ()
    if signer.role not in roles:
        raise PermissionDenied(f"only a {' or '.join(r.replace('_', ' ') for r in roles) or 'nobody'} may accept a "
                               f"failed criterion under {state.policy_label}")
    unknown = [c for c in request.criteria if c not in state.failed_criteria]
    if not request.criteria or unknown:
        raise ValidationError("choose the failed criteria you accept" + (
            f"; these did not fail: {', '.join(unknown)}" if unknown else ""))
    _check_request(request, signer, state, "exception")
    return _write(store, signer, request, state, kind="exception", decision="accept_exception",
                  action="exception_accepted")
