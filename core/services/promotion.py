"""Moving the `production` alias: promotion, rollback, reconciliation and the checks behind them.

MLflow and DuckDB cannot share a transaction, so every alias move is written
as an intent first, then the aliases move, then the completion is written.
`reconcile` (at start-up and from the CLI) finishes or rolls back any intent
left without completion. ModelBoard records every alias it sets or finds in
`alias_history`; an alias that differs from that record was moved outside
ModelBoard and raises a critical alert. See docs/decisions/0009-promotion.md.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.adapters.crash_points import crash_point
from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import Settings
from core.domain.access import Permission, User, require
from core.domain.audit_chain import ANCHOR_TAG_PREFIX, AuditAnchor
from core.domain.audit_checkpoint import CheckpointProblem
from core.domain.clock import utc_now
from core.domain.models import STATUS_TAG
from core.domain.signoff import Signature
from core.errors import NotFound, ValidationError
from core.services.alerts import raise_alert, resolve_alerts
from core.services.audit import SYSTEM_ACTOR, record_event
from core.services.audit_verification import mirror_checkpoint
from core.services.auth import LoginPolicy, confirm_identity
from core.services.evaluation import publish_missing
from core.services.evaluation_debris import Debris, clean_interrupted
from core.services.signoff import MAX_RATIONALE, sign_off_state, store_signature

WATCHED_ALIASES = ("production", "previous")
OUT_OF_BAND_RULE = "alias_moved_out_of_band"
ARTIFACT_RULE = "artifact_changed"
SYSTEM = User(username=SYSTEM_ACTOR, full_name="ModelBoard", role="admin")


@dataclass(frozen=True)
class Promotion:
    id: str
    model: str
    kind: str  # promotion | rollback
    from_version: int | None
    to_version: int
    state: str  # intent | completed | rolled_back
    policy: str | None
    signature_ids: tuple[str, ...]
    artifact_sha256: str
    requested_by: str
    started_at: datetime
    finished_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True)
class Finding:
    """Something reconcile or verify found, in words; `problem` findings make the CLI exit 1."""

    kind: str
    model: str
    message: str
    problem: bool
    alias: str | None = None
    old_version: int | None = None
    new_version: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _lock(store: Store, model: str) -> Any:
    """The model's promotion lock, held across processes and replicas while its aliases are read and moved."""
    return store.exclusive(f"aliases of {model}")


def _promotion(row: dict[str, Any]) -> Promotion:
    return Promotion(row["id"], row["model_name"], row["kind"], row["from_version"], int(row["to_version"]),
                     row["state"], row["policy"], tuple(json.loads(row["signature_ids"])), row["artifact_sha256"],
                     row["requested_by"], row["started_at"], row["finished_at"], row["note"])


def promotions(store: Store, viewer: User, model: str | None = None) -> list[Promotion]:
    require(viewer, Permission.VIEW_REGISTRY)
    rows = store.query("SELECT * FROM promotions WHERE ? IS NULL OR model_name = ? ORDER BY started_at",
                       [model, model])
    return [_promotion(r) for r in rows]


def recorded_aliases(store: Store, model: str, *, approved_only: bool = True) -> dict[str, int | None] | None:
    """What ModelBoard last recorded for each watched alias: by default only what it set or adopted itself
    (an out-of-band move is never the approved state); None if it never looked at this model."""
    kinds = "kind <> 'out_of_band'" if approved_only else "TRUE"
    rows = store.query(f"SELECT alias, version FROM alias_history h WHERE model_name = ? AND id = (SELECT max(id) "  # noqa: S608
                       f"FROM alias_history g WHERE g.model_name = h.model_name AND g.alias = h.alias AND {kinds})",
                       [model])
    if not rows and not store.query_one("SELECT 1 FROM alias_history WHERE model_name = ?", [model]):
        return None
    return {r["alias"]: r["version"] for r in rows}


