"""What ModelBoard knew, and when: which version held an alias at a time, and one version's milestones.

An auditor asks "which version scored patients on 3 October at 08:00, and who approved it?". The answer
comes from alias_history (the latest row at or before that time is what ModelBoard knew the alias to be)
and from the promotion that moved it, whose signatures are the approvals. Nothing here writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from core.adapters.store import Store
from core.domain.access import Permission, User, require
from core.domain.signoff import DECISION_LABELS, Signature
from core.services.signoff import signatures_by_id

PRODUCTION = "production"
_TIMELINE_COLUMNS = ["occurred_at", "milestone", "kind", "actor", "source"]
# Alias moves are told from alias_history (it knows the previous holder); these audit rows would repeat them.
_ALIAS_ACTIONS = frozenset({"promotion_completed", "rollback_completed", "alias_adopted", "alias_moved_out_of_band"})


def when(moment: datetime) -> str:
    """A UTC time in words: minutes, plus seconds when they are not zero."""
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment.second or moment.microsecond else f"{moment:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class AsOfAnswer:
    """Which version ModelBoard knew to hold an alias at a time, how it got there and who approved it."""

    model: str
    alias: str
    at: datetime
    version: int | None
    since: datetime | None
    kind: str | None  # alias_history.kind of the deciding row; None when ModelBoard has no record that early
    promotion_id: str | None = None
    approvers: tuple[Signature, ...] = ()
    first_record: datetime | None = None  # the earliest alias_history row, for "no record that early"

    @property
    def how(self) -> str:
        """The deciding row's kind in words."""
        if self.kind is None:
            return "no record"
        moved = when(self.since) if self.since else "an unknown time"
        return {
            "promoted": "promoted through ModelBoard",
            "adopted": "adopted as found in MLflow when ModelBoard first saw it (no ModelBoard sign-off)",
            "out_of_band": f"moved outside ModelBoard (detected at {moved}; not approved)",
            "rolled_back": "rolled back through ModelBoard",
            "restored": "restored by ModelBoard to the version it had recorded",
        }.get(self.kind, self.kind.replace("_", " "))

    @property
    def sentence(self) -> str:
        """The answer in one sentence an auditor can paste into a report."""
        at = when(self.at)
        if self.kind is None:
            first = f" Its first record is from {when(self.first_record)}." if self.first_record else (
                " It has no record of this alias at all.")
            return f"ModelBoard has no record of {self.model}'s '{self.alias}' alias as early as {at}.{first}"
        since = when(self.since) if self.since else "an unknown time"
        if self.version is None:
            return f"At {at}, no version of {self.model} held '{self.alias}': the alias was removed at {since}."
        text = f"At {at}, {self.model} v{self.version} held '{self.alias}' (since {since}, {self.how})"
        if self.approvers:
            verb = "on the signature of" if self.kind == "rolled_back" else "approved by"
            return f"{text}, {verb} {', '.join(_approver_words(s) for s in self.approvers)}."
        if self.kind in ("promoted", "rolled_back", "restored"):
            return f"{text}; the promotion record names no signatures."
        return f"{text}."


def _approver_words(signature: Signature) -> str:
    label = DECISION_LABELS.get(signature.decision, signature.decision)
    decision = "" if signature.decision == "approve" else f"{label}: "
    return (f"{signature.full_name} ({signature.role_label}, {when(signature.signed_at)}, "
            f"{decision}\u2018{signature.meaning}\u2019)")


def production_as_of(store: Store, viewer: User, model: str, at: datetime, *, alias: str = PRODUCTION) -> AsOfAnswer:
    """Which version ModelBoard knew to hold `alias` at `at` (naive UTC), and the signatures behind it."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    row = store.query_one(
        "SELECT version, changed_at, kind, promotion_id FROM alias_history WHERE model_name = ? AND alias = ? "
        "AND changed_at <= ? ORDER BY changed_at DESC, id DESC LIMIT 1", [model, alias, at])
    if row is None:
        first = store.query_one("SELECT min(changed_at) AS first FROM alias_history WHERE model_name = ? AND alias = ?",
                                [model, alias])
        return AsOfAnswer(model, alias, at, None, None, None, first_record=first["first"] if first else None)
    version = None if row["version"] is None else int(row["version"])
    approvers = _promotion_signatures(store, row["promotion_id"]) if row["promotion_id"] else ()
    return AsOfAnswer(model, alias, at, version, row["changed_at"], row["kind"], row["promotion_id"], approvers)


def _promotion_signatures(store: Store, promotion_id: str) -> tuple[Signature, ...]:
    """The signatures a promotion counted (its recorded signature ids), in the order they were given."""
    row = store.query_one("SELECT signature_ids FROM promotions WHERE id = ?", [promotion_id])
    ids = [str(i) for i in json.loads(row["signature_ids"] or "[]")] if row else []
    return tuple(signatures_by_id(store, ids))


def audited_models(store: Store, viewer: User) -> list[str]:
    """Models named by any audit row, for the audit log's model filter."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    rows = store.query("SELECT DISTINCT model_name FROM audit_events WHERE model_name IS NOT NULL ORDER BY 1")
    return [r["model_name"] for r in rows]


