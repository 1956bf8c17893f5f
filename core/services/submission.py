"""Submitting a registered version for clinical review.

Validation happens here, in the calling process, before anything is written.
The model itself is loaded only by the evaluation worker, a separate process
(`python -m core.worker`), so the Streamlit server never unpickles a model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.adapters.crash_points import crash_point
from core.adapters.liveness import hold, release
from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import REPO_ROOT, Settings, child_environment
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.domain.model_safety import check_loadable
from core.domain.usecase import PerformanceCriteria, UseCase
from core.errors import ModelBoardError, ValidationError
from core.services.audit import record_event
from core.services.evaluation_data import EvaluationData, check_evaluation_data, read_table
from core.services.evaluation_debris import LOCK_NAME, abandon_evaluation, evaluation_folder
from core.services.usecases import use_case_for_model

Progress = Callable[[str, float], None]


class EvaluationFailed(ModelBoardError):
    """The worker could not evaluate the version; its message says why."""


@dataclass(frozen=True)
class SubmissionRequest:
    model: str
    version: int
    eval_data: Path | None = None
    label: str | None = None
    sensitive: tuple[str, ...] | None = None
    deidentified: bool = False
    run_id: str | None = None  # an MLflow run not yet registered: ModelBoard registers its model
    complete_case: bool = False  # evaluate only patients with every input (the card records it)


@dataclass(frozen=True)
class StoredEvaluation:
    id: str
    model: str
    version: int
    status: str
    result: dict[str, Any]
    result_sha256: str
    reused: bool = False


def _refuse_too_small(data: EvaluationData, label: str, criteria: PerformanceCriteria, use_case: str) -> None:
    """An evaluation set too small to judge never becomes a version's evaluation of record (which would void its
    signatures): refused before anything is written, with the numbers."""
    patients, outcomes = len(data.frame), int(data.frame[label].sum())
    need_p, need_o = criteria.min_evaluation_patients, criteria.min_evaluation_outcomes
    if patients < need_p or outcomes < need_o:
        raise ValidationError(
            f"evaluation data refused: it holds {patients:,} patients, {outcomes:,} of whom had the outcome; use "
            f"case {use_case} needs at least {need_p:,} patients and {need_o:,} with the outcome to judge a model "
            "(criteria.min_evaluation_patients / min_evaluation_outcomes). Nothing was written; submit a larger "
            "evaluation set.")


def _load(settings: Settings, registry: Registry, request: SubmissionRequest, label: str,
          sensitive: tuple[str, ...], positive_class: str | None) -> EvaluationData:
    if request.run_id:
        inputs = registry.run_model_inputs(request.run_id)
        flavors, what = registry.run_model_flavors(request.run_id), f"the model of run {request.run_id}"
    else:
        inputs = registry.model_inputs(request.model, request.version)
        flavors, what = registry.model_flavors(request.model, request.version), f"{request.model} v{request.version}"
    check_loadable(flavors, what, settings.extra_skops_types)
    if request.eval_data is None and request.run_id:
        raise ValidationError("an unregistered run needs its evaluation data as a file (--eval-data FILE)")
    if request.eval_data is not None:
        path, source = request.eval_data, f"file {request.eval_data.name}"
    else:
        path = Path(registry.evaluation_dataset_path(request.model, request.version))
        source = "the evaluation dataset logged with the run"
    frame = read_table(path, max_bytes=settings.max_upload_mb * 1_000_000)
    return check_evaluation_data(frame, inputs=inputs, label=label, sensitive=sensitive,
                                 deidentified=request.deidentified, source=source, positive_class=positive_class,
                                 complete_case=request.complete_case)


def submit_version(settings: Settings, store: Store, registry: Registry, actor: User, request: SubmissionRequest,
                   *, progress: Progress | None = None) -> StoredEvaluation:
    """Validate, record the submission, run the worker, and return the stored evaluation.

    A version already evaluated on the same data under the same use-case version
    is not evaluated again: evaluation runs once per version.
    """
    require(actor, Permission.SUBMIT_MODELS)
    use_case = use_case_for_model(store, actor, request.model)
    label = request.label or use_case.label
    sensitive = request.sensitive or use_case.sensitive_attributes
    data = _load(settings, registry, request, label, sensitive, use_case.positive_class)
    _refuse_too_small(data, label, use_case.criteria, use_case.name)
    if request.run_id:
        return _submit_run(settings, store, registry, actor, request, progress)
    existing = store.query_one(
        "SELECT id FROM evaluations WHERE model_name = ? AND model_version = ? AND data_digest = ? "
        "AND use_case_version = ? AND status = 'complete'",
        [request.model, request.version, data.digest, use_case.version])
    if existing:
        return load_evaluation(store, actor, existing["id"], reused=True)
    evaluation_id = uuid.uuid4().hex
    folder = evaluation_folder(settings, evaluation_id)
    folder.mkdir(parents=True)
    alive = hold(folder / LOCK_NAME)  # held with the worker until both end: reconcile knows when nobody is left
    try:
        return _record_and_run(settings, store, actor, request, data, use_case, registry, evaluation_id, alive,
                               progress)
    except BaseException:
        # The worker records its own failures; one that was killed cannot, and an abandoned call (a browser session
        # that went away) stopped it: either way nothing half-done stays visible, and no patient-level file.
        abandon_evaluation(settings, store, evaluation_id, request.model, request.version)
        raise
    finally:
        release(alive)


def _record_and_run(settings: Settings, store: Store, actor: User, request: SubmissionRequest, data: EvaluationData,
                    use_case: UseCase, registry: Registry, evaluation_id: str, alive: int,
                    progress: Progress | None) -> StoredEvaluation:
    label, sensitive = request.label or use_case.label, request.sensitive or use_case.sensitive_attributes
    folder = evaluation_folder(settings, evaluation_id)
    data.frame.to_parquet(folder / "data.parquet", index=False)
    crash_point("submit:data-written")
    payload = {"label": label, "sensitive": list(sensitive), "threshold": use_case.threshold,
               "use_case": use_case.name, "min_n": use_case.criteria.min_subgroup_n, "source": data.source,
               "outcome": use_case.outcome, "positive_class": use_case.positive_class,
               "complete_case": dataclasses.asdict(data.complete_case) if data.complete_case else None,
               "features": [c.name for c in registry.model_inputs(request.model, request.version)]}
    with store.transaction() as cur:
        cur.execute("INSERT INTO evaluations (id, model_name, model_version, use_case, use_case_version, status, "
                    "request, data_digest, submitted_by, submitted_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                    [evaluation_id, request.model, request.version, use_case.name, use_case.version,
                     json.dumps(payload), data.digest, actor.username, utc_now()])
        record_event(cur, actor=actor.username, action="version_submitted",
                     model=request.model, version=request.version,
                     detail={"evaluation": evaluation_id, "data": data.source, "digest": data.digest,
                             "rows": len(data.frame), "complete_case": data.complete_case is not None})
        if data.identifiers:
            record_event(cur, actor=actor.username, action="deidentified_declared",
                         model=request.model, version=request.version,
                         detail={"columns": [f.message() for f in data.identifiers]})
    crash_point("submit:queued")
    _run_worker(settings, evaluation_id, alive, progress)
    return load_evaluation(store, actor, evaluation_id)


def _submit_run(settings: Settings, store: Store, registry: Registry, actor: User, request: SubmissionRequest,
                progress: Progress | None) -> StoredEvaluation:
    """Register a validated run's model, then submit the new version; undo the registration on failure."""
    from core.services.promotion import record_first_aliases

    version = registry.register_run(request.model, str(request.run_id))
    record_first_aliases(settings, store, registry, request.model)  # a new model: its baseline from the start
    with store.transaction() as cur:
        record_event(cur, actor=actor.username, action="run_registered", model=request.model, version=version,
                     detail={"run_id": request.run_id})
    try:
        return submit_version(settings, store, registry, actor,
                              dataclasses.replace(request, version=version, run_id=None), progress=progress)
    except ModelBoardError:
        registry.delete_version(request.model, version)
        with store.transaction() as cur:
            record_event(cur, actor=actor.username, action="run_registration_undone",
                         model=request.model, version=version, detail={"run_id": request.run_id})
        raise