def _history(cur: Any, model: str, alias: str, version: int | None, kind: str, actor: str,
             promotion_id: str | None = None, artifact: str | None = None) -> None:
    cur.execute("INSERT INTO alias_history (model_name, alias, version, changed_at, kind, promotion_id, actor, "
                "artifact_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [model, alias, version, utc_now(), kind, promotion_id, actor, artifact])


# -- promotion ---------------------------------------------------------------------------------------------------
def promote_if_ready(settings: Settings, store: Store, registry: Registry, actor: User, model: str,
                     version: int) -> Promotion | None:
    """Promote `version` if every gate passes and the quorum is reached; None otherwise. Two sessions that give
    the last approvals at the same moment serialise on the model's lock: the second finds it done."""
    require(actor, Permission.SIGN_OFF)
    with _lock(store, model):
        _reconcile_model(settings, store, registry, model)
        if registry.version_for_alias(model, "production") == version:
            return None
        if any(f.problem and f.kind != UNSIGNED for f in _check_model_aliases(store, registry, model)):
            return None  # an out-of-band move is a critical alert; promotion waits until people resolve it
        # (an unsigned production version does not wait: a reviewed successor is how that finding is resolved)
        state = sign_off_state(store, registry, SYSTEM, model, version)
        if not state.readiness.ready:
            return None
        ids = tuple(s.signature.id for s in state.standings if s.valid)
        promotion = _start(store, actor, model, "promotion", state.production_version, version, state.policy_label,
                           ids, state.evidence.artifact_sha256)
        return _carry_out(store, registry, promotion, actor.username)


def _start(store: Store, actor: User, model: str, kind: str, from_version: int | None, to_version: int,
           policy: str | None, signature_ids: tuple[str, ...], artifact: str) -> Promotion:
    promotion = Promotion(uuid.uuid4().hex, model, kind, from_version, to_version, "intent", policy, signature_ids,
                          artifact, actor.username, utc_now())
    with store.transaction() as cur:
        cur.execute("INSERT INTO promotions VALUES (?, ?, ?, ?, ?, 'intent', ?, ?, ?, ?, ?, NULL, NULL)",
                    [promotion.id, model, kind, from_version, to_version, policy, json.dumps(list(signature_ids)),
                     artifact, actor.username, promotion.started_at])
        record_event(cur, actor=actor.username, action=f"{kind}_intent", model=model, version=to_version,
                     detail={"promotion": promotion.id, "from_version": from_version, "to_version": to_version,
                             "signatures": list(signature_ids), "artifact_sha256": artifact, "policy": policy})
    crash_point(f"{kind}:intent")
    return promotion


def _carry_out(store: Store, registry: Registry, promotion: Promotion, actor: str) -> Promotion:
    """Move the aliases, tag both versions, record the completion. If the process dies in between, the
    intent stays and reconcile finishes the job."""
    model, to_version, from_version = promotion.model, promotion.to_version, promotion.from_version
    _anchor_intent(store, registry, promotion)
    if promotion.kind == "promotion" and from_version is not None:
        registry.set_alias(model, "previous", from_version)
        crash_point("promotion:previous-moved")
    registry.set_alias(model, "production", to_version)
    crash_point(f"{promotion.kind}:production-moved")
    if promotion.kind == "rollback" and registry.version_for_alias(model, "previous") in (to_version, from_version):
        registry.delete_alias(model, "previous")  # neither side of a rollback is a version to go back to
    registry.tag_version(model, to_version, {STATUS_TAG: "approved", "modelboard.promotion": promotion.id,
                                             "modelboard.artifact_sha256": promotion.artifact_sha256})
    if from_version is not None and from_version != to_version:
        registry.tag_version(model, from_version,
                             {STATUS_TAG: "retired" if promotion.kind == "promotion" else "rolled_back"})
    crash_point(f"{promotion.kind}:tagged")
    return _complete(store, promotion, actor, registry.version_for_alias(model, "previous"))


def _anchor_intent(store: Store, registry: Registry, promotion: Promotion) -> None:
    """Write the intent row's hash into MLflow before anything moves: a copy of the trail's state outside the
    store, so a trail rewritten from scratch no longer matches it (docs/decisions/0008)."""
    row = store.query_one("SELECT id, row_hash FROM audit_events WHERE action = ? AND "
                          "json_extract_string(detail, '$.promotion') = ? ORDER BY id LIMIT 1",
                          [f"{promotion.kind}_intent", promotion.id])
    if row is None:
        raise NotFound(f"the audit row of {promotion.kind} {promotion.id} is missing: run `audit verify`")
    anchor = AuditAnchor(int(row["id"]), row["row_hash"], "MLflow")
    registry.tag_model(promotion.model, ANCHOR_TAG_PREFIX + promotion.id, anchor.tag_value())
    try:
        mirror_checkpoint(store, registry)
    except CheckpointProblem:
        pass  # the mirror only moves forward; `audit verify` reports a log that no longer holds it


def _complete(store: Store, promotion: Promotion, actor: str, previous: int | None) -> Promotion:
    now = utc_now()
    with store.transaction() as cur:
        cur.execute("UPDATE promotions SET state = 'completed', finished_at = ? WHERE id = ? AND state = 'intent'",
                    [now, promotion.id])
        kind = "promoted" if promotion.kind == "promotion" else "rolled_back"
        _history(cur, promotion.model, "production", promotion.to_version, kind, actor, promotion.id,
                 promotion.artifact_sha256)
        _history(cur, promotion.model, "previous", previous, kind, actor, promotion.id)
        resolve_alerts(cur, rule=OUT_OF_BAND_RULE, model=promotion.model, actor=actor,
                       resolution=f"production set to v{promotion.to_version} through ModelBoard ({promotion.kind})")
        record_event(cur, actor=actor, action=f"{promotion.kind}_completed", model=promotion.model,
                     version=promotion.to_version,
                     detail={"promotion": promotion.id, "from_version": promotion.from_version,
                             "production": promotion.to_version, "previous": previous})
    return Promotion(**{**promotion.__dict__, "state": "completed", "finished_at": now})


def _abandon(store: Store, registry: Registry, promotion: Promotion, reason: str) -> None:
    _anchor_intent(store, registry, promotion)
    with store.transaction() as cur:
        cur.execute("UPDATE promotions SET state = 'rolled_back', finished_at = ?, note = ? WHERE id = ?",
                    [utc_now(), reason, promotion.id])
        record_event(cur, actor=SYSTEM_ACTOR, action=f"{promotion.kind}_rolled_back", model=promotion.model,
                     version=promotion.to_version, detail={"promotion": promotion.id, "reason": reason})


# -- rollback ----------------------------------------------------------------------------------------------------
def rollback_target(store: Store, registry: Registry, model: str) -> int | None:
    """The version to go back to: the approved one if production was moved outside ModelBoard, else the
    `previous` alias, else the last version ModelBoard itself put in production other than the current one."""
    aliases = registry.aliases(model)
    approved = (recorded_aliases(store, model) or {}).get("production")
    if approved is not None and approved != aliases.get("production"):
        return approved
    if "previous" in aliases:
        return aliases["previous"]
    row = store.query_one("SELECT version FROM alias_history WHERE model_name = ? AND alias = 'production' AND "
                          "kind IN ('promoted', 'adopted', 'rolled_back') AND version IS NOT NULL AND version <> ? "
                          "ORDER BY id DESC LIMIT 1", [model, aliases.get("production", -1)])
    return int(row["version"]) if row else None


def roll_back(settings: Settings, store: Store, registry: Registry, signer: User, model: str, *, username: str,
              password: str, rationale: str) -> Promotion:
    """A signed action: put the previous version back into production at once (one clinical signature)."""
    require(signer, Permission.ROLL_BACK)
    if len(rationale.strip()) < 10:
        raise ValidationError("say why you roll back, in at least 10 characters (it is part of the signature)")
    confirm_identity(store, LoginPolicy.from_settings(settings), signer, username, password,
                     purpose=f"roll back {model}")
    with _lock(store, model):
        _reconcile_model(settings, store, registry, model)
        current, target = registry.version_for_alias(model, "production"), rollback_target(store, registry, model)
        if current is None or target is None:
            raise NotFound(f"{model} has no version to roll back to: no 'previous' alias and no earlier version "
                           "in ModelBoard's records")
        artifact = registry.artifact_sha256(model, target)
        signature_id = _rollback_signature(store, signer, model, current, target, rationale, artifact)
        crash_point("rollback:signed")
        promotion = _start(store, signer, model, "rollback", current, target, None, (signature_id,), artifact)
        return _carry_out(store, registry, promotion, signer.username)


def _rollback_signature(store: Store, signer: User, model: str, current: int, target: int, rationale: str,
                        artifact: str) -> str:
    """The rollback's own signature, on the version put back (no card or evaluation: it is a safety act)."""
    signature = Signature(uuid.uuid4().hex, model, target, "rollback", "rollback", signer.username, signer.full_name,
                          signer.role, f"Rolled back {model} to v{target}: v{current} withdrawn from clinical use",
                          rationale.strip()[:MAX_RATIONALE], utc_now(), None, None, None, artifact, "rollback")
    with store.transaction() as cur:
        store_signature(cur, signature, "signed", withdrawn_version=current)
    return signature.id


# -- reconcile and checks ------------------------------------------------------------------------------------------
def _pending(store: Store, model: str | None = None) -> list[Promotion]:
    rows = store.query("SELECT * FROM promotions WHERE state = 'intent' AND (? IS NULL OR model_name = ?) "
                       "ORDER BY started_at", [model, model])
    return [_promotion(r) for r in rows]


def _reconcile_model(settings: Settings, store: Store, registry: Registry, model: str) -> list[Finding]:
    """Finish or roll back this model's unfinished intents (call with the model's lock held)."""
    findings = []
    for promotion in _pending(store, model):
        production = registry.version_for_alias(model, "production")
        if production == promotion.to_version:
            _carry_out(store, registry, promotion, SYSTEM_ACTOR)  # aliases moved before the crash: finish tags
            verb, problem = "finished (the alias had already moved)", False
        elif production != promotion.from_version:
            _abandon(store, registry, promotion, f"production points at v{production}, neither side of the intent")
            verb, problem = "rolled back (the alias was moved by someone else meanwhile)", True
        elif promotion.kind == "rollback" or sign_off_state(store, registry, SYSTEM, model,
                                                               promotion.to_version).readiness.ready:
            _carry_out(store, registry, promotion, SYSTEM_ACTOR)
            verb, problem = "finished", False
        else:
            _abandon(store, registry, promotion, "the gates or signatures no longer hold")
            verb, problem = "rolled back (its gates or signatures no longer hold)", False
        findings.append(Finding("interrupted_" + promotion.kind, model,
                                f"An interrupted {promotion.kind} of {model} to v{promotion.to_version} was {verb}.",
                                problem, "production", promotion.from_version, promotion.to_version,
                                {"promotion": promotion.id}))
    return findings


def _check_model_aliases(store: Store, registry: Registry, model: str) -> list[Finding]:
    """Compare the registry's aliases with what ModelBoard approved (call with the model's lock held). A
    difference is reported on every check until it is gone; it is recorded and alerted once per new value."""
    actual = {a: v for a, v in registry.aliases(model).items() if a in WATCHED_ALIASES}
    approved = recorded_aliases(store, model)
    if approved is None:
        return _adopt(store, registry, model, actual) + _unsigned_production(store, model, actual.get("production"))
    findings = _moved(store, model, approved, actual)
    return findings + _unsigned_production(store, model, approved.get("production"))


def _moved(store: Store, model: str, approved: dict[str, int | None], actual: dict[str, int]) -> list[Finding]:
    seen = recorded_aliases(store, model, approved_only=False) or {}
    findings = []
    for alias in WATCHED_ALIASES:
        old, new = approved.get(alias), actual.get(alias)
        if old == new:
            if seen.get(alias) != new:
                _moved_back(store, model, alias, new)
            continue
        message = (f"The '{alias}' alias of {model} was moved from {f'v{old}' if old else 'nowhere'} to "
                   f"{f'v{new}' if new else 'nowhere (removed)'} directly in MLflow, not through ModelBoard's "
                   "sign-off. Check who changed it, then roll back through ModelBoard.")
        if seen.get(alias) != new:
            _record_out_of_band(store, model, alias, old, new, message)
        findings.append(Finding("alias_moved_out_of_band", model, message, True, alias, old, new))
    return findings


UNSIGNED = "production_without_signoff"


def _unsigned_production(store: Store, model: str, version: int | None) -> list[Finding]:
    """A production version that no ModelBoard sign-off (or signed rollback) put there stays a finding on every
    check: recording the aliases ModelBoard found is a baseline for detecting moves, never an approval."""
    if version is None or store.query_one(
            "SELECT 1 FROM alias_history WHERE model_name = ? AND alias = 'production' AND version = ? "
            "AND kind IN ('promoted', 'rolled_back')", [model, version]):
        return []
    first = store.query_one("SELECT min(changed_at) AS at FROM alias_history WHERE model_name = ? AND alias = "
                            "'production' AND version = ?", [model, version])
    since = (f" (it held the alias when ModelBoard first looked, {first['at']:%Y-%m-%d})"
             if first and first["at"] else "")
    return [Finding(UNSIGNED, model,
                    f"v{version} of {model} is in clinical use (MLflow alias 'production'), but no ModelBoard "
                    f"sign-off approved it{since}. Submit it for review, or roll back to a reviewed version.",
                    True, "production", None, version)]


def record_first_aliases(settings: Settings, store: Store, registry: Registry, model: str) -> None:
    """Record a model's aliases when ModelBoard first connects to it (demo build, a newly registered model), so
    that the very first check already compares against something instead of adopting what it finds."""
    with _lock(store, model):
        if recorded_aliases(store, model) is None:
            actual = {a: v for a, v in registry.aliases(model).items() if a in WATCHED_ALIASES}
            _adopt(store, registry, model, actual)


def _record_out_of_band(store: Store, model: str, alias: str, old: int | None, new: int | None, message: str) -> None:
    with store.transaction() as cur:
        _history(cur, model, alias, new, "out_of_band", SYSTEM_ACTOR)
        record_event(cur, actor=SYSTEM_ACTOR, action="alias_moved_out_of_band", model=model, version=new,
                     detail={"alias": alias, "old_version": old, "new_version": new})
        raise_alert(cur, rule=OUT_OF_BAND_RULE, model=model, version=new, severity="critical",
                    title=f"'{alias}' of {model} moved outside ModelBoard (v{old} → v{new})", message=message,
                    evidence={"alias": alias, "old_version": old, "new_version": new})


def _moved_back(store: Store, model: str, alias: str, version: int | None) -> None:
    """Someone put the alias back where ModelBoard had it: record it and close the alert."""
    with store.transaction() as cur:
        _history(cur, model, alias, version, "restored", SYSTEM_ACTOR)
        record_event(cur, actor=SYSTEM_ACTOR, action="alias_restored", model=model, version=version,
                     detail={"alias": alias, "version": version})
        resolve_alerts(cur, rule=OUT_OF_BAND_RULE, model=model, actor=SYSTEM_ACTOR,
                       resolution=f"'{alias}' is back at the version ModelBoard approved")


def _adopt(store: Store, registry: Registry, model: str, actual: dict[str, int]) -> list[Finding]:
    """First sight of a model: record its aliases as found, with the production version's artifact hash,
    so later moves and file changes can be told apart from this baseline."""
    with store.transaction() as cur:
        for alias in WATCHED_ALIASES:
            version = actual.get(alias)
            artifact = registry.artifact_sha256(model, version) if alias == "production" and version else None
            _history(cur, model, alias, version, "adopted", SYSTEM_ACTOR, artifact=artifact)
        record_event(cur, actor=SYSTEM_ACTOR, action="alias_adopted", model=model, version=actual.get("production"),
                     detail={"aliases": actual})
    return [Finding("alias_adopted", model, f"ModelBoard recorded the aliases of {model} as found in MLflow: "
                    f"{actual or 'none'}, as the baseline later moves are compared with.", False)]


def check_aliases(settings: Settings, store: Store, registry: Registry, viewer: User) -> list[Finding]:
    """Every registered model's watched aliases against ModelBoard's record (on page load, reconcile, verify)."""
    require(viewer, Permission.VIEW_REGISTRY)
    findings: list[Finding] = []
    for model in registry.list_models():
        with _lock(store, model.name):
            if not _pending(store, model.name):  # an unfinished promotion explains a difference: reconcile it
                findings += _check_model_aliases(store, registry, model.name)
    return findings


def reconcile(settings: Settings, store: Store, registry: Registry, actor: User) -> list[Finding]:
    """Finish or roll back every unfinished intent, then check every alias against the record."""
    require(actor, Permission.RECONCILE)
    findings: list[Finding] = [_debris_finding(d) for d in clean_interrupted(settings, store)]
    findings += [Finding("evaluation_published", model, f"The evaluation of {model} v{version} was stored but never "
                         "published to MLflow (its worker stopped); it is now tagged in review.", False,
                         new_version=version) for model, version in publish_missing(store, registry)]
    for model in sorted({p.model for p in _pending(store)}):
        with _lock(store, model):
            findings += _reconcile_model(settings, store, registry, model)
    return findings + check_aliases(settings, store, registry, actor)


def _debris_finding(debris: Debris) -> Finding:
    if debris.kind == "evaluation":
        return Finding("interrupted_evaluation", str(debris.model),
                       f"An interrupted evaluation of {debris.model} v{debris.version} ({debris.name}) was recorded "
                       "as failed and its patient-level data removed; submit the version again.", False,
                       new_version=debris.version, detail={"evaluation": debris.name})
    if debris.kind == "evaluation_files":
        return Finding("abandoned_evaluation_files", "", f"Evaluation data written by a submission that stopped "
                       f"before it was recorded ({debris.name}) was removed.", False, detail={"folder": debris.name})
    return Finding("abandoned_upload", "", f"An uploaded evaluation file left by a submission that did not finish "
                   f"({debris.name}) was removed.", False, detail={"file": debris.name})


def verify_artifacts(store: Store, registry: Registry, viewer: User) -> list[Finding]:
    """Recompute the files' hash of each production version and compare with the one recorded when it was
    promoted (or adopted); a difference raises a critical alert: a locked model must not change."""
    require(viewer, Permission.VIEW_REGISTRY)
    findings = []
    for model in registry.list_models():
        version = model.aliases.get("production")
        row = store.query_one("SELECT artifact_sha256 FROM alias_history WHERE model_name = ? AND alias = 'production' "
                              "AND version = ? AND artifact_sha256 IS NOT NULL ORDER BY id DESC LIMIT 1",
                              [model.name, version])
        if version is None or row is None:
            continue
        actual = registry.artifact_sha256(model.name, version)
        if actual == row["artifact_sha256"]:
            findings.append(Finding("artifact_verified", model.name, f"{model.name} v{version}: the model files "
                                    "match the fingerprint recorded at approval.", False, "production", version,
                                    version, {"sha256": actual}))
            continue
        message = (f"The files of {model.name} v{version}, in production, changed after approval (recorded "
                   f"{row['artifact_sha256'][:12]}…, now {actual[:12]}…). A locked model must not change: roll back "
                   "and investigate.")
        with store.transaction() as cur:
            record_event(cur, actor=SYSTEM_ACTOR, action="artifact_mismatch", model=model.name, version=version,
                         detail={"recorded": row["artifact_sha256"], "actual": actual})
            raise_alert(cur, rule=ARTIFACT_RULE, model=model.name, version=version, severity="critical",
                        title=f"{model.name} v{version}: model files changed after approval", message=message,
                        evidence={"recorded": row["artifact_sha256"], "actual": actual})
        findings.append(Finding("artifact_mismatch", model.name, message, True, "production", version, version,
                                {"recorded": row["artifact_sha256"], "actual": actual}))
    return findings


def verify(settings: Settings, store: Store, registry: Registry, viewer: User) -> list[Finding]:
    return check_aliases(settings, store, registry, viewer) + verify_artifacts(store, registry, viewer)


