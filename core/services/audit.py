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

from core.adapters.store import Cursor, Store
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class AuditQuery:
    """Filters for the audit log browser; None means no filter."""

    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 500


def record_event(
    cur: Cursor,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit event using the caller's open transaction."""
    cur.execute(
        "INSERT INTO audit_events (occurred_at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        [utc_now(), actor, action, target, json.dumps(dict(detail or {}), sort_keys=True, default=str)],
    )


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
    ):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(max(1, min(query.limit, 10_000)))
    # The WHERE clause is assembled from fixed column names only; every value is a parameter.
    return store.query_df(
        f"SELECT id, occurred_at, actor, action, target, detail FROM audit_events {where} ORDER BY id DESC LIMIT ?",  # noqa: S608
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
