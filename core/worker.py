"""python -m core.worker EVALUATION_ID: the evaluation worker process.

The only ModelBoard process that loads (unpickles) models, always through
MLflow's own loader and only for registered versions. It reports progress as
JSON lines on stdout and fails with a one-line reason on stderr.
See docs/decisions/0005-evaluation-worker.md.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

from core.config import Settings, load_settings, quiet_mlflow

if TYPE_CHECKING:
    from core.adapters.registry import Registry
    from core.adapters.store import Store


STOPPED = ("the evaluation was interrupted: the process that submitted it stopped (a closed browser session, a "
           "killed command or a server restart). Submit the version again.")


def _progress(step: str, fraction: float) -> None:
    """One JSON line for the submitting process; a closed pipe means it is gone (its SIGTERM may still be on its
    way), so the evaluation stops as interrupted rather than failing on the pipe."""
    from core.errors import ProcessStopped

    try:
        print(json.dumps({"step": step, "fraction": round(fraction, 3)}), flush=True)
    except BrokenPipeError:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise ProcessStopped(STOPPED) from None


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _say(line: str) -> None:
    """The one-line reason on stderr; a parent that is gone (a closed pipe) no longer needs it."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def _die_with_parent() -> None:
    """Linux asks the kernel to send this worker SIGTERM when the process that started it ends, however it ends
    (SIGKILL included); SIGTERM becomes `ProcessStopped`, so the evaluation is recorded as interrupted and its
    patient-level data removed (core/services/evaluation.py). A parent that ended before this line ran is caught by
    comparing with the pid it passed."""
    from core.errors import ProcessStopped

    def stopped(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second signal must not cut short the recording
        raise ProcessStopped(STOPPED)

    signal.signal(signal.SIGTERM, stopped)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    expected = os.environ.get("MODELBOARD_PARENT_PID", "")
    if expected.isdigit() and os.getppid() != int(expected):
        stopped(signal.SIGTERM, None)


def main(argv: list[str]) -> int:
    quiet_mlflow()
    if argv[:1] == ["reference"]:
        return _reference(argv[1:])
    if len(argv) != 1 or not re.fullmatch(r"[0-9a-f]{32}", argv[0]):
        print("error: usage: python -m core.worker EVALUATION_ID (32 hex digits)", file=sys.stderr)
        return 2
    from core.errors import ModelBoardError, ProcessStopped

    settings = load_settings()
    try:
        _die_with_parent()  # before the heavy imports below: a parent killed meanwhile is noticed at once
        from core.services import evaluation
        from core.services.installation import open_registry, open_store

        store, registry = open_store(settings), open_registry(settings)
        _check_loadable(settings, store, registry, argv[0])
        evaluation.run(settings, store, registry, argv[0], _progress)
        _progress("Evaluation complete", 1.0)
    except ProcessStopped as exc:  # evaluation.run records its own; stopped before it ran, it is recorded here
        from core.services.evaluation_debris import abandon_evaluation_by_id
        from core.services.installation import open_store

        abandon_evaluation_by_id(settings, open_store(settings), argv[0])
        _say(f"error: {exc}")
        return 1
    except ModelBoardError as exc:
        _say(f"error: {exc}")
        return 1
    return 0


def _check_loadable(settings: Settings, store: Store, registry: Registry, evaluation_id: str) -> None:
    """Re-check, just before loading, every model this evaluation will load (the candidate and the version in
    production): the MLmodel may have changed since submission, and this process is the one that unpickles."""
    from core.domain.clock import utc_now
    from core.domain.model_safety import check_loadable
    from core.errors import ModelBoardError

    row = store.query_one("SELECT model_name, model_version FROM evaluations WHERE id = ?", [evaluation_id])
    if row is None:
        return  # evaluation.run reports the unknown id
    model, version = str(row["model_name"]), int(row["model_version"])
    try:
        for v in {version, registry.version_for_alias(model, "production") or version}:
            check_loadable(registry.model_flavors(model, v), f"{model} v{v}", settings.extra_skops_types)
    except ModelBoardError as exc:
        store.execute("UPDATE evaluations SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                      [str(exc)[:2000], utc_now(), evaluation_id])
        raise


def _reference(argv: list[str]) -> int:
    """python -m core.worker reference MODEL VERSION: score the evaluation dataset logged with a version
    ModelBoard never evaluated, so monitoring has reference data for it."""
    from core.domain.model_safety import check_loadable
    from core.errors import ModelBoardError
    from core.services.evaluation import worker_user
    from core.services.installation import open_registry, open_store
    from core.services.monitoring_reference import score_logged_evaluation_set

    if len(argv) != 2 or not argv[1].isdigit():
        print("error: usage: python -m core.worker reference MODEL VERSION", file=sys.stderr)
        return 2
    settings = load_settings()
    model, version = argv[0], int(argv[1])
    try:
        store, registry = open_store(settings), open_registry(settings)
        check_loadable(registry.model_flavors(model, version), f"{model} v{version}", settings.extra_skops_types)
        score_logged_evaluation_set(settings, store, registry, worker_user(), model, version)
    except ModelBoardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
