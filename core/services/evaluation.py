"""The evaluation itself, run only inside the worker process (`python -m core.worker`).

It loads the model through MLflow (core/adapters/model_loader.py, the only place
ModelBoard unpickles a model), establishes that what it returns are risks
(core/services/risk_model.py), computes everything a reviewer sees
(core/services/evaluation_compute.py), compares with the version in production,
and stores the result in DuckDB and as `modelboard/evaluation.json` on the run.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from core.adapters.crash_points import crash_point
from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import Settings
from core.domain.clock import utc_now
from core.domain.criteria import assess
from core.domain.models import STATUS_TAG
from core.domain.typed_inputs import conform
from core.errors import ModelBoardError
from core.metrics.comparison import decision_flips, gap_changes, metric_deltas, subgroup_deltas
from core.services.audit import record_event
from core.services.evaluation_compute import Progress, compute, jsonable
from core.services.evaluation_debris import discard_evaluation_data
from core.services.risk_model import load_risk_model
from core.services.usecases import get_use_case

WORKER = "modelboard-worker"  # the actor named in audit rows the evaluation worker writes


def canonical_sha256(result: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def run(settings: Settings, store: Store, registry: Registry, evaluation_id: str, progress: Progress) -> None:
    """Evaluate one queued submission and store the result; on failure, record why."""
    row = store.query_one("SELECT * FROM evaluations WHERE id = ?", [evaluation_id])
    if row is None or row["status"] not in ("queued", "failed"):
        raise ModelBoardError(f"evaluation {evaluation_id} is not waiting to run")
    request = json.loads(row["request"])
    store.execute("UPDATE evaluations SET status = 'running' WHERE id = ?", [evaluation_id])
    try:
        model_name, version = str(row["model_name"]), int(row["model_version"])
        frame = pd.read_parquet(settings.home / "evaluations" / evaluation_id / "data.parquet")
        signature = registry.model_signature(model_name, version)
        progress("Loading the model through MLflow and scoring every patient", 0.1)
        started = time.perf_counter()
        model, score = load_risk_model(model_name, version, signature, frame,
                                       positive_class=request.get("positive_class"))
        batch_seconds = time.perf_counter() - started
        crash_point("worker:scored")
        use_case = get_use_case(store, worker_user(), row["use_case"], int(row["use_case_version"]))
        result = compute(frame, model, score, request, lambda o, t: assess(use_case, o, t), progress,
                         batch_seconds=batch_seconds)
        result |= {"model": model_name, "version": version,
                   "use_case": {"name": use_case.name, "version": use_case.version},
                   "data_digest": row["data_digest"], "evaluated_at": utc_now().isoformat()}
        progress("Comparing with the version in production", 0.92)
        result["comparison"] = _comparison(registry, row, frame, request, score)
        progress("Storing the results", 0.95)
        _store_result(store, evaluation_id, result, frame, request, score)
        crash_point("worker:stored")
        _publish(registry, model_name, version, result)
    except Exception as exc:
        with store.transaction() as cur:
            cur.execute("UPDATE evaluations SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                        [str(exc)[:2000], utc_now(), evaluation_id])
            record_event(cur, actor=WORKER, action="evaluation_failed", model=row["model_name"],
                         version=int(row["model_version"]),
                         detail={"evaluation": evaluation_id, "error": str(exc)[:500]})
        discard_evaluation_data(settings, evaluation_id)  # a failed evaluation keeps no patient-level file
        raise


def _comparison(registry: Registry, row: dict[str, Any], frame: pd.DataFrame, request: dict[str, Any],
                score: np.ndarray) -> dict[str, Any]:
    """The candidate against the version holding `production` now, on the same patients and threshold."""
    model, version = row["model_name"], int(row["model_version"])
    production = registry.version_for_alias(model, "production")
    if production is None or production == version:
        reason = "no version holds the production alias" if production is None else "this version is in production"
        return {"available": False, "reason": reason}
    signature = registry.model_signature(model, production)
    missing = [c.name for c in signature.inputs if c.name not in frame.columns]
    if missing:
        return {"available": False, "reason": f"the evaluation data lacks inputs of v{production}: {missing}"}
    conformed = conform(frame, signature.inputs)
    if conformed.problems:
        return {"available": False, "reason": f"v{production} cannot take this evaluation data: "
                                               + "; ".join(conformed.problems)}
    try:
        _, reference = load_risk_model(model, production, signature, conformed.frame,
                                       positive_class=request.get("positive_class"))
    except ModelBoardError as exc:
        return {"available": False, "reason": f"v{production} could not score these patients: {exc}"}
    y = frame[request["label"]].astype(int).to_numpy()
    threshold = float(request["threshold"])
    by_group = subgroup_deltas(y, score, reference, threshold, frame[request["sensitive"]].astype(str),
                               int(request["min_n"]))
    return {"available": True, "production_version": production, "threshold": threshold,
            "method": "paired percentile bootstrap, 200 resamples, seed 20261124",
            "metrics": jsonable(metric_deltas(y, score, reference, threshold)),
            "flips": decision_flips(y, score, reference, threshold),
            "subgroups": jsonable(by_group), "gaps": jsonable(gap_changes(by_group))}


def worker_user() -> Any:
    from core.domain.access import User

    return User(username=WORKER, full_name="ModelBoard evaluation worker", role="auditor")


def _store_result(store: Store, evaluation_id: str, result: dict[str, Any], frame: pd.DataFrame,
                  request: dict[str, Any], score: np.ndarray) -> None:
    attributes = frame[request["sensitive"]].astype(str).to_dict(orient="records")
    rows = pd.DataFrame({
        "evaluation_id": evaluation_id, "row_index": np.arange(len(frame), dtype=np.int32),
        "encounter_id": frame["encounter_id"].astype(str) if "encounter_id" in frame else None,
        "label": frame[request["label"]].astype(int), "score": score,
        "attributes": [json.dumps(a) for a in attributes]})
    with store.transaction() as cur:
        cur.register("incoming_rows", rows)
        cur.execute("INSERT INTO evaluation_rows SELECT * FROM incoming_rows")
        digest = canonical_sha256(result)
        cur.execute("UPDATE evaluations SET status = 'complete', result = ?, result_sha256 = ?, finished_at = ? "
                    "WHERE id = ?", [json.dumps(result), digest, utc_now(), evaluation_id])
        record_event(cur, actor=WORKER, action="evaluation_completed", model=str(result["model"]),
                     version=int(result["version"]), detail={"evaluation": evaluation_id, "result_sha256": digest,
                                                             "criteria_passed": result.get("criteria_passed")})


def publish_missing(store: Store, registry: Registry) -> list[tuple[str, int]]:
    """Publish to MLflow the newest complete evaluation of each version that carries no review status: a worker
    killed between storing its result and publishing it left the registry behind the store (reconcile calls this)."""
    done = []
    for row in store.query("SELECT e.id, e.model_name, e.model_version, e.result FROM evaluations e WHERE "
                           "e.status = 'complete' AND e.finished_at = (SELECT max(finished_at) FROM evaluations f "
                           "WHERE f.model_name = e.model_name AND f.model_version = e.model_version AND "
                           "f.status = 'complete')"):
        model, version = str(row["model_name"]), int(row["model_version"])
        try:
            tags = registry.get_version(model, version).version_tags
        except ModelBoardError:
            continue  # a version gone from the registry: reconcile's alias checks speak for it
        if STATUS_TAG not in tags:
            _publish(registry, model, version, json.loads(row["result"]))
            done.append((model, version))
    return done


def _publish(registry: Registry, model: str, version: int, result: dict[str, Any]) -> None:
    """The evaluation as an MLflow artifact on the run, and the version tagged in review."""
    run_id = registry.get_version(model, version).summary.run_id
    if run_id:
        registry.client.log_dict(run_id, result, "modelboard/evaluation.json")
    if registry.version_for_alias(model, "production") != version:  # re-evaluating production changes no status
        registry.client.set_model_version_tag(model, str(version), STATUS_TAG, "in_review")
