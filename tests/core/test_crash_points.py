"""SIGKILL at every named step of submit, promotion, rollback, ingest and monitor (core/adapters/crash_points.py).

Each case runs the operation in a child process forked from a forkserver that has ModelBoard imported already (so a
case costs a fork, not an interpreter start); the child sets MODELBOARD_CRASH_AT and kills itself, uncatchably,
at that step. Then, as after a real crash: nothing acknowledged before the crash is missing, no half-written
state is visible to a reader, `reconcile` brings the store and MLflow back into agreement, and the audit chain and
its signed checkpoints verify.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.adapters.crash_points import CRASH_POINTS, ENV
from core.config import Settings
from core.domain.access import command_line_operator
from core.services.audit_verification import verify_chain
from core.services.installation import open_registry, open_store
from core.services.promotion import reconcile
from tests.conftest import REPO, demo_copy, from_token, settings_token
from tests.core.test_promotion import (
    CANDIDATE,
    MODEL,
    PASSWORDS,
    approve,
    audit_since,
    mlflow_aliases,
    new_round,
    person,
    promotions_since,
)

OPERATOR = command_line_operator("pytest")
FORKS = multiprocessing.get_context("forkserver")
FORKS.set_forkserver_preload(["tests.core.test_crash_points"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings, demo_backend: str,
         request: pytest.FixtureRequest) -> Settings:
    return demo_copy(tmp_path_factory, reviewed_demo, "crash", demo_backend, request)


# -- what the children do -------------------------------------------------------------------------------------------
def _settings(home: str) -> Settings:
    """The children get the settings as a token (home, and the PostgreSQL URL on that engine)."""
    return from_token(home)


def _die_at(point: str, operation: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ[ENV] = point
    operation(*args)


def last_approval(home: str) -> None:
    approve(_settings(home), "diaz")


def roll_back(home: str) -> None:
    from core.services.promotion import roll_back as service

    settings = _settings(home)
    store = open_store(settings)
    service(settings, store, open_registry(settings), person(store, "ng"), MODEL, username="ng",
            password=PASSWORDS["ng"], rationale="Crash drill: putting the previous version back.")


def submit(home: str, version: int, path: str) -> None:
    from core.services.submission import SubmissionRequest, submit_version

    settings = _settings(home)
    submit_version(settings, open_store(settings), open_registry(settings), OPERATOR,
                   SubmissionRequest(MODEL, version, eval_data=Path(path)))


def monitor(home: str) -> None:
    from core.services.monitoring import run_monitor

    settings = _settings(home)
    run_monitor(settings, open_store(settings), open_registry(settings), OPERATOR)


def start(child: multiprocessing.process.BaseProcess) -> None:
    """Start a forkserver child without the app: an AppTest run earlier in this worker leaves app/main.py as
    `__main__`, and a child would run it again while starting (multiprocessing re-imports the parent's main)."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        child.start()
    finally:
        sys.modules["__main__"] = main


def killed_at(point: str, operation: Callable[..., Any], *args: Any) -> None:
    """Run `operation` in a fresh child that dies at `point`; fail if it got through without reaching it."""
    assert point in CRASH_POINTS, point
    child = FORKS.Process(target=_die_at, args=(point, operation, args))
    start(child)
    child.join(600)
    assert child.exitcode == -signal.SIGKILL, f"{operation.__name__} never reached {point} (exit {child.exitcode})"


# -- checks after every crash -----------------------------------------------------------------------------------------
def reconciled(settings: Settings) -> list[Any]:
    findings = reconcile(settings, open_store(settings), open_registry(settings), OPERATOR)
    problems = {(f.kind, f.model) for f in findings if f.problem}
    # The demo's standing findings: readmission-30d v1 was never signed off, nor sepsis-icu v1 until a signed
    # rollback (the first test's) has put it back. Nothing else may be wrong after a crash and reconcile.
    assert ("production_without_signoff", "readmission-30d") in problems and problems <= {
        ("production_without_signoff", "readmission-30d"), ("production_without_signoff", "sepsis-icu")}, findings
    if ("production_without_signoff", "sepsis-icu") in problems:  # only the baseline it had when the demo was built
        assert mlflow_aliases(settings)["production"] == 1 and not open_store(settings).query(
            "SELECT 1 FROM alias_history WHERE model_name = ? AND alias = 'production' AND version = 1 "
            "AND kind IN ('promoted', 'rolled_back')", [MODEL]), findings
    return findings


def chain_holds(settings: Settings) -> None:
    result = verify_chain(open_store(settings), open_registry(settings))
    assert result.ok and result.anchored, result.as_dict()


def kinds(findings: list[Any]) -> list[str]:
    return [f.kind for f in findings if f.kind not in ("production_without_signoff", "aliases_match")]


# -- promotion and rollback -----------------------------------------------------------------------------------------
PROMOTION_STEPS = [p for p in CRASH_POINTS if p.startswith("promotion:")]
ROLLBACK_STEPS = [p for p in CRASH_POINTS if p.startswith("rollback:")]


def test_every_promotion_and_rollback_step_survives_sigkill(demo: Settings) -> None:
    """Each step of a promotion, then of a rollback, killed in turn: reconcile finishes what was acknowledged."""
    assert len(PROMOTION_STEPS) == 4 and len(ROLLBACK_STEPS) == 4
    for promote_at, roll_back_at in zip(PROMOTION_STEPS, ROLLBACK_STEPS, strict=True):
        started = new_round(demo, approvals=("ng", "okafor"))
        before = mlflow_aliases(demo)["production"]
        killed_at(promote_at, last_approval, settings_token(demo))
        rows = promotions_since(demo, started)
        assert [r["state"] for r in rows] == ["intent"], promote_at  # the reader sees an unfinished intent, no more
        assert len(audit_since(demo, started, "promotion_completed")) == 0
        signers = {s["signer"] for s in open_store(demo).query(
            "SELECT signer FROM signatures WHERE model_name = ? AND model_version = ? AND signed_at >= ? "
            "AND decision = 'approve'", [MODEL, CANDIDATE, started])}
        assert signers == {"ng", "okafor", "diaz"}, promote_at  # every signature given before the crash is there
        chain_holds(demo)
        found = reconciled(demo)
        assert "interrupted_promotion" in kinds(found), (promote_at, found)
        assert [r["state"] for r in promotions_since(demo, started)] == ["completed"]
        assert mlflow_aliases(demo) == {"production": CANDIDATE, "previous": before}, promote_at
        assert len(audit_since(demo, started, "promotion_completed")) == 1
        chain_holds(demo)

        killed_at(roll_back_at, roll_back, settings_token(demo))
        rolled = promotions_since(demo, started, "rollback")
        if roll_back_at == "rollback:signed":
            assert rolled == []  # signed, but nothing had started: the signature stays, nothing moves
            assert mlflow_aliases(demo)["production"] == CANDIDATE
            reconciled(demo)
            roll_back(settings_token(demo))  # the clinician tries again
        else:
            assert [r["state"] for r in rolled] == ["intent"], roll_back_at
            found = reconciled(demo)
            assert "interrupted_rollback" in kinds(found), (roll_back_at, found)
        assert [r["state"] for r in promotions_since(demo, started, "rollback")] == ["completed"], roll_back_at
        assert mlflow_aliases(demo)["production"] == before, roll_back_at
        assert len(audit_since(demo, started, "rollback_completed")) == 1
        chain_holds(demo)


# -- submit and the evaluation worker -------------------------------------------------------------------------------
def evaluation_file(settings: Settings, tmp_path: Path, seed: int) -> Path:
    """The validation cohort logged with v2, resampled: new data (a new evaluation), same columns."""
    from core.services.evaluation_data import read_table

    logged = Path(open_registry(settings).evaluation_dataset_path(MODEL, CANDIDATE))
    frame = read_table(logged, max_bytes=10**9)
    path = tmp_path / f"resampled-{seed}.csv"
    frame.sample(frac=0.8, random_state=seed).to_csv(path, index=False)
    return path


def patient_files(settings: Settings) -> list[Path]:
    """Patient-level files of evaluations that are not complete, and uploads."""
    store = open_store(settings)
    complete = {r["id"] for r in store.query("SELECT id FROM evaluations WHERE status = 'complete'")}
    left = [p for p in (settings.home / "evaluations").glob("*/*.parquet") if p.parent.name not in complete]
    return left + list((settings.home / "uploads").glob("*"))


def evaluations_by_status(settings: Settings) -> dict[str, int]:
    rows = open_store(settings).query("SELECT status, count(*) AS n FROM evaluations GROUP BY status")
    return {r["status"]: int(r["n"]) for r in rows}


@pytest.mark.parametrize("point", [p for p in CRASH_POINTS if p.startswith(("submit:", "worker:"))])
def test_a_submission_killed_at_any_step_leaves_no_patient_file_and_nothing_half_done(
        demo: Settings, tmp_path: Path, point: str) -> None:
    before = evaluations_by_status(demo)
    path = evaluation_file(demo, tmp_path, seed=sorted(CRASH_POINTS).index(point))
    if point.startswith("worker:"):
        # The worker inherits the crash point and dies there; the submission sees it and cleans up at once.
        from core.services.submission import EvaluationFailed

        with pytest.raises(EvaluationFailed):
            _submit_here(demo, path, point)
    else:
        killed_at(point, submit, settings_token(demo), CANDIDATE, str(path))
    found = reconciled(demo)
    after = evaluations_by_status(demo)
    assert after.get("queued", 0) == after.get("running", 0) == 0, after  # nothing half-done stays visible
    assert patient_files(demo) == []
    if point == "submit:queued":
        assert "interrupted_evaluation" in kinds(found)
        assert after["failed"] == before.get("failed", 0) + 1
    elif point == "submit:data-written":
        assert "abandoned_evaluation_files" in kinds(found) and after == before  # no row was ever written
    elif point == "worker:scored":
        assert after["failed"] == before.get("failed", 0) + 1  # recorded by the submission, not left running
    else:  # worker:stored: the result is acknowledged; reconcile publishes what the worker could not
        assert after["complete"] == before["complete"] + 1
    chain_holds(demo)


def _submit_here(settings: Settings, path: Path, point: str) -> None:
    os.environ[ENV] = point
    try:
        submit(settings_token(settings), CANDIDATE, str(path))
    finally:
        del os.environ[ENV]


def _workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in children.read_text().split()] if children.exists() else []


