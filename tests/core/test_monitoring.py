"""`monitor` on a demo of its own: the lactate-assay shift found in the window it starts and nothing before,
incremental and idempotent runs, delayed outcomes filling in windows, de-duplicated alerts, "review required"
in MLflow, the webhook, and drift decisions equal to evidently's on the same window.

The tests run in file order on one demo, as cron would run on one installation."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from core.config import Settings
from core.domain.access import command_line_operator
from core.services.alerts import open_alerts, resolve
from core.services.installation import open_registry, open_store
from core.services.monitoring import MonitorRun, run_monitor, window_comparison, window_drift_report
from core.services.monitoring_reference import LABEL, SCORE, stored_reference
from tests.conftest import demo_copy, environment

REPO = Path(__file__).resolve().parents[2]
OPERATOR = command_line_operator("pytest")
SHIFT_WEEK = datetime(2026, 7, 27)  # the demo's day 60 (2026-07-31) falls in the week starting Monday 27 July


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts?token=secret"
    server.shutdown()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, webhook: str, reviewed_demo: Settings, demo_backend: str,
         request: pytest.FixtureRequest) -> Settings:
    settings = demo_copy(tmp_path_factory, reviewed_demo, "monitoring", demo_backend, request)
    Hook.received.clear()  # the module runs once per store engine: only this installation's alerts count
    return replace(settings, alert_webhook_url=webhook)


@pytest.fixture(scope="module")
def runs(home: Settings) -> tuple[MonitorRun, MonitorRun, MonitorRun]:
    """Cron on 20 July (before the shift), then today, then again today with nothing new."""
    store, registry = open_store(home), open_registry(home)
    early = run_monitor(home, store, registry, OPERATOR, now=datetime(2026, 7, 20))
    full = run_monitor(home, store, registry, OPERATOR)
    again = run_monitor(home, store, registry, OPERATOR)
    return early, full, again


def test_the_shift_is_found_in_the_window_it_starts_and_nothing_alerts_before(runs: tuple[MonitorRun, ...]) -> None:
    early, full, _ = runs
    # Only the weeks that had ended by 20 July (the first starts on Monday 1 June).
    assert [w.start for w in early.windows] == [datetime(2026, 6, 1) + timedelta(days=7 * i) for i in range(7)]
    assert early.alerts == ()
    windows = early.windows + full.windows
    assert len(windows) == 13 and len({w.start for w in windows}) == 13
    assert all(not w.breaches for w in windows if w.start < SHIFT_WEEK)
    first = min((b for b in full.alerts), key=lambda b: b.window_start)
    assert (first.rule, first.window_start, first.severity, first.new) == (
        "input_drift", SHIFT_WEEK.isoformat(), "critical", True)
    assert "lactate shifted strongly" in first.message and "Inputs that shifted: lactate." in first.message
    assert "mean predicted risk" in first.message  # how the scores moved, in words
    # Every later week still breaks the rule, but one alert stays open for it (de-duplication).
    assert {b.window_start for b in full.alerts} == {w.start.isoformat() for w in full.windows if w.start >= SHIFT_WEEK}
    assert sum(b.new for b in full.alerts) == 1 and len({b.alert_id for b in full.alerts}) == 1


def test_a_second_run_with_nothing_new_computes_nothing(runs: tuple[MonitorRun, ...]) -> None:
    assert runs[2].windows == () and runs[2].alerts == ()


def test_cli_prints_the_documented_json(home: Settings) -> None:
    done = subprocess.run([sys.executable, "-m", "core.cli", "monitor", "--home", str(home.home), "--json"],
                          env=environment(home),
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["windows"] == [] and printed["alerts"] == []
    store = open_store(home)
    assert store.query_one("SELECT count(*) AS n FROM monitoring_runs WHERE finished_at IS NOT NULL")["n"] == 4


def test_json_shape_of_a_run_with_findings(runs: tuple[MonitorRun, ...]) -> None:
    printed = json.loads(json.dumps(runs[1].as_json()))
    assert {"model", "version", "start", "end"} <= set(printed["windows"][0])
    assert {"rule", "model", "version", "window_start", "severity"} <= set(printed["alerts"][0])


def test_the_reference_is_the_logged_evaluation_set_scored_by_the_worker(home: Settings,
                                                                       runs: tuple[MonitorRun, ...]) -> None:
    reference = stored_reference(open_store(home), "sepsis-icu", 1)
    assert reference is not None and "scored by ModelBoard's worker" in reference.source
    frame = reference.frame()
    assert reference.auroc == pytest.approx(roc_auc_score(frame[LABEL], frame[SCORE]), abs=1e-12)
    assert reference.rows == len(frame) > 1000  # so evidently's rules pick Wasserstein / Jensen-Shannon


def test_drift_decisions_equal_evidentlys_report_on_the_shift_window(home: Settings,
                                                                      runs: tuple[MonitorRun, ...]) -> None:
    store, registry = open_store(home), open_registry(home)
    stored = store.query("SELECT column_name, drifted FROM monitoring_feature_drift WHERE window_start = ?",
                         [SHIFT_WEEK])
    ours = {r["column_name"] for r in stored if r["drifted"]}
    report = window_drift_report(window_comparison(store, registry, OPERATOR, "sepsis-icu", 1, SHIFT_WEEK,
                                                   datetime(2026, 8, 3)))
    assert "lactate" in ours
    assert set(report.drifted_columns) == ours
    assert report.n_columns == len(stored)


def test_a_critical_alert_on_production_marks_it_review_required(home: Settings,
                                                                  runs: tuple[MonitorRun, ...]) -> None:
    client = MlflowClient(home.tracking_uri, registry_uri=home.registry_uri)
    assert client.get_model_version("sepsis-icu", "1").tags["modelboard.status"] == "review_required"
    marked = open_store(home).query_one("SELECT count(*) AS n FROM audit_events WHERE action = 'review_required'")
    assert marked == {"n": 1}


def test_the_webhook_heard_about_the_new_alert_only(home: Settings, runs: tuple[MonitorRun, ...]) -> None:
    assert [(h["rule"], h["window_start"], h["severity"]) for h in Hook.received] == [
        ("input_drift", SHIFT_WEEK.isoformat(), "critical")]
    assert "lactate" in Hook.received[0]["message"]
    notified = open_store(home).query("SELECT detail FROM audit_events WHERE action = 'alert_notified'")
    assert len(notified) == 1 and "secret" not in notified[0]["detail"]  # the token never reaches the audit log


def test_delayed_outcomes_fill_in_the_windows_that_waited(home: Settings, runs: tuple[MonitorRun, ...]) -> None:
    store = open_store(home)
    waiting = store.query("SELECT window_start FROM monitoring_windows WHERE labelled < predictions ORDER BY 1")
    assert len(waiting) == 2
    last = store.query_one("SELECT * FROM monitoring_windows ORDER BY window_start DESC LIMIT 1")
    assert last["labelled"] == 0 and last["auroc"] is None and last["est_auroc"] is not None
    from core.services.ingest import ingest_labels

    ingest_labels(home, store, OPERATOR, path=home.home / "incoming" / "late-outcomes.csv")
    refreshed = run_monitor(home, store, open_registry(home), OPERATOR)
    assert [w.start for w in refreshed.windows] == [r["window_start"] for r in waiting]
    last = store.query_one("SELECT * FROM monitoring_windows ORDER BY window_start DESC LIMIT 1")
    assert last["labelled"] == last["predictions"]
    rows = store.query_df(
        "SELECT p.score, l.outcome FROM prediction_log p JOIN outcome_labels l USING (model_name, encounter_id) "
        "WHERE p.predicted_at >= ? AND p.predicted_at < ?", [last["window_start"], last["window_end"]])
    assert last["auroc"] == pytest.approx(roc_auc_score(rows["outcome"], rows["score"]), abs=1e-9)
    assert last["auroc_lo"] < last["auroc"] < last["auroc_hi"]
    assert not any(b.new for b in refreshed.alerts)  # still the one open input-drift alert


def test_a_resolved_alert_is_raised_again_when_the_breach_is_found_again(home: Settings,
                                                                        runs: tuple[MonitorRun, ...]) -> None:
    store = open_store(home)
    (alert,) = [a for a in open_alerts(store, OPERATOR) if a.rule == "input_drift"]
    resolve(store, OPERATOR, alert.id, "Lab confirmed assay B; model retraining requested.")
    assert not [a for a in open_alerts(store, OPERATOR) if a.rule == "input_drift"]
    store.execute("DELETE FROM monitoring_windows WHERE window_start = (SELECT max(window_start) "
                  "FROM monitoring_windows)")  # as if the last week's predictions arrived only now
    again = run_monitor(home, store, open_registry(home), OPERATOR)
    assert [(b.rule, b.new) for b in again.alerts] == [("input_drift", True)]
    assert len([a for a in open_alerts(store, OPERATOR) if a.rule == "input_drift"]) == 1


def test_estimated_and_realised_sensitivity_agree_before_the_shift(home: Settings,
                                                                   runs: tuple[MonitorRun, ...]) -> None:
    """The demo's scores are calibrated before the shift, so the estimate tracks what outcomes later show."""
    rows = open_store(home).query_df("SELECT est_sensitivity, sensitivity FROM monitoring_windows "
                                     "WHERE window_start < ?", [SHIFT_WEEK])
    gap = np.abs(rows["est_sensitivity"] - rows["sensitivity"])
    assert gap.mean() < 0.1


