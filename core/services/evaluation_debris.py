"""Patient-level files of evaluations that did not finish, and of uploads whose submission ended half-way.

A submission writes the evaluation set to `evaluations/<id>/data.parquet` for the worker; a complete evaluation keeps
it (monitoring's reference data is scored from it), anything else must not leave it behind. The worker removes it
when it fails, the submitting process when the worker dies, and `reconcile` when both were killed: it finds
evaluations still `queued` or `running` whose liveness lock nobody holds (core/adapters/liveness.py), records them
as interrupted and removes their files, and removes uploads nobody is checking any more.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from core.adapters.liveness import abandoned
from core.adapters.store import Store
from core.config import Settings
from core.domain.clock import utc_now
from core.services.audit import SYSTEM_ACTOR, record_event

LOCK_NAME = "worker.lock"
INTERRUPTED = ("interrupted: the evaluation stopped before it finished (its process was killed or the machine "
               "restarted); its patient-level data was removed. Submit the version again.")


@dataclass(frozen=True)
class Debris:
    """What reconcile found and cleaned: an interrupted evaluation, or a left-over upload."""

    kind: str  # "evaluation" | "evaluation_files" | "upload"
    name: str
    model: str | None = None
    version: int | None = None


def evaluation_folder(settings: Settings, evaluation_id: str) -> Path:
    return settings.home / "evaluations" / evaluation_id


def discard_evaluation_data(settings: Settings, evaluation_id: str) -> None:
    """Remove the patient-level files of an evaluation that will not complete."""
    shutil.rmtree(evaluation_folder(settings, evaluation_id), ignore_errors=True)


def mark_interrupted(store: Store, evaluation_id: str, model: str, version: int, reason: str = INTERRUPTED) -> bool:
    """Record an unfinished evaluation as failed, once; False if it had already finished one way or another."""
    with store.transaction() as cur:
        cur.execute("UPDATE evaluations SET status = 'failed', error = ?, finished_at = ? WHERE id = ? "
                    "AND status IN ('queued', 'running') RETURNING id", [reason, utc_now(), evaluation_id])
        if cur.fetchone() is None:
            return False
        record_event(cur, actor=SYSTEM_ACTOR, action="evaluation_interrupted", model=model, version=version,
                     detail={"evaluation": evaluation_id, "reason": reason})
    return True


def abandon_evaluation(settings: Settings, store: Store, evaluation_id: str, model: str, version: int) -> None:
    """An evaluation whose worker or caller stopped: recorded as interrupted unless it finished, and its patient-level
    data removed unless it is complete (a complete evaluation keeps it for monitoring's reference)."""
    mark_interrupted(store, evaluation_id, model, version)
    row = store.query_one("SELECT status FROM evaluations WHERE id = ?", [evaluation_id])
    if row is None or row["status"] != "complete":
        discard_evaluation_data(settings, evaluation_id)


def abandon_evaluation_by_id(settings: Settings, store: Store, evaluation_id: str) -> None:
    """`abandon_evaluation` for a worker that knows only the id it was started with."""
    row = store.query_one("SELECT model_name, model_version FROM evaluations WHERE id = ?", [evaluation_id])
    if row is not None:
        abandon_evaluation(settings, store, evaluation_id, str(row["model_name"]), int(row["model_version"]))


def clean_interrupted(settings: Settings, store: Store) -> list[Debris]:
    """Every unfinished evaluation nobody is running any more, and every upload nobody is checking: recorded and
    removed. Safe to run while submissions are under way: a live one holds its lock."""
    found = []
    for row in store.query("SELECT id, model_name, model_version FROM evaluations WHERE status IN "
                           "('queued', 'running') ORDER BY submitted_at"):
        evaluation_id = str(row["id"])
        if not abandoned(evaluation_folder(settings, evaluation_id) / LOCK_NAME):
            continue
        mark_interrupted(store, evaluation_id, str(row["model_name"]), int(row["model_version"]))
        discard_evaluation_data(settings, evaluation_id)
        found.append(Debris("evaluation", evaluation_id, str(row["model_name"]), int(row["model_version"])))
    uploads = settings.home / "uploads"
    for path in sorted(uploads.iterdir()) if uploads.is_dir() else []:
        if path.is_file() and abandoned(path):
            path.unlink(missing_ok=True)
            found.append(Debris("upload", path.name))
    complete = {str(r["id"]) for r in store.query("SELECT id FROM evaluations WHERE status = 'complete'")}
    for folder in sorted((settings.home / "evaluations").glob("*")):
        if folder.is_dir() and folder.name not in complete and abandoned(folder / LOCK_NAME):
            shutil.rmtree(folder, ignore_errors=True)  # written by a submission killed before its row was
            found.append(Debris("evaluation_files", folder.name))
    return found