def test_the_worker_dies_with_the_submitting_process_and_removes_its_data(demo: Settings, tmp_path: Path) -> None:
    """The process that submitted is killed while the worker runs: the worker stops within seconds, records the
    evaluation as interrupted and removes the patient-level data; reconcile then finds nothing left to do."""
    path = evaluation_file(demo, tmp_path, seed=101)
    before = evaluations_by_status(demo)
    child = FORKS.Process(target=submit, args=(settings_token(demo), CANDIDATE, str(path)))
    start(child)
    assert child.pid is not None
    deadline = time.monotonic() + 120
    while not (evaluations_by_status(demo).get("running") and _workers_of(child.pid)):
        assert child.is_alive() and time.monotonic() < deadline, "the worker never started"
        time.sleep(0.05)
    (worker,) = _workers_of(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    deadline = time.monotonic() + 60
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{worker}").exists(), ("the worker outlived the process that submitted it",
                                                  Path(f"/proc/{worker}/status").read_text()[:400],
                                                  Path(f"/proc/{worker}/cmdline").read_text(),
                                                  Path(f"/proc/{worker}/wchan").read_text())
    after = evaluations_by_status(demo)
    assert after.get("running", 0) == 0 and after["failed"] == before.get("failed", 0) + 1
    assert patient_files(demo) == []
    error = open_store(demo).query_one("SELECT error FROM evaluations ORDER BY submitted_at DESC LIMIT 1")
    assert error is not None and "interrupted" in error["error"]
    assert "interrupted_evaluation" not in kinds(reconciled(demo))  # the worker cleaned up itself
    chain_holds(demo)