def test_only_data_scientists_and_administrators_run_monitoring(home: Settings) -> None:
    from core.domain.access import User
    from core.errors import PermissionDenied

    clinician = User(username="ng", full_name="Dr. Alice Ng", role="clinician")
    with pytest.raises(PermissionDenied, match="run production monitoring"):
        run_monitor(home, open_store(home), open_registry(home), clinician)


def test_monitor_exits_non_zero_when_it_skipped_a_model_version(home: Settings) -> None:
    """A version in the prediction log that monitoring cannot handle (here: one the registry does not hold) is
    skipped and named, and the exit code tells cron so."""
    store = open_store(home)
    store.execute("INSERT INTO prediction_log SELECT model_name, 99, encounter_id, predicted_at, score, decision, "
                  "features, attributes, ingested_at FROM prediction_log WHERE model_name = 'sepsis-icu' LIMIT 5")
    try:
        done = subprocess.run([sys.executable, "-m", "core.cli", "monitor", "--home", str(home.home), "--json"],
                          env=environment(home),
                              capture_output=True, text=True, cwd=REPO, timeout=300)
    finally:
        store.execute("DELETE FROM prediction_log WHERE model_version = 99")
    assert done.returncode == 1, done.stdout + done.stderr
    assert [s.split(":")[0] for s in json.loads(done.stdout)["skipped"]] == ["sepsis-icu v99"]
    assert "skipped 1 model version(s)" in done.stderr
