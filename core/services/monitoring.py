"""`monitor`: compute every window not yet computed, judge it by the use case's rules, raise alerts.

Incremental and idempotent, so cron may run it every few minutes: a window is
recomputed only when its fingerprint — predictions, labels, the use-case
version and the reference — changed (late rows, outcomes arriving), and a
window that has not ended yet is left for a later run. Alerts de-duplicate per
rule, model and version. A critical alert on the version in production tags it
`review_required` in MLflow and the webhook (if configured) is told about new alerts.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from core.adapters.crash_points import crash_point
from core.adapters.registry import Registry
from core.adapters.store import Cursor, Store
from core.config import Settings
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.domain.models import STATUS_TAG
from core.domain.monitoring_policy import MonitoringPolicy
from core.domain.signature import InputColumn
from core.errors import ModelBoardError, NotFound
from core.services.alerts import raise_alert
from core.services.audit import record_event
from core.services.drift_report import DriftReport, drift_report
from core.services.monitoring_reference import Reference, reference_for, stored_reference
from core.services.monitoring_rules import Breach, judge
from core.services.monitoring_window import WindowFigures, read_window, reference_subgroups, window_figures
from core.services.usecases import use_case_for_model

MONITOR = "modelboard-monitor"
Progress = Callable[[str, float], None]
STEP = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
TRUNC = {"daily": "day", "weekly": "week"}
# Opening DuckDB costs ~30 ms, so a run keeps the file open across windows; but the Streamlit server and the
# worker need it too (one process at a time, docs/decisions/0001), so it is let go at least every HOLD_S.
HOLD_S = 2.0


@dataclass(frozen=True)
class WindowRecord:
    model: str
    version: int
    granularity: str
    start: datetime
    end: datetime
    predictions: int
    labelled: int
    drifted_share: float
    score_psi: float
    breaches: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "granularity": self.granularity,
                "start": self.start.isoformat(), "end": self.end.isoformat(), "predictions": self.predictions,
                "labelled": self.labelled, "drifted_share": _finite(self.drifted_share),
                "score_psi": _finite(self.score_psi), "breaches": list(self.breaches)}


@dataclass(frozen=True)
class MonitorRun:
    id: str
    started_at: datetime
    finished_at: datetime
    windows: tuple[WindowRecord, ...]
    alerts: tuple[Breach, ...]
    skipped: tuple[str, ...] = ()
    notifications: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {"run": self.id, "started_at": self.started_at.isoformat(), "finished_at": self.finished_at.isoformat(),
                "windows": [w.as_json() for w in self.windows], "alerts": [b.as_json() for b in self.alerts],
                "skipped": list(self.skipped), "notifications": list(self.notifications)}


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def run_monitor(settings: Settings, store: Store, registry: Registry, actor: User, *, now: datetime | None = None,
                progress: Progress | None = None) -> MonitorRun:
    """Compute what is new for every logged model version; returns what was computed and raised."""
    require(actor, Permission.RUN_MONITORING)
    run_id, started, now = uuid.uuid4().hex, utc_now(), now or utc_now()
    store.execute("INSERT INTO monitoring_runs (id, actor, started_at) VALUES (?, ?, ?)",
                  [run_id, actor.username, started])
    windows: list[WindowRecord] = []
    alerts: list[Breach] = []
    skipped: list[str] = []
    logged = store.query("SELECT DISTINCT model_name, model_version FROM prediction_log ORDER BY 1, 2")
    for i, row in enumerate(logged):
        model, version = str(row["model_name"]), int(row["model_version"])
        if progress:
            progress(f"Monitoring {model} v{version}", i / max(len(logged), 1))
        try:
            done, raised = _monitor_version(settings, store, registry, actor, model, version, now, run_id)
        except (NotFound, ModelBoardError) as exc:
            skipped.append(f"{model} v{version}: {exc}")
            continue
        windows += done
        alerts += raised
    notifications = _after_alerts(settings, store, registry, alerts)
    finished = utc_now()
    run = MonitorRun(run_id, started, finished, tuple(windows), tuple(alerts), tuple(skipped), tuple(notifications))
    _finish_run(store, actor, run)
    return run


def _finish_run(store: Store, actor: User, run: MonitorRun) -> None:
    summary = {"windows": len(run.windows), "alerts_raised": sum(b.new for b in run.alerts),
               "breaches": len(run.alerts), "skipped": list(run.skipped)}
    with store.transaction() as cur:
        cur.execute("UPDATE monitoring_runs SET finished_at = ?, windows = ?, alerts = ?, summary = ? WHERE id = ?",
                    [run.finished_at, len(run.windows), summary["alerts_raised"], json.dumps(summary), run.id])
        record_event(cur, actor=actor.username, action="monitoring_run", target=run.id, detail=summary)


def _pending(store: Store, model: str, version: int, granularity: str, now: datetime,
             salt: str) -> list[tuple[datetime, datetime, str]]:
    """Ended windows whose inputs changed since they were computed: (start, end, fingerprint)."""
    rows = store.query(
        "SELECT date_trunc(?, p.predicted_at) AS start, count(*) AS n, count(l.outcome) AS labelled, "
        "max(p.ingested_at) AS last_in, max(l.labelled_at) AS last_label FROM prediction_log p "
        "LEFT JOIN outcome_labels l USING (model_name, encounter_id) WHERE p.model_name = ? AND p.model_version = ? "
        "GROUP BY 1 ORDER BY 1", [TRUNC[granularity], model, version])
    known = {r["window_start"]: r["fingerprint"] for r in store.query(
        "SELECT window_start, fingerprint FROM monitoring_windows WHERE model_name = ? AND model_version = ? "
        "AND granularity = ?", [model, version, granularity])}
    out = []
    for r in rows:
        start = pd.Timestamp(r["start"]).to_pydatetime()
        end = start + STEP[granularity]
        fingerprint = f"{r['n']}|{r['labelled']}|{r['last_in']}|{r['last_label']}|{salt}"
        if end <= now and known.get(start) != fingerprint:
            out.append((start, end, fingerprint))
    return out


def _monitor_version(settings: Settings, store: Store, registry: Registry, actor: User, model: str, version: int,
                     now: datetime, run_id: str) -> tuple[list[WindowRecord], list[Breach]]:
    use_case = use_case_for_model(store, actor, model)
    policy = use_case.monitoring.with_minimum_sensitivity(use_case.criteria.min_sensitivity)
    known_reference = store.query_one("SELECT sha256 FROM monitoring_references WHERE model_name = ? AND "
                                      "model_version = ?", [model, version])
    salt = f"use case {use_case.name} v{use_case.version}|ref {known_reference['sha256'] if known_reference else ''}"
    pending = _pending(store, model, version, policy.window, now, salt)
    if not pending:
        return [], []
    reference = reference_for(settings, store, registry, actor, model, version)
    if known_reference is None:  # the reference was built just now: its hash belongs in the fingerprint
        return _monitor_version(settings, store, registry, actor, model, version, now, run_id)
    ref = reference.frame()
    columns = registry.model_inputs(model, version)
    attributes = [a for a in use_case.sensitive_attributes if a in ref.columns]
    at_signoff = reference_subgroups(reference, ref, attributes)
    windows, breaches = [], []
    with ExitStack() as held:
        held_since: float | None = None
        for start, end, fingerprint in pending:
            if held_since is None:  # keep the file open across windows, but never long (see HOLD_S)
                held.enter_context(store.cursor())
                held_since = time.monotonic()
            record, raised = _one_window(store, reference, ref, model, version, policy, start, end, fingerprint,
                                         run_id, columns, attributes, at_signoff)
            windows.append(record)
            breaches += raised
            if time.monotonic() - held_since > HOLD_S:
                held.close()
                held_since = None
    return windows, breaches


def _one_window(store: Store, reference: Reference, ref: pd.DataFrame, model: str, version: int,
                policy: MonitoringPolicy, start: datetime, end: datetime, fingerprint: str, run_id: str,
                columns: list[InputColumn], attributes: list[str],
                at_signoff: dict[tuple[str, str], float]) -> tuple[WindowRecord, list[Breach]]:
    """Compute, judge and store one window; its alerts are raised in the same transaction."""
    current = read_window(store, model, version, start, end, columns, attributes)
    figures = window_figures(reference, ref, current, start=start, end=end, columns=columns,
                             attributes=attributes, at_signoff=at_signoff)
    found = judge(policy, reference, figures, model=model, version=version)
    breaches = []
    with store.transaction() as cur:
        _store_window(cur, model, version, policy, figures, fingerprint, run_id, found)
        for breach in found:
            alert_id = raise_alert(cur, rule=breach.rule, model=model, version=version,
                                   severity=breach.severity_level, title=breach.title, message=breach.message,
                                   evidence=breach.evidence)
            breaches.append(breach.with_alert(alert_id or _open_alert_id(cur, breach), new=alert_id is not None))
    crash_point("monitor:window-stored")
    record = WindowRecord(model, version, policy.window, start, end, figures.predictions, figures.labelled,
                          figures.drifted_share, figures.score_psi, tuple(b.rule for b in found))
    return record, breaches


def _open_alert_id(cur: Cursor, breach: Breach) -> str | None:
    row = cur.execute("SELECT id FROM alerts WHERE rule = ? AND model_name = ? AND model_version = ? AND status IN "
                      "('open', 'acknowledged')", [breach.rule, breach.model, breach.version]).fetchone()
    return str(row[0]) if row else None


def _store_window(cur: Cursor, model: str, version: int, policy: MonitoringPolicy, f: WindowFigures,
                  fingerprint: str, run_id: str, found: list[Breach]) -> None:
    key = [model, version, policy.window, f.start]
    for table in ("monitoring_windows", "monitoring_feature_drift", "monitoring_subgroups"):
        cur.execute(f"DELETE FROM {table} WHERE model_name = ? AND model_version = ? AND granularity = ? "  # noqa: S608
                    "AND window_start = ?", key)
    r = f.realised
    cur.execute(
        "INSERT INTO monitoring_windows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*key, f.end, f.predictions, f.labelled, fingerprint, run_id, utc_now(),
         f.predictions >= policy.min_window_predictions, f.n_inputs, f.n_drifted, _finite(f.drifted_share),
         _finite(f.score_psi), _finite(f.mean_score), _finite(f.flagged_share), _finite(f.estimated.auroc),
         _finite(f.estimated.sensitivity), _finite(f.estimated.ppv),
         *(_interval(r.auroc) if r else (None,) * 3), *(_interval(r.sensitivity) if r else (None,) * 3),
         *(_interval(r.ppv) if r else (None,) * 3), _finite(r.positives / r.labelled) if r else None,
         *(_interval(r.observed_expected) if r else (None,) * 3),
         json.dumps([b.as_json() for b in found])])
    drift = f.drift.assign(model_name=model, model_version=version, granularity=policy.window, window_start=f.start)
    cur.register("window_drift", drift[["model_name", "model_version", "granularity", "window_start", "column", "role",
                                        "kind", "stattest", "score", "threshold", "drifted", "reference_mean",
                                        "current_mean", "reference_missing_share", "missing_share"]])
    cur.execute("INSERT INTO monitoring_feature_drift SELECT * FROM window_drift")
    groups = f.subgroups.assign(model_name=model, model_version=version, granularity=policy.window,
                                window_start=f.start)
    cur.register("window_groups", groups[["model_name", "model_version", "granularity", "window_start", "attribute",
                                          "subgroup", "n", "positives", "sensitivity", "sensitivity_lo",
                                          "sensitivity_hi", "est_sensitivity", "reference_sensitivity"]])
    cur.execute("INSERT INTO monitoring_subgroups SELECT * FROM window_groups")


def _interval(value: Any) -> tuple[float | None, float | None, float | None]:
    return _finite(value.value), _finite(value.lo), _finite(value.hi)


def _after_alerts(settings: Settings, store: Store, registry: Registry, alerts: list[Breach]) -> list[dict[str, Any]]:
    """Outside the window transactions: mark production versions with a new critical alert, and notify."""
    from urllib.parse import urlsplit

    from core.adapters.webhook import post_json

    new = [b for b in alerts if b.new]
    for model, version in {(b.model, b.version) for b in new if b.severity == "critical"}:
        if registry.version_for_alias(model, "production") == version:
            registry.tag_version(model, version, {STATUS_TAG: "review_required"})
            with store.transaction() as cur:
                record_event(cur, actor=MONITOR, action="review_required", model=model, version=version,
                             detail={"reason": "a critical monitoring alert is open on the version in production"})
    if not settings.alert_webhook_url or not new:
        return []
    out = []
    for breach in new:
        delivery = post_json(settings.alert_webhook_url, {"source": "ModelBoard", **breach.as_json(),
                                                          "message": breach.message})
        # Only the host is recorded: chat bridges keep their secret in the URL's path.
        out.append({"alert_id": breach.alert_id, "host": urlsplit(delivery.url).hostname, "ok": delivery.ok,
                    "status": delivery.status, "error": delivery.error})
        with store.transaction() as cur:
            record_event(cur, actor=MONITOR, action="alert_notified" if delivery.ok else "alert_notification_failed",
                         model=breach.model, version=breach.version, detail=out[-1])
    return out


def last_run(store: Store, viewer: User) -> dict[str, Any] | None:
    """When monitoring last finished, and what it found (for Home and the Monitoring page)."""
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    row = store.query_one("SELECT * FROM monitoring_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC "
                          "LIMIT 1")
    if row is None:
        return None
    return row | {"summary": json.loads(row["summary"] or "{}")}


def monitored_versions(store: Store, viewer: User) -> list[tuple[str, int]]:
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    return [(r["model_name"], int(r["model_version"])) for r in store.query(
        "SELECT DISTINCT model_name, model_version FROM monitoring_windows ORDER BY 1, 2 DESC")]


def window_series(store: Store, viewer: User, model: str, version: int) -> pd.DataFrame:
    """Every computed window of a version, oldest first (the granularity of the newest computation)."""
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    return store.query_df(
        "SELECT * FROM monitoring_windows WHERE model_name = ? AND model_version = ? AND granularity = "
        "(SELECT granularity FROM monitoring_windows WHERE model_name = ? AND model_version = ? "
        "ORDER BY computed_at DESC LIMIT 1) ORDER BY window_start", [model, version, model, version])


def feature_drift(store: Store, viewer: User, model: str, version: int, window_start: datetime) -> pd.DataFrame:
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    return store.query_df(
        "SELECT column_name, role, kind, stattest, score, threshold, drifted, reference_mean, current_mean, "
        "reference_missing_share, missing_share FROM monitoring_feature_drift "
        "WHERE model_name = ? AND model_version = ? AND window_start = ? "
        "ORDER BY role, drifted DESC, score DESC", [model, version, window_start])


def missing_series(store: Store, viewer: User, model: str, version: int) -> pd.DataFrame:
    """Per window, the missing share of every input that was ever missing (in the reference or a window)."""
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    return store.query_df(
        "SELECT window_start, column_name, missing_share, reference_missing_share FROM monitoring_feature_drift "
        "WHERE model_name = ? AND model_version = ? AND role = 'input' AND column_name IN (SELECT column_name "
        "FROM monitoring_feature_drift WHERE model_name = ? AND model_version = ? AND role = 'input' "
        "AND (missing_share > 0 OR reference_missing_share > 0)) ORDER BY window_start, column_name",
        [model, version, model, version])


def subgroup_series(store: Store, viewer: User, model: str, version: int, attribute: str) -> pd.DataFrame:
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    return store.query_df(
        "SELECT window_start, subgroup, n, positives, sensitivity, sensitivity_lo, sensitivity_hi, est_sensitivity, "
        "reference_sensitivity "
        "FROM monitoring_subgroups WHERE model_name = ? AND model_version = ? AND attribute = ? "
        "ORDER BY window_start, subgroup", [model, version, attribute])


@dataclass(frozen=True)
class WindowComparison:
    """The reference and one window's rows, with the columns compared (for plots and evidently's report)."""

    reference: pd.DataFrame
    current: pd.DataFrame
    numerical: list[str]  # inputs compared as numbers
    categorical: list[str]  # text and flag inputs, then the patient mix (sensitive attributes)


def window_comparison(store: Store, registry: Registry, viewer: User, model: str, version: int, start: datetime,
                      end: datetime) -> WindowComparison:
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    reference = stored_reference(store, model, version)
    if reference is None:
        raise NotFound(f"{model} v{version} has no reference data yet: run `python -m core.cli monitor`")
    ref = reference.frame()
    columns = [c for c in registry.model_inputs(model, version) if c.kind != "datetime"]
    attributes = [a for a in use_case_for_model(store, viewer, model).sensitive_attributes if a in ref.columns]
    current = read_window(store, model, version, start, end, columns, attributes)
    features = [c.name for c in columns]
    return WindowComparison(ref[features + attributes], current[features + attributes],
                            [c.name for c in columns if c.kind == "numerical"],
                            [c.name for c in columns if c.kind == "categorical"] + attributes)


def window_drift_report(comparison: WindowComparison) -> DriftReport:
    """evidently's own report of one window, for the drill-down (a few seconds: never on every page load)."""
    return drift_report(comparison.reference, comparison.current, numerical=comparison.numerical,
                        categorical=comparison.categorical)


def subgroup_attributes(store: Store, viewer: User, model: str, version: int) -> list[str]:
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    return [r["attribute"] for r in store.query("SELECT DISTINCT attribute FROM monitoring_subgroups WHERE "
                                                "model_name = ? AND model_version = ?", [model, version])]


def version_policy(store: Store, viewer: User, model: str) -> MonitoringPolicy:
    """The rules a model is judged by now (the subgroup limit filled from the use case's criteria)."""
    use_case = use_case_for_model(store, viewer, model)
    return use_case.monitoring.with_minimum_sensitivity(use_case.criteria.min_sensitivity)


def review_required(store: Store, registry: Registry, viewer: User, model: str, version: int) -> bool:
    """The version serves patients and a critical alert on it is not resolved."""
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    if registry.version_for_alias(model, "production") != version:
        return False
    return store.query_one("SELECT 1 AS x FROM alerts WHERE model_name = ? AND model_version = ? AND severity = "
                           "'critical' AND status IN ('open', 'acknowledged')", [model, version]) is not None
