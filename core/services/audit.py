"""Recording and reading audit events.

An event is written inside the same transaction as the change it records, so
a change without its audit row (or the reverse) cannot happen. Rows are only
ever inserted; no code path updates or deletes them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from core.adapters.store import Cursor, Store, note_audit_head
from core.domain import glossary
from core.domain.access import Permission, User, require
from core.domain.audit_chain import GENESIS, row_hash
from core.domain.clock import utc_now
from core.domain.palette import MUTED as OTHER_COLOUR
from core.domain.palette import OKABE_ITO
from core.services.audit_verification import verify_chain

__all__ = ["AuditQuery", "record_event", "verify_chain", "list_events", "list_actions", "failed_logins_since",
           "record_export", "record_download", "EventsPerDay", "events_per_day", "events_for_screen",
           "detail_summary", "short_id", "OKABE_ITO"]

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


def store_revision(store: Store) -> int:
    """The newest audit row's id: every governance write records one, so a page cache keyed on it is never staler
    than the store, whichever process or app replica wrote (issue 15)."""
    with store.cursor() as cur:
        row = cur.execute("SELECT coalesce(max(id), 0) FROM audit_events").fetchone()
    return int(row[0]) if row else 0


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


# ---- display helpers for the Audit log page (pure: they read a frame list_events already returned) --------------

# Okabe & Ito's colour-blind-safe palette (black left out: it reads as a border), then a grey for "other".
PATTERNS = ("", "/", "\\", "x", "-", "|", "+", ".")  # a second cue besides colour (never colour alone)
HEX = re.compile(r"\b(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{13,})\b")
KEY_WORDS = {"sha256": "Fingerprint", "result_sha256": "Result fingerprint", "digest": "Data fingerprint",
             "cohort_digest": "Cohort fingerprint", "auroc": "AUROC", "alert": "Alert", "evaluation": "Evaluation",
             "recorded": "Fingerprint at approval", "actual": "Fingerprint now"}


@dataclass(frozen=True)
class EventsPerDay:
    """The events-per-day chart's data: one row per day and kind (in words), a distinct colour and pattern per
    kind, and the tick spacing of the date axis (a day, or a week when the period is long)."""

    counts: pd.DataFrame  # day (date), kind (words), events
    colours: dict[str, str] = field(default_factory=dict)
    patterns: dict[str, str] = field(default_factory=dict)
    tick_days: int = 1


def events_per_day(events: pd.DataFrame) -> EventsPerDay:
    """Count events per day and kind. The seven most frequent kinds keep a colour each from the Okabe–Ito
    palette (colour-blind safe); rarer kinds are grouped as 'Other kinds' in grey, so no two kinds share a
    colour. One tick per day up to three weeks, else one per week, so the axis shows dates, never times."""
    kinds = events["action"].map(glossary.event)
    order = kinds.value_counts().index.tolist()
    keep = order if len(order) <= len(OKABE_ITO) else order[:len(OKABE_ITO) - 1]
    other = f"Other kinds ({len(order) - len(keep)})"
    grouped = kinds.where(kinds.isin(keep), other)
    days = pd.to_datetime(events["occurred_at"]).dt.normalize()
    counts = (pd.DataFrame({"day": days, "kind": grouped}).groupby(["day", "kind"]).size()
              .reset_index(name="events"))
    names = keep + ([other] if len(keep) < len(order) else [])
    colours = {k: (OKABE_ITO[i] if k != other else OTHER_COLOUR) for i, k in enumerate(names)}
    patterns = {k: PATTERNS[i % len(PATTERNS)] for i, k in enumerate(names)}
    span = (days.max() - days.min()).days if len(days) else 0
    return EventsPerDay(counts, colours, patterns, 1 if span <= 21 else 7)


def short_id(value: Any) -> str:
    """A long id or hash as its first 8 characters (the full value stays in the export)."""
    text = "" if value is None else str(value)
    return text[:8] + "…" if len(text) > 8 else text


def _value_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        parts = [t for t in (_value_text(v) for v in value) if t]
        if not parts:
            return "none"
        return ", ".join(parts[:4]) + (f" and {len(parts) - 4} more" if len(parts) > 4 else "")
    if isinstance(value, dict):
        parts = [f"{_key_text(k).lower()} = {t}" for k, v in value.items() if (t := _value_text(v))]
        return ", ".join(parts) if parts else "none"
    text = str(value)
    if HEX.fullmatch(text):
        return short_id(text)
    if re.fullmatch(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+", text):
        return glossary.words(text).lower()
    return HEX.sub(lambda m: short_id(m.group(0)), text)


def _key_text(key: str) -> str:
    return KEY_WORDS.get(key) or glossary.words(key)


def detail_summary(detail: Any) -> str:
    """An event's stored JSON detail as 'Key: value; …' in words: long ids and hashes shortened to 8
    characters, nothing empty shown ('—' when there is nothing to say)."""
    if detail is None or (isinstance(detail, float) and math.isnan(detail)):
        return "—"
    try:
        data = json.loads(detail) if isinstance(detail, str) else detail
    except ValueError:
        return HEX.sub(lambda m: short_id(m.group(0)), str(detail)) or "—"
    if not isinstance(data, dict):
        return _value_text(data) or "—"
    parts = [f"{_key_text(k)}: {t}" for k, v in data.items() if (t := _value_text(v)) and t != "none"]
    return "; ".join(parts) or "—"


def events_for_screen(events: pd.DataFrame) -> pd.DataFrame:
    """The audit table as people read it: kinds in words, dates to the second, '—' for nothing, details
    summarised. The CSV export keeps `events` as stored (full ids, raw JSON)."""
    def text(value: Any) -> str:
        return "—" if value is None or (not isinstance(value, list | dict) and pd.isna(value)) else str(value)

    return pd.DataFrame({
        "No.": events["id"].astype(int),
        "When (UTC)": pd.to_datetime(events["occurred_at"]).dt.strftime("%d %b %Y %H:%M:%S"),
        "Who": events["actor"].map(text),
        "What": events["action"].map(glossary.event),
        "Concerning": events["target"].map(lambda t: HEX.sub(lambda m: short_id(m.group(0)), text(t))),
        "Model": [text(m) if text(v) == "—" else f"{m} v{int(v)}"
                  for m, v in zip(events["model_name"], events["model_version"], strict=True)],
        "Details": events["detail"].map(detail_summary),
    })