@contextmanager
def kept_upload(settings: Settings, file_name: str, content: bytes) -> Iterator[Path]:
    """An evaluation file uploaded through the browser, on disk only while the `with` block runs.

    Size and type are checked before a byte is written, so a refused upload leaves nothing behind.
    """
    if len(content) > settings.max_upload_mb * 1_000_000:
        raise ValidationError(f"{file_name} is {len(content) / 1e6:.0f} MB, over the {settings.max_upload_mb} MB "
                              "limit: sample the evaluation set or raise MODELBOARD_MAX_UPLOAD_MB")
    suffix = Path(file_name).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValidationError(f"{file_name}: only .csv and .parquet evaluation files are accepted")
    uploads = settings.home / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / f"{uuid.uuid4().hex}{suffix}"
    alive = hold(path)  # if this process is killed, reconcile finds the file unlocked and removes it
    try:
        os.write(alive, content)
        yield path
    finally:
        path.unlink(missing_ok=True)
        release(alive)


def submit_upload(settings: Settings, store: Store, registry: Registry, actor: User, request: SubmissionRequest,
                  *, file_name: str, content: bytes, progress: Progress | None = None) -> StoredEvaluation:
    """Submit a registered version or an unregistered run with an evaluation file uploaded in the browser."""
    require(actor, Permission.SUBMIT_MODELS)
    with kept_upload(settings, file_name, content) as path:
        return submit_version(settings, store, registry, actor, dataclasses.replace(request, eval_data=path),
                              progress=progress)


