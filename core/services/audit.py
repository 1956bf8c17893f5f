"""Recording and reading audit events.

An event is written inside the same transaction as the change it records, so
a change without its audit row (or the reverse) cannot happen. Rows are only
ever inserted; no code path updates or deletes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from core.adapters.store import Cursor, Store, note_audit_head
from core.domain.access import Permission, User, require
from core.domain.audit_chain import GENESIS, row_hash
from core.domain.clock import utc_now
from core.services.audit_verification import verify_chain

__all__ = ["AuditQuery", "record_event", "verify_chain", "list_events", "list_actions", "failed_logins_since",
           "record_export", "record_download"]

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class AuditQuery:
    """Filters for the audit log browser; None means no filter."""

    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    version: int | None = None
    limit: int = 500


def record_event(
    cur: Cursor,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    model: str | None = None,
    version: int | None = None,
) -> int:
    """Append one audit event, chained to the last one, using the caller's open transaction; returns its id.

    Store.transaction admits one writer per process and DuckDB one process per file, so the row read as
    the last one is still the last one when this transaction commits."""
    last = cur.execute("SELECT row_hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
    prev_hash = last[0] if last and last[0] else GENESIS
    seq = cur.execute("SELECT nextval('audit_event_seq')").fetchone()
    row_id = int(seq[0]) if seq else 0
    occurred_at = utc_now()
    text = json.dumps(dict(detail or {}), sort_keys=True, default=str)
    if model is not None and target is None:
        target = f"{model} v{version}" if version is not None else model
    digest = row_hash(row_id, occurred_at, actor, action, target, model, version, text, prev_hash=prev_hash)
    cur.execute(
        "INSERT INTO audit_events (id, occurred_at, actor, action, target, detail, model_name, model_version, "
        "prev_hash, row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [row_id, occurred_at, actor, action, target, text, model, version, prev_hash, digest],
    )
    note_audit_head(cur, row_id, digest, occurred_at)
    return row_id


def list_events(store: Store, viewer: User, query: AuditQuery = AuditQuery()) -> pd.DataFrame:
    """Audit events, newest first, for people allowed to read the audit log."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    clauses: list[str] = []
    params: list[object] = []
    for column, value, op in (
        ("actor", query.actor, "="),
        ("action", query.action, "="),
        ("occurred_at", query.since, ">="),
        ("occurred_at", query.until, "<"),
        ("model_name", query.model, "="),
        ("model_version", query.version, "="),
    ):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(max(1, min(query.limit, 10_000)))
    # The WHERE clause is assembled from fixed column names only; every value is a parameter.
    return store.query_df(
        f"SELECT id, occurred_at, actor, action, target, model_name, model_version, detail FROM audit_events {where} "  # noqa: S608
        "ORDER BY id DESC LIMIT ?",
        params,
    )


def list_actions(store: Store, viewer: User) -> list[str]:
    require(viewer, Permission.VIEW_AUDIT_LOG)
    return [r["action"] for r in store.query("SELECT DISTINCT action FROM audit_events ORDER BY 1")]


def failed_logins_since(store: Store, viewer: User, since: datetime) -> int:
    """How many logins failed since `since`: a spike can mean someone is guessing passwords."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    row = store.query_one(
        "SELECT count(*) AS n FROM audit_events WHERE action = 'login_failed' AND occurred_at >= ?", [since]
    )
    return int(row["n"]) if row else 0


def record_export(store: Store, viewer: User, *, what: str, rows: int, filters: AuditQuery) -> None:
    """Exports are audited too: who took which records out of ModelBoard, and when."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    with store.transaction() as cur:
        record_event(cur, actor=viewer.username, action="exported", target=what,
                     detail={"rows": rows, "filters": filters.__dict__})


def record_download(store: Store, viewer: User, *, what: str, model: str, version: int) -> None:
    """A model card or other record of a version taken out of ModelBoard (PDF, XML, …) is audited too."""
    require(viewer, Permission.VIEW_REGISTRY)
    with store.transaction() as cur:
        record_event(cur, actor=viewer.username, action="exported", model=model, version=version,
                     detail={"what": what})
