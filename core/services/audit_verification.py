"""Checking the audit trail against what was written outside the store (docs/decisions/0008, 0014).

Three witnesses vouch for the chain: the signed checkpoint log beside
MODELBOARD_HOME (the newest line after every audited transaction), its newest
line mirrored into MLflow as an experiment tag whenever a command talks to the
registry, and the promotion anchors (registered-model tags). The chain is
read once with the newest checkpoint; only when something does not fit is
every checkpoint read, to name the first row a rewrite touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from core.adapters.audit_checkpoints import CheckpointLog
from core.adapters.store import Cursor, Store
from core.domain.audit_chain import (
    ANCHOR_TAG_PREFIX,
    GENESIS,
    AuditAnchor,
    ChainVerification,
    parse_anchor,
    verify_rows,
)
from core.domain.audit_checkpoint import (
    Checkpoint,
    CheckpointProblem,
    Coverage,
    all_anchors,
    newest_committed,
    parse_line,
)
from core.domain.clock import utc_now
from core.services.installation import set_fact

if TYPE_CHECKING:
    from core.adapters.registry import Registry

STARTED_FACT = "audit_checkpoints_started"
_BATCH = 20_000


@dataclass(frozen=True)
class _Evidence:
    """What the checkpoint log (and its mirror) say, before the chain is read."""

    coverage: Coverage | None = None
    lines: tuple[str, ...] = ()
    problem: str | None = None  # the log or mirror itself was tampered with or lost
    unanchored_because: str | None = None


def verify_chain(store: Store, registry: Registry | None = None) -> ChainVerification:
    """Recompute every row's hash and link, oldest first, and compare the newest signed checkpoint, its MLflow
    mirror and the promotion anchors with their rows. Anyone may ask; the answer names no content."""
    tags, unreadable = _anchor_tags(registry) if registry is not None else ([], [])
    with store.still() as cur:
        evidence = _evidence(cur, store.checkpoints, registry)
        coverage = evidence.coverage or Coverage((), None)
        newest = coverage.newest
        covered = dict(covered_to=newest.row_id, covered_by=newest.describe(_source(store))) if newest else {}
        result = verify_rows(_rows(cur), [*tags, *coverage.anchors], **covered)  # type: ignore[arg-type]
        if not result.ok and evidence.lines and store.checkpoints is not None:
            every = all_anchors(evidence.lines, store.checkpoints.source, newest)
            result = verify_rows(_rows(cur), [*tags, *every], **covered)  # type: ignore[arg-type]
    problem = None if not result.ok else evidence.problem or ("; ".join(unreadable) if unreadable else None)
    if problem is not None:
        return ChainVerification(False, result.rows, None, problem, result.head, result.anchors)
    return replace(
        result, anchored=result.ok and newest is not None,
        checkpoint=newest.as_dict(_source(store)) if newest is not None else None,
        unanchored_because=evidence.unanchored_because,
        interrupted=(f"the process writing row {coverage.interrupted.row_id} stopped before it committed; "
                     "nothing of that transaction was kept") if coverage.interrupted else None)


def _source(store: Store) -> str:
    return store.checkpoints.source if store.checkpoints is not None else "no checkpoint log"


def _rows(cur: Cursor) -> Iterator[tuple[Any, ...]]:
    rel = cur.execute("SELECT id, occurred_at, actor, action, target, model_name, model_version, "
                      "CAST(detail AS VARCHAR), prev_hash, row_hash FROM audit_events ORDER BY id")
    while batch := rel.fetchmany(_BATCH):
        yield from batch


def _evidence(cur: Cursor, log: CheckpointLog | None, registry: Registry | None) -> _Evidence:
    if log is None:
        return _Evidence(unanchored_because="this store was opened without a checkpoint log")
    try:
        lines = log.read()
        if not lines:
            return _missing_log(cur, log)
        coverage = newest_committed(lines, log.source, lambda row: _row_exists(cur, row))
        log.check_signature(parse_line(lines[-1], f"{log.source}, line {len(lines)}"), log.source)
        if registry is not None:
            _check_mirror(registry, log, lines)
    except CheckpointProblem as exc:
        return _Evidence(problem=str(exc))
    return _Evidence(coverage=coverage, lines=tuple(lines))


def _missing_log(cur: Cursor, log: CheckpointLog) -> _Evidence:
    started = cur.execute("SELECT value FROM installation WHERE key = ?", [STARTED_FACT]).fetchone()
    if started:
        return _Evidence(problem=f"{log.source} is missing or empty, although checkpoints have been written since "
                                 f"{started[0][:19]}: it was deleted or replaced. Restore it from the backup")
    return _Evidence(unanchored_because="no checkpoint has been written yet")


def _row_exists(cur: Cursor, row_id: int) -> bool:
    return cur.execute("SELECT 1 FROM audit_events WHERE id = ?", [row_id]).fetchone() is not None


def _check_mirror(registry: Registry, log: CheckpointLog, lines: list[str]) -> None:
    """The newest line as mirrored into MLflow must still be in the log: a log cut short or rewritten after it
    was mirrored no longer holds it."""
    raw = registry.audit_checkpoint_mirror()
    if raw is None:
        return
    source = "the checkpoint mirrored in MLflow"
    mirrored = parse_line(raw, source)
    log.check_signature(mirrored, source)
    if mirrored.n > len(lines):
        raise CheckpointProblem(f"{log.source} ends at line {len(lines)}, but {mirrored.describe(source)} is line "
                                f"{mirrored.n}: the log was cut short")
    if lines[mirrored.n - 1] != raw:
        raise CheckpointProblem(f"line {mirrored.n} of {log.source} differs from {mirrored.describe(source)}: "
                                "the log was rewritten")


def _anchor_tags(registry: Registry) -> tuple[list[AuditAnchor], list[str]]:
    anchors, unreadable = [], []
    for model, key, value in registry.model_tags(ANCHOR_TAG_PREFIX):
        try:
            anchors.append(parse_anchor(value, f"MLflow tag {key} of {model}"))
        except ValueError as exc:
            unreadable.append(str(exc))
    return anchors, unreadable


def start_checkpoints(store: Store) -> None:
    """Begin checkpointing a store: record when, and sign its present head as the first checkpoint (row 0 for a
    new store; its newest row for a store that already has a trail, an upgrade). Never when the log exists, and
    never again once started: a log that disappears later is a finding, not a fresh start."""
    log = store.checkpoints
    if log is None or log.exists():
        return
    with store.transaction() as cur:
        if cur.execute("SELECT 1 FROM installation WHERE key = ?", [STARTED_FACT]).fetchone():
            return
        head = cur.execute("SELECT id, row_hash, occurred_at FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
        now = utc_now()
        set_fact(cur, STARTED_FACT, now.isoformat())
        if head is None:
            log.append("commit", 0, GENESIS, now)  # the empty trail: the log exists from the very start
        else:
            log.append("commit", int(head[0]), head[1], head[2])


def mirror_checkpoint(store: Store, registry: Registry) -> Checkpoint | None:
    """Copy the log's newest line into MLflow (when it changed), so that cutting the log short is caught too.

    Only forward: a mirror that the log no longer holds is a finding for `audit verify`, and overwriting it
    with the log's present end would erase the evidence (CheckpointProblem)."""
    log = store.checkpoints
    if log is None or not log.exists():
        return None
    with store.still():
        lines = log.read()
    if not lines:
        return None
    _check_mirror(registry, log, lines)
    if registry.audit_checkpoint_mirror() != lines[-1]:
        registry.set_audit_checkpoint_mirror(lines[-1])
    return parse_line(lines[-1], log.source)