def audited_versions(store: Store, viewer: User, model: str) -> list[int]:
    """Versions of `model` named by any audit row, for the audit log's version filter."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    rows = store.query("SELECT DISTINCT model_version FROM audit_events WHERE model_name = ? "
                       "AND model_version IS NOT NULL ORDER BY 1", [model])
    return [int(r["model_version"]) for r in rows]


def version_timeline(store: Store, viewer: User, model: str, version: int) -> pd.DataFrame:
    """One version's milestones, oldest first: submitted, evaluated, signed, promoted, alerts, rolled back.

    Columns: occurred_at (naive UTC), milestone (words), kind (for grouping on a chart), actor, source."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    names = {r["username"]: r["full_name"] for r in store.query("SELECT username, full_name FROM users")}
    events = store.query("SELECT id, occurred_at, actor, action, CAST(detail AS VARCHAR) AS detail FROM audit_events "
                         "WHERE model_name = ? AND model_version = ? ORDER BY id", [model, version])
    rows = [_audit_milestone(e, names) for e in events if e["action"] not in _ALIAS_ACTIONS]
    rows += _alias_milestones(store, model, version)
    frame = pd.DataFrame(rows, columns=_TIMELINE_COLUMNS)
    return frame.sort_values("occurred_at", kind="stable").reset_index(drop=True)


def _audit_milestone(event: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    detail: dict[str, Any] = json.loads(event["detail"] or "{}")
    actor = event["actor"]
    who = names.get(actor, actor)
    milestone, kind = _words(event["action"], detail, actor, who)
    return {"occurred_at": event["occurred_at"], "milestone": milestone, "kind": kind, "actor": actor,
            "source": f"audit row {event['id']}"}


def _words(action: str, detail: dict[str, Any], actor: str, who: str) -> tuple[str, str]:
    decision = str(DECISION_LABELS.get(str(detail.get("decision", "")), detail.get("decision") or "")).lower()
    passed = detail.get("criteria_passed")
    known: dict[str, tuple[str, str]] = {
        "version_submitted": (f"submitted by {actor}", "submission"),
        "run_registered": (f"registered from an MLflow run by {actor}", "submission"),
        "evaluation_completed": ("evaluated" + ("" if passed is None else " (every criterion met)" if passed
                                                else " (a criterion failed)"), "evaluation"),
        "evaluation_failed": ("evaluation failed", "evaluation"),
        "model_card_edited": (f"model card edited by {actor}", "model card"),
        "signed": (f"signed by {who}" + (f" ({decision})" if decision else ""), "signature"),
        "exception_accepted": (f"failed criterion accepted by {who}", "signature"),
        "signature_failed": (f"signature attempt failed for {who}", "signature"),
        "promotion_intent": (f"promotion started by {actor}", "promotion"),
        "promotion_rolled_back": ("interrupted promotion undone", "promotion"),
        "rollback_intent": (f"rollback started by {actor}", "promotion"),
        "alert_raised": (f"alert: {detail.get('title') or detail.get('rule') or 'raised'}", "alert"),
        "alert_acknowledged": (f"alert acknowledged by {who}", "alert"),
        "alert_resolved": (f"alert resolved: {detail.get('resolution') or 'resolved'}", "alert"),
        "artifact_mismatch": ("model files no longer match their recorded hash", "alert"),
        "exported": (f"{detail.get('what') or 'records'} exported by {actor}", "export"),
    }
    return known.get(action, (f"{action.replace('_', ' ')} by {actor}", "other"))


def _alias_milestones(store: Store, model: str, version: int) -> list[dict[str, Any]]:
    """When this version took an alias, and when it lost it (the next row of the same alias names another)."""
    rows = store.query("SELECT alias, version, changed_at, kind, actor, id FROM alias_history WHERE model_name = ? "
                       "ORDER BY alias, changed_at, id", [model])
    out: list[dict[str, Any]] = []
    previous: dict[str, int | None] = {}
    for r in rows:
        held_before, alias = previous.get(r["alias"]), r["alias"]
        if r["version"] == version and held_before != version:
            out.append(_alias_row(r, _TOOK.get(r["kind"], "took '{alias}'").format(alias=alias)))
        elif held_before == version and r["version"] != version:
            lost = f"left '{alias}' (alias removed)" if r["version"] is None else _LOST.get(
                r["kind"], "left '{alias}' (v{n} took it)").format(alias=alias, n=r["version"])
            out.append(_alias_row(r, lost))
        previous[alias] = r["version"]
    return out


_TOOK = {"promoted": "promoted to {alias}", "adopted": "found holding '{alias}' (adopted, no ModelBoard sign-off)",
         "out_of_band": "moved to '{alias}' outside ModelBoard (detected; not approved)",
         "rolled_back": "returned to '{alias}' by a rollback", "restored": "restored to '{alias}' by ModelBoard"}
_LOST = {"promoted": "left '{alias}' (v{n} promoted)", "adopted": "left '{alias}' (v{n} adopted)",
         "out_of_band": "left '{alias}' (v{n} moved in outside ModelBoard)",
         "rolled_back": "rolled back: '{alias}' returned to v{n}", "restored": "left '{alias}' (v{n} restored)"}


def _alias_row(row: dict[str, Any], milestone: str) -> dict[str, Any]:
    return {"occurred_at": row["changed_at"], "milestone": milestone, "kind": "alias", "actor": row["actor"],
            "source": f"alias history {row['id']}"}
