"""Everything a reviewer sees, computed from one evaluation set and one model that returns risks.

Runs only inside the worker process (the model is loaded). Inputs arrive in the
types the model's signature declares, missing values included; the figures are
stored once and pages never recompute them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.metrics.calibration import ECE_GROUP_METHOD, FIT_METHOD, OBSERVED_EXPECTED_METHOD, calibration
from core.metrics.explanations import explain, explained_rows, importance, importance_by_group
from core.metrics.missingness import input_profile, missing_shares, sensitivity_by_presence
from core.metrics.performance import decision_curve, latency_summary, overall_performance
from core.metrics.subgroups import subgroup_metrics
from core.services.risk_model import RiskModel

Progress = Callable[[str, float], None]
SAMPLE_ROWS = 200
UNSEEN = "an unseen category (ModelBoard probe)"
SUMMARY_KEYS = ("n", "sensitivity", "specificity", "ppv", "auroc",  # the original --json keys, kept first
                "prevalence", "mean_predicted", "observed_expected", "ece", "calibration_slope",
                "calibration_intercept")
SUBGROUP_CALIBRATION_METHODS = {"observed_expected": OBSERVED_EXPECTED_METHOD, "ece": ECE_GROUP_METHOD,
                                "calibration_slope": FIT_METHOD, "calibration_intercept": FIT_METHOD}


def jsonable(value: Any) -> Any:
    """Plain JSON: NaN, infinities and pandas' missing markers become null (an undefined metric is never 0)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _latency(model: RiskModel, X: pd.DataFrame) -> dict[str, float]:
    rows = X.sample(min(SAMPLE_ROWS // 2, len(X)), random_state=0)
    timings = []
    for i in range(len(rows)):
        start = time.perf_counter()
        model.risk(rows.iloc[[i]])
        timings.append(time.perf_counter() - start)
    return latency_summary(np.asarray(timings))


def _probes(column: pd.Series) -> list[tuple[str, str, Any]]:
    """(case, what was put in, value) per input: a missing value, and an absurd number or an unseen category."""
    probes: list[tuple[str, str, Any]] = [("missing", "a missing value", None)]
    numbers = column.dropna()
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column) and len(numbers):
        value = float(numbers.max() + 10 * (numbers.std() if len(numbers) > 1 else 1.0))
        probes.append(("out_of_range", f"{value:.4g} (10 standard deviations above the largest value)", value))
    elif column.dtype == object:
        probes.append(("out_of_range", UNSEEN, UNSEEN))
    return probes


def _robustness(model: RiskModel, X: pd.DataFrame, baseline: np.ndarray) -> list[dict[str, Any]]:
    """Per input: does a missing value break the model, and how far do an absurd value or an unseen
    category move the scores?"""
    idx = np.arange(min(SAMPLE_ROWS, len(X)))
    base, sample = baseline[idx], X.iloc[idx]
    out = []
    for column in X.columns:
        entry: dict[str, Any] = {"feature": column}
        for case, described, value in _probes(X[column]):
            probe = sample.copy()
            probe[column] = pd.Series([value] * len(probe), index=probe.index,
                                      dtype=object if value is None or isinstance(value, str) else float)
            try:
                moved = np.abs(model.risk(probe) - base)
                entry[case] = {"probe": described, "error": None, "mean_abs_score_change": float(moved.mean()),
                               "max_abs_score_change": float(moved.max())}
            except Exception as exc:  # noqa: BLE001 - recording how the model fails is the point
                cause = exc.__cause__ or exc
                entry[case] = {"probe": described, "error": f"{type(cause).__name__}: {str(cause)[:160]}"}
        out.append(entry)
    return out


def _shown(value: Any) -> Any:
    """An input value as JSON keeps it: numbers as numbers, categories as text, missing as null."""
    value = jsonable(value)
    return value if value is None or isinstance(value, int | float | str | bool) else str(value)


def _explanations(model: RiskModel, X: pd.DataFrame, frame: pd.DataFrame, y: np.ndarray, score: np.ndarray,
                  request: dict[str, Any]) -> dict[str, Any]:
    """SHAP for a seeded sample plus missed patients, per original input; stored so pages never recompute."""
    flagged = score >= float(request["threshold"])
    found = explain(model.estimator, model.risk, X, explained_rows(y, flagged), positive=model.positive)
    rows = found.rows
    features = list(X.columns)
    encounters = frame["encounter_id"].astype(str).to_numpy() if "encounter_id" in frame else rows.astype(str)
    patients = [{"row_index": int(r), "encounter_id": str(encounters[r]), "label": int(y[r]),
                 "score": float(score[r]), "flagged": bool(flagged[r]),
                 "shap": dict(zip(features, map(float, found.values[i]), strict=True)),
                 "inputs": {f: _shown(X.iloc[r][f]) for f in features}}
                for i, r in enumerate(rows)]
    groups = frame[request["sensitive"]].astype(str).iloc[rows].reset_index(drop=True)
    return {"method": found.method, "units": found.units, "background": found.background,
            "base_value": found.base_value, "features": features,
            "importance": jsonable(importance(found.values, features)),
            "by_group": jsonable(importance_by_group(found.values, features, groups)), "patients": patients}


def compute(frame: pd.DataFrame, model: RiskModel, score: np.ndarray, request: dict[str, Any],
            criteria_of: Callable[..., Any], progress: Progress, *, batch_seconds: float) -> dict[str, Any]:
    """Everything a reviewer sees, from one evaluation set and the risks the model gave it."""
    X = model.model_frame(frame)
    y = frame[request["label"]].astype(int).to_numpy()
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
    signature = model.signature
    result = {
        "threshold": threshold, "min_n": int(request["min_n"]), "n": int(len(y)), "label": request["label"],
        "data_source": request["source"], "outcome": request.get("outcome", "the outcome"),
        "scoring": jsonable(model.method) | {"sentence": model.method.sentence()},
        "inputs": input_profile(X, [c.type for c in signature.inputs], [c.required for c in signature.inputs]),
        "inputs_from": signature.source, "missingness": jsonable(missing_shares(X, sensitive)),
        "missing_flagged": jsonable(sensitivity_by_presence(y, score >= threshold, X)),
        "complete_case": request.get("complete_case"),
        "overall": overall_values, "overall_detail": jsonable(overall),
        "calibration": jsonable(calibration(y, score)), "decision_curve": jsonable(decision_curve(y, score)),
        "subgroup_calibration_methods": SUBGROUP_CALIBRATION_METHODS,
        "latency": jsonable(latency), "robustness": jsonable(robustness),
        "subgroups": _subgroup_summary(table), "subgroup_table": table, "gaps": jsonable(report.gaps),
        "criteria": [c.to_dict() for c in criteria_of(overall_values, table)],
    }
    result["criteria_passed"] = all(c["passed"] for c in result["criteria"])
    progress("Explaining predictions (SHAP)", 0.85)
    result["explanations"] = _explanations(model, X, frame, y, score, request)
    return result


def _subgroup_summary(table: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for row in table:
        if row["attribute_set"] != "overall":
            summary.setdefault(row["attribute_set"], {})[row["group"]] = {
                k: row[k] for k in SUMMARY_KEYS if k in row}
    return summary