# -- ingest -----------------------------------------------------------------------------------------------------------
def ingest(home: str, path: str) -> None:
    from core.services.ingest import ingest_predictions

    settings = _settings(home)
    ingest_predictions(settings, open_store(settings), open_registry(settings), OPERATOR, model=MODEL, version=1,
                       path=Path(path))


def ingest_counts(settings: Settings) -> tuple[int, int]:
    store = open_store(settings)
    rows = store.query_one("SELECT count(*) AS n FROM prediction_log")
    events = store.query_one("SELECT count(*) AS n FROM audit_events WHERE action LIKE '%_ingested'")
    assert rows is not None and events is not None
    return int(rows["n"]), int(events["n"])


@pytest.mark.parametrize("point", [p for p in CRASH_POINTS if p.startswith("ingest:")])
def test_ingest_killed_at_each_step_leaves_nothing_half_written(demo: Settings, tmp_path: Path, point: str) -> None:
    """Killed before or inside its transaction, ingest has stored no row and no audit event; run again, the same
    file is stored whole, once."""
    from tests.core.test_ingest import predictions

    path = tmp_path / "day.parquet"
    predictions(150, 7 + len(point), f"CRASH-{point}-").to_parquet(path)
    before = ingest_counts(demo)
    killed_at(point, ingest, settings_token(demo), str(path))
    assert ingest_counts(demo) == before
    ingest(settings_token(demo), str(path))
    assert ingest_counts(demo) == (before[0] + 150, before[1] + 1)
    ingest(settings_token(demo), str(path))  # the same file again adds nothing
    assert ingest_counts(demo)[0] == before[0] + 150
    chain_holds(demo)


# -- monitoring -------------------------------------------------------------------------------------------------------
def test_monitoring_killed_after_one_window_finishes_the_rest_on_the_next_run(demo: Settings) -> None:
    store = open_store(demo)
    killed_at("monitor:window-stored", monitor, settings_token(demo))
    first = store.query_one("SELECT count(*) AS n FROM monitoring_windows")
    assert first is not None and first["n"] >= 1  # the window committed before the crash is there
    monitor(settings_token(demo))
    windows = store.query("SELECT model_name, model_version, granularity, window_start, count(*) AS n "
                          "FROM monitoring_windows GROUP BY 1, 2, 3, 4 HAVING count(*) > 1")
    assert windows == []  # none computed twice
    again = store.query_one("SELECT count(*) AS n FROM monitoring_windows")
    monitor(settings_token(demo))
    assert store.query_one("SELECT count(*) AS n FROM monitoring_windows") == again  # nothing was left to do
    chain_holds(demo)


def test_every_crash_point_in_the_code_is_listed_and_every_listed_one_is_used() -> None:
    import re

    used = set()
    for path in (REPO / "core").rglob("*.py"):
        for found in re.findall(r'crash_point\(f?"([^"]+)"\)', path.read_text()):
            used.update([found.replace("{kind}", k).replace("{promotion.kind}", k) for k in ("promotion", "rollback")]
                        if "{" in found else [found])
    listed = set(CRASH_POINTS)
    assert used == listed, (used - listed, listed - used)
