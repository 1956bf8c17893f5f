"""Alerts: raised by ModelBoard's checks, de-duplicated, acknowledged by people, resolved when the cause is gone.

One open alert per rule and model (and version): a check that finds the same
problem again refreshes nothing and raises nothing new. Every change is audited.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from core.adapters.store import Cursor, Store
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.errors import NotFound, ValidationError
from core.services.audit import SYSTEM_ACTOR, record_event

Severity = Literal["critical", "warning", "info"]
OPEN_STATES = ("open", "acknowledged")


@dataclass(frozen=True)
class Alert:
    id: str
    rule: str
    model: str
    version: int | None
    severity: str
    status: str
    title: str
    message: str
    evidence: dict[str, Any]
    raised_at: datetime
    acknowledged_by: str | None = None
    acknowledgement: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None


def _alert(row: dict[str, Any]) -> Alert:
    return Alert(row["id"], row["rule"], row["model_name"], row["model_version"], row["severity"], row["status"],
                 row["title"], row["message"], json.loads(row["evidence"] or "{}"), row["raised_at"],
                 row["acknowledged_by"], row["acknowledgement"], row["resolved_by"], row["resolution"])


def raise_alert(cur: Cursor, *, rule: str, model: str, version: int | None, severity: Severity, title: str,
                message: str, evidence: dict[str, Any] | None = None) -> str | None:
    """Raise an alert in the caller's transaction unless one for the same rule, model and version is still
    open; returns the new alert's id, or None when it was a duplicate."""
    open_one = cur.execute(
        "SELECT id FROM alerts WHERE rule = ? AND model_name = ? AND model_version IS NOT DISTINCT FROM ? "
        "AND status IN ('open', 'acknowledged')", [rule, model, version]).fetchone()
    if open_one:
        return None
    alert_id = uuid.uuid4().hex
    cur.execute("INSERT INTO alerts (id, rule, model_name, model_version, severity, status, title, message, evidence, "
                "raised_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                [alert_id, rule, model, version, severity, title, message, json.dumps(evidence or {}, default=str),
                 utc_now()])
    record_event(cur, actor=SYSTEM_ACTOR, action="alert_raised", model=model, version=version,
                 detail={"alert": alert_id, "rule": rule, "severity": severity, "title": title})
    return alert_id


def resolve_alerts(cur: Cursor, *, rule: str, model: str, actor: str, resolution: str) -> int:
    """Close the open alerts of a rule on a model because their cause is gone (audited); returns how many."""
    rows = cur.execute("SELECT id, model_version FROM alerts WHERE rule = ? AND model_name = ? "
                       "AND status IN ('open', 'acknowledged')", [rule, model]).fetchall()
    for alert_id, version in rows:
        cur.execute("UPDATE alerts SET status = 'resolved', resolved_by = ?, resolved_at = ?, resolution = ? "
                    "WHERE id = ?", [actor, utc_now(), resolution, alert_id])
        record_event(cur, actor=actor, action="alert_resolved", model=model, version=version,
                     detail={"alert": alert_id, "rule": rule, "resolution": resolution})
    return len(rows)


def open_alerts(store: Store, viewer: User, *, model: str | None = None, version: int | None = None,
                severity: str | None = None) -> list[Alert]:
    """Alerts not yet resolved, most severe and newest first."""
    require(viewer, Permission.VIEW_REGISTRY)
    clauses, params = ["status IN ('open', 'acknowledged')"], []
    for column, value in (("model_name", model), ("model_version", version), ("severity", severity)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    rows = store.query(f"SELECT * FROM alerts WHERE {' AND '.join(clauses)} "  # noqa: S608 - fixed column names
                       "ORDER BY severity = 'critical' DESC, raised_at DESC", params)
    return [_alert(r) for r in rows]


def all_alerts(store: Store, viewer: User, *, limit: int = 500) -> list[Alert]:
    require(viewer, Permission.VIEW_REGISTRY)
    return [_alert(r) for r in store.query("SELECT * FROM alerts ORDER BY raised_at DESC LIMIT ?", [limit])]


def acknowledge(store: Store, actor: User, alert_id: str, note: str) -> None:
    """A person says they have seen the alert and what they are doing about it (audited). The alert stays
    until its cause is gone, so acknowledging never hides a problem."""
    _handle(store, actor, alert_id, note, "acknowledged", "acknowledgement", "what you are doing about the alert")


def resolve(store: Store, actor: User, alert_id: str, note: str) -> None:
    """A person closes an alert whose cause has been dealt with (audited, with what was done). A breach found
    again later raises a new alert, so resolving never silences monitoring."""
    _handle(store, actor, alert_id, note, "resolved", "resolution", "what was done about the cause")


def _handle(store: Store, actor: User, alert_id: str, note: str, status: str, note_column: str, ask: str) -> None:
    """Move an unresolved alert to `status` with the person's note, and audit it, in one transaction."""
    require(actor, Permission.HANDLE_ALERTS)
    note = note.strip()
    if not 5 <= len(note) <= 2000:
        raise ValidationError(f"say in a sentence (5–2,000 characters) {ask}")
    by, at = ("acknowledged_by", "acknowledged_at") if status == "acknowledged" else ("resolved_by", "resolved_at")
    with store.transaction() as cur:
        row = cur.execute("SELECT model_name, model_version, status, rule FROM alerts WHERE id = ?",
                          [alert_id]).fetchone()
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        if row[2] == "resolved":
            raise ValidationError("this alert is already resolved")
        cur.execute(f"UPDATE alerts SET status = ?, {by} = ?, {at} = ?, {note_column} = ? WHERE id = ?",  # noqa: S608
                    [status, actor.username, utc_now(), note, alert_id])
        record_event(cur, actor=actor.username, action=f"alert_{status}", model=row[0], version=row[1],
                     detail={"alert": alert_id, "rule": row[3], "note": note})
