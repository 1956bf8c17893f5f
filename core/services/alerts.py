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
from core.domain import glossary as words
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.domain.monitoring_policy import RULE_TITLES, next_step, window_span
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


# ---- an alert in words (the Alerts page) -----------------------------------------------------------------------

# Governance rules (core/services/promotion.py raises them); kept as text here because promotion imports this module.
GOVERNANCE_RULES: dict[str, tuple[str, str]] = {
    "alias_moved_out_of_band": (
        "A model alias moved outside ModelBoard",
        "Find out who moved the alias in MLflow and why; if it was not an approved change, put it back to the "
        "approved version and record what happened, and tell the clinical lead which version scored patients "
        "meanwhile."),
    "artifact_changed": (
        "The model's files changed after approval",
        "Treat the model as untrusted: roll back to the approved files, tell the clinical lead, and find out who "
        "changed them before the model scores another patient."),
}
STATUS_WORDS = {"open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"}
SEVERITY_WORDS = {"critical": "Critical", "warning": "Warning", "info": "For information"}


@dataclass(frozen=True)
class AlertView:
    """One alert as the Alerts page shows it: every number with the same limit and window, in words.

    Built from the evidence the alert stored, so an alert raised before a wording change reads like a new one;
    the stored title is kept as it was raised (it is what the audit log and notifications carried)."""

    title: str
    kind: str  # the rule kind in words
    severity: str
    status: str
    window: str | None  # '2–8 Mar 2026' (last day inclusive), None for alerts about no window
    finding: str  # what was found, in words
    measured_label: str = ""
    measured: str = ""
    limit: str = ""  # the one limit the value was judged against
    next_step: str = ""
    facts: tuple[str, ...] = ()  # short sentences under the numbers
    evidence: tuple[dict[str, str], ...] = ()  # rows of a table in words ('—' for nothing), for the drift table
    evidence_note: str = ""  # what the table's own thresholds are, so they are not read as this alert's limit
    raw_rule: str = ""
    raw_evidence: str = ""  # the stored evidence as JSON, for data scientists (behind a toggle)


def describe(alert: Alert, glossary: words.Glossary) -> AlertView:
    """The alert in words with `glossary` (the use case's input names): one limit, one window convention, and
    the rule kind's next step. Pure: reads only the alert."""
    e = alert.evidence
    raw = json.dumps(e, indent=1, sort_keys=True, default=str)
    severity = SEVERITY_WORDS.get(alert.severity, words.words(alert.severity))
    status = STATUS_WORDS.get(alert.status, words.words(alert.status))
    if alert.rule in GOVERNANCE_RULES:
        kind, step = GOVERNANCE_RULES[alert.rule]
        return AlertView(alert.title, kind, severity, status, None, alert.message, next_step=step,
                         evidence=_governance_rows(e), raw_rule=alert.rule, raw_evidence=raw)
    if "window_start" not in e:
        return AlertView(alert.title, RULE_TITLES.get(alert.rule, words.words(alert.rule)), severity, status, None,
                         alert.message, next_step=next_step(alert.rule), raw_rule=alert.rule, raw_evidence=raw)
    subject_raw = str(e.get("subject") or _old_subject(alert.rule, e))
    subject = _subject_words(alert.rule, subject_raw, glossary)
    label, measured, limit, finding = _numbers(alert.rule, e, subject, glossary)
    facts = (f"{int(e.get('predictions') or 0):,} patients scored in the window, "
             f"{int(e.get('labelled') or 0):,} with their outcome known.",
             f"The model flagged {words.per100(e.get('flagged_share'))} patients (at sign-off "
             f"{words.per100(e.get('reference_flagged_share'))}); mean predicted risk "
             f"{words.percent(e.get('mean_score'), places=1)} (at sign-off "
             f"{words.percent(e.get('reference_mean_score'), places=1)}).")
    return AlertView(alert.title, RULE_TITLES.get(alert.rule, words.words(alert.rule)), severity, status,
                     window=window_span(datetime.fromisoformat(str(e["window_start"])),
                                        datetime.fromisoformat(str(e["window_end"]))),
                     finding=finding, measured_label=label, measured=measured, limit=limit,
                     next_step=next_step(alert.rule, subject, raw_subject=subject_raw.split(" = ")[0]),
                     facts=facts, evidence=_drift_rows(e.get("drift") or [], glossary), raw_rule=alert.rule,
                     raw_evidence=raw, evidence_note=DRIFT_TABLE_NOTE if e.get("drift") else "")


def _old_subject(rule: str, e: dict[str, Any]) -> str:
    """Alerts stored before the evidence named its subject: the input whose score is the measured value."""
    if rule not in ("input_drift", "input_missing"):
        return ""
    rows = [r for r in e.get("drift") or [] if isinstance(r, dict) and r.get("score") is not None]
    if rule == "input_drift" and rows:
        return str(min(rows, key=lambda r: abs(float(r["score"]) - float(e.get("value") or 0)))["column"])
    if rule == "input_missing":
        rises = [r for r in e.get("drift") or [] if isinstance(r, dict) and r.get("missing_share") is not None
                 and r.get("reference_missing_share") is not None]
        if rises:
            return str(max(rises, key=lambda r: float(r["missing_share"]) - float(r["reference_missing_share"]))
                       ["column"])
    return ""


def _subject_words(rule: str, raw: str, glossary: words.Glossary) -> str:
    if not raw:
        return ""
    if rule == "subgroup_sensitivity" and " = " in raw:
        attribute, group = raw.split(" = ", 1)
        return f"{words.attribute(attribute).lower()} {group}"
    return glossary.input(raw).name