def submissions_by(store: Store, viewer: User) -> list[dict[str, Any]]:
    """The viewer's submissions, newest first, with status and failed criteria."""
    require(viewer, Permission.SUBMIT_MODELS)
    rows = store.query("SELECT id, model_name, model_version, status, submitted_at, finished_at, error, "
                       "json_extract(result, '$.criteria') AS criteria FROM evaluations WHERE submitted_by = ? "
                       "ORDER BY submitted_at DESC", [viewer.username])
    for row in rows:
        criteria = json.loads(row.pop("criteria") or "[]")
        row["failed_criteria"] = [c["criterion"] for c in criteria if not c["passed"]]
    return rows


def _run_worker(settings: Settings, evaluation_id: str, alive: int, progress: Progress | None) -> None:
    """Run the worker with the liveness lock's descriptor (so the lock stays held while it runs). It dies with this
    process (core/worker.py); if this call is abandoned (Streamlit stopping the script), it is stopped, not left."""
    # The server runs with MLflow's deserialization switched off; only the worker may load models.
    env = child_environment(settings, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
                            MODELBOARD_PARENT_PID=str(os.getpid()))
    proc = subprocess.Popen([sys.executable, "-m", "core.worker", evaluation_id], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=(alive,))
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if progress and "step" in event:
                progress(str(event["step"]), float(event.get("fraction", 0.0)))
    except BaseException:
        proc.terminate()  # SIGTERM: the worker records the evaluation as interrupted and removes its data
        proc.wait(timeout=60)
        raise
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else "the worker stopped without a reason"
        raise EvaluationFailed(f"evaluation {evaluation_id} failed: {reason.removeprefix('error: ')}")


def load_evaluation(store: Store, viewer: User, evaluation_id: str, *, reused: bool = False) -> StoredEvaluation:
    require(viewer, Permission.VIEW_REGISTRY)
    row = store.query_one("SELECT * FROM evaluations WHERE id = ?", [evaluation_id])
    if row is None:
        raise ValidationError(f"no evaluation with id {evaluation_id!r}")
    return StoredEvaluation(row["id"], row["model_name"], int(row["model_version"]), row["status"],
                            json.loads(row["result"] or "{}"), row["result_sha256"] or "", reused)


def latest_evaluation(store: Store, viewer: User, model: str, version: int) -> StoredEvaluation | None:
    """The newest complete evaluation of a version, or None if it was never evaluated."""
    require(viewer, Permission.VIEW_REGISTRY)
    row = store.query_one("SELECT id FROM evaluations WHERE model_name = ? AND model_version = ? "
                          "AND status = 'complete' ORDER BY finished_at DESC LIMIT 1", [model, version])
    return load_evaluation(store, viewer, row["id"]) if row else None
