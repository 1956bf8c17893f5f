"""Named places where the fault tests kill this process with SIGKILL, to prove nothing is lost or half-written.

A crash between two writes (the store and MLflow, the intent and the completion, a file and its row) cannot be
provoked reliably by timing. Each multi-step operation names its steps here instead; a test process sets
`MODELBOARD_CRASH_AT=<name>` and the process kills itself, uncatchably, when it gets there. Unset (always, outside
the tests), a crash point is a dictionary lookup. tests/core/test_crash_points.py walks every name in CRASH_POINTS.
"""

from __future__ import annotations

import os
import signal

ENV = "MODELBOARD_CRASH_AT"
CRASH_POINTS = (
    "submit:data-written",       # the evaluation set on disk, no evaluation row yet
    "submit:queued",             # the evaluation row and its audit event committed, the worker not started
    "worker:scored",             # inside the worker: the model scored every patient, nothing stored
    "worker:stored",             # inside the worker: the result committed, not yet published to MLflow
    "promotion:intent",          # the intent committed, MLflow untouched
    "promotion:previous-moved",  # `previous` moved in MLflow, `production` not yet
    "promotion:production-moved",  # `production` moved, the versions not yet tagged, no completion
    "promotion:tagged",          # aliases and tags done, the completion not written
    "rollback:signed",           # the rollback's signature committed, no intent
    "rollback:intent",           # the rollback's intent committed, MLflow untouched
    "rollback:production-moved",  # production back on the old version, no completion
    "rollback:tagged",           # aliases and tags done, the completion not written
    "ingest:read",               # the file read and checked, nothing written
    "ingest:before-commit",      # inside the ingest transaction, before COMMIT
    "monitor:window-stored",     # one window of one model stored, the others not yet
)


def crash_point(name: str) -> None:
    """Die here, at once and without cleanup, if a fault test asked for it."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