def _numbers(rule: str, e: dict[str, Any], subject: str, glossary: words.Glossary) -> tuple[str, str, str, str]:
    """(what was measured, the value, the one limit, a sentence) for a monitoring rule, each number with the
    decimals it needs. The limit is the evidence's `limit` (the number the value was judged against); alerts
    stored before it existed compared the value with the rule's threshold directly, except `auroc_drop`, whose
    threshold is an allowed drop and is said as such."""
    value = _float(e.get("value"))
    limit = _float(e.get("limit", e.get("threshold") if rule != "auroc_drop" else None))
    facts = e.get("facts") or {}
    if rule == "drifted_feature_share":
        return ("Share of inputs that drifted", words.percent(value), words.percent(limit),
                f"{words.percent(value)} of the model's inputs drifted from the sign-off data (alert above "
                f"{words.percent(limit)}).")
    if rule == "input_drift":
        moved = ""
        if facts.get("reference_mean") is not None and facts.get("current_mean") is not None:
            unit = glossary.input(str(e.get("subject") or "")).unit
            # the stored facts are means; Monitoring's "typical value" is the median, so this says "mean"
            moved = (f" Mean value {words.with_unit(words.significant(facts['reference_mean']), unit)} at "
                     f"sign-off, {words.with_unit(words.significant(facts['current_mean']), unit)} in this window.")
        return (f"Drift distance ({subject})" if subject else "Drift distance", words.number(value),
                words.number(limit),
                f"{subject or 'One input'} shifted strongly from the sign-off data: drift distance "
                f"{words.number(value)}, alert above {words.number(limit)}.{moved}")
    if rule == "score_psi":
        return ("Shift in the risk scores (population stability index)", words.number(value), words.number(limit),
                f"The distribution of the model's risk scores moved: shift {words.number(value)}, alert above "
                f"{words.number(limit)}.")
    if rule == "auroc_drop":
        lo, hi = _float(facts.get("lo")), _float(facts.get("hi"))
        shown = words.interval(value, lo, hi) if lo is not None else words.number(value)
        if limit is None:
            drop = _float(e.get("threshold"))
            limit_text = f"{words.number(drop)} below sign-off"
            sentence = (f"AUROC was {shown} in this window, more than {words.number(drop)} below its value at "
                        "sign-off.")
        else:
            limit_text = words.number(limit)
            at_signoff = _float(facts.get("at_signoff"))
            sentence = (f"AUROC was {shown} in this window; the alert limit is {limit_text}"
                        + (f" ({words.number(facts.get('drop'))} below {words.number(at_signoff)} at sign-off)."
                           if at_signoff is not None else "."))
        return "AUROC (how well the risk ranks patients)", shown, limit_text, sentence
    if rule == "subgroup_sensitivity":
        who = subject or "one patient group"
        own = facts.get("at_signoff") is not None and limit is not None and facts.get("minimum") is not None \
            and abs(float(facts["minimum"]) - limit) > 1e-9
        why = (f" (this group's {words.per100(facts['at_signoff'])} at sign-off minus 5; the use case requires "
               f"{words.per100(facts['minimum'])})") if own else " (the use case's minimum)"
        return (f"Sensitivity among {who}", words.per100(value), words.per100(limit),
                f"Of 100 patients among {who} who developed the outcome, the model flagged "
                f"{words.per100(value).split(' of ')[0]}; the limit is {words.per100(limit)}{why}.")
    if rule == "input_missing":
        now, before = _float(facts.get("missing_share")), _float(facts.get("reference_missing_share"))
        rise = f"{value * 100:+.0f} points" if value is not None else "—"
        step = f"a rise of {limit * 100:g} points" if limit is not None else "—"
        detail = (f" (missing for {words.percent(now)} of patients, at sign-off {words.percent(before)})"
                  if now is not None else "")
        return (f"Rise in patients missing it ({subject})" if subject else "Rise in patients missing it", rise, step,
                f"{subject or 'One input'} is missing more often than at sign-off{detail}; alert above {step}.")
    return "Measured", words.number(value), words.number(limit), RULE_TITLES.get(rule, words.words(rule)) + "."


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if out != out else out


DRIFT_TABLE_NOTE = ("An input counts as drifted when its drift distance passes the drift test's own threshold "
                    "(the table's second column); the share of inputs that drifted is what the 'many inputs "
                    "drifted' rule watches. This alert was judged against the one limit shown above.")


def _drift_rows(rows: list[Any], glossary: words.Glossary) -> tuple[dict[str, str], ...]:
    """The per-input drift table in words: input names from the glossary, '—' where a column was not tested."""
    out = []
    for r in rows:
        if not isinstance(r, dict) or r.get("role") not in (None, "input"):
            continue
        column = str(r.get("column", ""))
        drifted = r.get("drifted")
        name = words.attribute(column) if column in words.ATTRIBUTES else glossary.input(column).name
        out.append({
            "Input": name,
            "Drift distance": words.number(_float(r.get("score"))),
            "Counts as drifted above": words.number(_float(r.get("threshold"))),
            "Counted as drifted": "—" if drifted is None else "yes" if drifted else "no",
            "Missing now": words.percent(_float(r.get("missing_share"))),
            "Missing at sign-off": words.percent(_float(r.get("reference_missing_share")))})
    return tuple(out)


def _governance_rows(e: dict[str, Any]) -> tuple[dict[str, str], ...]:
    labels = {"alias": "Alias", "old_version": "Was at", "new_version": "Now at",
              "recorded": "Fingerprint at approval", "actual": "Fingerprint now"}
    rows = []
    for key, value in e.items():
        text = "—" if value is None else f"v{value}" if key.endswith("_version") else str(value)
        if key in ("recorded", "actual") and value:
            text = str(value)[:8] + "…"
        rows.append({"Fact": labels.get(key, words.words(key)), "Value": text})
    return tuple(rows)
