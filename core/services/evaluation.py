"""The evaluation itself, run only inside the worker process (`python -m core.worker`).

It loads the model through MLflow's pyfunc loader (the only place ModelBoard
unpickles a model), scores the evaluation set, computes performance,
calibration, decision curve, latency, robustness and subgroup fairness, and
stores the result in DuckDB and as `modelboard/evaluation.json` on the run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import Settings
from core.domain.clock import utc_now
from core.domain.criteria import assess
from core.domain.models import STATUS_TAG
from core.errors import ModelBoardError
from core.metrics.calibration import ECE_GROUP_METHOD, FIT_METHOD, OBSERVED_EXPECTED_METHOD, calibration
from core.metrics.comparison import decision_flips, gap_changes, metric_deltas, subgroup_deltas
from core.metrics.explanations import explain, explained_rows, importance, importance_by_group
from core.metrics.performance import decision_curve, latency_summary, overall_performance
from core.metrics.subgroups import subgroup_metrics
from core.services.audit import record_event
from core.services.usecases import get_use_case

Progress = Callable[[str, float], None]
SAMPLE_ROWS = 200
WORKER = "modelboard-worker"  # the actor named in audit rows the evaluation worker writes
SUMMARY_KEYS = ("n", "sensitivity", "specificity", "ppv", "auroc",  # the original --json keys, kept first
                "prevalence", "mean_predicted", "observed_expected", "ece", "calibration_slope",
                "calibration_intercept")
SUBGROUP_CALIBRATION_METHODS = {"observed_expected": OBSERVED_EXPECTED_METHOD, "ece": ECE_GROUP_METHOD,
                                "calibration_slope": FIT_METHOD, "calibration_intercept": FIT_METHOD}


def jsonable(value: Any) -> Any:
    """Plain JSON: NaN and infinities become null (an undefined metric is never 0)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def canonical_sha256(result: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def positive_class_scores(raw: Any) -> np.ndarray:
    """The probability of the outcome from whatever pyfunc's predict returned."""
    values = np.asarray(raw.to_numpy() if isinstance(raw, pd.DataFrame | pd.Series) else raw, dtype=float)
    if values.ndim == 2:
        values = values[:, -1]
    if values.ndim != 1 or not np.all((values >= 0) & (values <= 1)):
        raise ModelBoardError("the model's predictions are not probabilities in [0, 1]: log it with "
                              "pyfunc_predict_fn='predict_proba' so it returns the risk of the outcome")
    return values


def _latency(model: Any, X: pd.DataFrame) -> dict[str, float]:
    rows = X.sample(min(SAMPLE_ROWS // 2, len(X)), random_state=0)
    timings = []
    for i in range(len(rows)):
        start = time.perf_counter()
        model.predict(rows.iloc[[i]])
        timings.append(time.perf_counter() - start)
    return latency_summary(np.asarray(timings))


def _robustness(model: Any, X: pd.DataFrame, baseline: np.ndarray) -> list[dict[str, Any]]:
    """Per input: does a missing value break the model, and how far does an absurd value move scores?"""
    idx = np.arange(min(SAMPLE_ROWS, len(X)))
    base, sample = baseline[idx], X.iloc[idx]
    out = []
    for column in X.columns:
        entry: dict[str, Any] = {"feature": column}
        for case, values in (("missing", np.nan), ("out_of_range", float(X[column].max() + 10 * X[column].std()))):
            probe = sample.copy()
            probe[column] = values
            try:
                moved = np.abs(positive_class_scores(model.predict(probe)) - base)
                entry[case] = {"error": None, "mean_abs_score_change": float(moved.mean()),
                               "max_abs_score_change": float(moved.max())}
            except Exception as exc:  # noqa: BLE001 - recording how the model fails is the point
                entry[case] = {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}
        out.append(entry)
    return out


def _explanations(raw_model: Any, model: Any, X: pd.DataFrame, frame: pd.DataFrame, y: np.ndarray,
                  score: np.ndarray, request: dict[str, Any]) -> dict[str, Any]:
    """SHAP for a seeded sample plus missed patients; stored so pages never recompute."""
    flagged = score >= float(request["threshold"])
    rows = explained_rows(y, flagged)
    if raw_model is not None and hasattr(raw_model, "predict_proba"):
        def predict_risk(f: pd.DataFrame) -> np.ndarray:
            return np.asarray(raw_model.predict_proba(f))[:, -1]  # skips pyfunc's per-call schema checks
    else:
        def predict_risk(f: pd.DataFrame) -> np.ndarray:
            return positive_class_scores(model.predict(f))
    method, units, background, values, base = explain(raw_model if raw_model is not None else model,
                                                      predict_risk, X, rows)
    features = list(X.columns)
    encounters = frame["encounter_id"].astype(str).to_numpy() if "encounter_id" in frame else rows.astype(str)
    patients = [{"row_index": int(r), "encounter_id": str(encounters[r]), "label": int(y[r]),
                 "score": float(score[r]), "flagged": bool(flagged[r]),
                 "shap": dict(zip(features, map(float, values[i]), strict=True)),
                 "inputs": dict(zip(features, map(float, X.iloc[r]), strict=True))}
                for i, r in enumerate(rows)]
    groups = frame[request["sensitive"]].astype(str).iloc[rows].reset_index(drop=True)
    return {"method": method, "units": units, "background": background, "base_value": base,
            "features": features, "importance": jsonable(importance(values, features)),
            "by_group": jsonable(importance_by_group(values, features, groups)), "patients": patients}


def compute(frame: pd.DataFrame, model: Any, request: dict[str, Any], criteria_of: Callable[..., Any],
            progress: Progress, raw_model: Any = None) -> tuple[dict[str, Any], np.ndarray]:
    """Everything a reviewer sees, from one evaluation set and one loaded model."""
    X = frame[request["features"]].astype("float64")
    y = frame[request["label"]].astype(float).astype(int).to_numpy()
    progress("Scoring every patient in the evaluation set", 0.25)
    started = time.perf_counter()
    score = positive_class_scores(model.predict(X))
    batch_seconds = time.perf_counter() - started
    progress("Timing predictions and probing robustness", 0.4)
    latency = _latency(model, X) | {"batch_seconds": batch_seconds, "rows": len(X)}
    robustness = _robustness(model, X, score)
    progress("Computing performance with confidence intervals", 0.55)
    threshold = float(request["threshold"])
    overall = overall_performance(y, score, threshold=threshold)
    progress("Computing subgroup fairness", 0.75)
    sensitive = frame[request["sensitive"]].astype(str)
    report = subgroup_metrics(y, score, sensitive_features=sensitive, threshold=threshold,
                              min_n=int(request["min_n"]), calibration_fit=True)
    table = jsonable(report.by_group)
    overall_values = {k: v["value"] for k, v in jsonable(overall).items() if isinstance(v, dict) and "value" in v}
    result = {
        "threshold": threshold, "min_n": int(request["min_n"]), "n": int(len(y)), "label": request["label"],
        "data_source": request["source"], "outcome": request.get("outcome", "the outcome"),
        "overall": overall_values, "overall_detail": jsonable(overall),
        "calibration": jsonable(calibration(y, score)), "decision_curve": jsonable(decision_curve(y, score)),
        "subgroup_calibration_methods": SUBGROUP_CALIBRATION_METHODS,
        "latency": jsonable(latency), "robustness": jsonable(robustness),
        "subgroups": _subgroup_summary(table), "subgroup_table": table, "gaps": jsonable(report.gaps),
        "criteria": [c.to_dict() for c in criteria_of(overall_values, table)],
    }
    result["criteria_passed"] = all(c["passed"] for c in result["criteria"])
    progress("Explaining predictions (SHAP)", 0.85)
    result["explanations"] = _explanations(raw_model, model, X, frame, y, score, request)
    return result, score


def _subgroup_summary(table: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for row in table:
        if row["attribute_set"] != "overall":
            summary.setdefault(row["attribute_set"], {})[row["group"]] = {
                k: row[k] for k in SUMMARY_KEYS if k in row}
    return summary


def run(settings: Settings, store: Store, registry: Registry, evaluation_id: str, progress: Progress) -> None:
    """Evaluate one queued submission and store the result; on failure, record why."""
    import mlflow.pyfunc

    row = store.query_one("SELECT * FROM evaluations WHERE id = ?", [evaluation_id])
    if row is None or row["status"] not in ("queued", "failed"):
        raise ModelBoardError(f"evaluation {evaluation_id} is not waiting to run")
    request = json.loads(row["request"])
    store.execute("UPDATE evaluations SET status = 'running' WHERE id = ?", [evaluation_id])
    try:
        frame = pd.read_parquet(settings.home / "evaluations" / evaluation_id / "data.parquet")
        progress("Loading the model through MLflow", 0.1)
        uri = f"models:/{row['model_name']}/{row['model_version']}"
        model = mlflow.pyfunc.load_model(uri)
        use_case = get_use_case(store, worker_user(), row["use_case"], int(row["use_case_version"]))
        result, score = compute(frame, model, request, lambda o, t: assess(use_case, o, t), progress,
                                raw_model=_raw_sklearn_model(model, uri))
        result |= {"model": row["model_name"], "version": int(row["model_version"]),
                   "use_case": {"name": use_case.name, "version": use_case.version},
                   "data_digest": row["data_digest"], "evaluated_at": utc_now().isoformat()}
        progress("Comparing with the version in production", 0.92)
        result["comparison"] = _comparison(registry, row, frame, request, result, score)
        progress("Storing the results", 0.95)
        _store_result(store, evaluation_id, result, frame, request, score)
        _publish(registry, row["model_name"], int(row["model_version"]), result)
    except Exception as exc:
        with store.transaction() as cur:
            cur.execute("UPDATE evaluations SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                        [str(exc)[:2000], utc_now(), evaluation_id])
            record_event(cur, actor=WORKER, action="evaluation_failed", model=row["model_name"],
                         version=int(row["model_version"]),
                         detail={"evaluation": evaluation_id, "error": str(exc)[:500]})
        raise


def _comparison(registry: Registry, row: dict[str, Any], frame: pd.DataFrame, request: dict[str, Any],
                result: dict[str, Any], score: np.ndarray) -> dict[str, Any]:
    """The candidate against the version holding `production` now, on the same patients and threshold."""
    import mlflow.pyfunc

    model, version = row["model_name"], int(row["model_version"])
    production = registry.version_for_alias(model, "production")
    if production is None or production == version:
        reason = "no version holds the production alias" if production is None else "this version is in production"
        return {"available": False, "reason": reason}
    features = [name for name, _ in registry.model_inputs(model, production)]
    missing = [f for f in features if f not in frame.columns]
    if missing:
        return {"available": False, "reason": f"the evaluation data lacks inputs of v{production}: {missing}"}
    reference_model = mlflow.pyfunc.load_model(f"models:/{model}/{production}")
    reference = positive_class_scores(reference_model.predict(frame[features].astype("float64")))
    y = frame[request["label"]].astype(float).astype(int).to_numpy()
    threshold = float(request["threshold"])
    by_group = subgroup_deltas(y, score, reference, threshold, frame[request["sensitive"]].astype(str),
                               int(request["min_n"]))
    return {"available": True, "production_version": production, "threshold": threshold,
            "method": "paired percentile bootstrap, 200 resamples, seed 20261124",
            "metrics": jsonable(metric_deltas(y, score, reference, threshold)),
            "flips": decision_flips(y, score, reference, threshold),
            "subgroups": jsonable(by_group), "gaps": jsonable(gap_changes(by_group))}


def _raw_sklearn_model(model: Any, uri: str) -> Any:
    """The underlying scikit-learn estimator (for TreeExplainer), via MLflow's own loader."""
    if "sklearn" not in model.metadata.flavors:
        return None
    import mlflow.sklearn

    return mlflow.sklearn.load_model(uri)


def worker_user() -> Any:
    from core.domain.access import User

    return User(username=WORKER, full_name="ModelBoard evaluation worker", role="auditor")


def _store_result(store: Store, evaluation_id: str, result: dict[str, Any], frame: pd.DataFrame,
                  request: dict[str, Any], score: np.ndarray) -> None:
    attributes = frame[request["sensitive"]].astype(str).to_dict(orient="records")
    rows = pd.DataFrame({
        "evaluation_id": evaluation_id, "row_index": np.arange(len(frame), dtype=np.int32),
        "encounter_id": frame["encounter_id"].astype(str) if "encounter_id" in frame else None,
        "label": frame[request["label"]].astype(float).astype(int), "score": score,
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


def _publish(registry: Registry, model: str, version: int, result: dict[str, Any]) -> None:
    """The evaluation as an MLflow artifact on the run, and the version tagged in review."""
    run_id = registry.get_version(model, version).summary.run_id
    if run_id:
        registry.client.log_dict(run_id, result, "modelboard/evaluation.json")
    if registry.version_for_alias(model, "production") != version:  # re-evaluating production changes no status
        registry.client.set_model_version_tag(model, str(version), STATUS_TAG, "in_review")
