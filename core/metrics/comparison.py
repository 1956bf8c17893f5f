"""Champion–challenger: a candidate against the model in production, on the same patients.

Differences come with 95 % intervals from a paired percentile bootstrap (both
models scored on the same resampled patients, fixed seed), and every patient
whose decision flips is counted by what the flip means clinically.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.metrics.binary import auroc_by_group
from core.metrics.subgroups import subgroup_metrics

SEED = 20261124
METRICS = ("auroc", "sensitivity", "specificity", "ppv", "alerts_per_1000")


def _point(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    flagged = score >= threshold
    tp = float(np.sum(flagged & (y == 1)))
    fp = float(np.sum(flagged & (y == 0)))
    positives, negatives = float(np.sum(y == 1)), float(np.sum(y == 0))
    zeros = np.zeros(len(y), dtype=np.int64)
    return {"auroc": float(auroc_by_group(y, score, zeros, 1).auroc[0]),
            "sensitivity": tp / positives if positives else np.nan,
            "specificity": (negatives - fp) / negatives if negatives else np.nan,
            "ppv": tp / (tp + fp) if tp + fp else np.nan,
            "alerts_per_1000": 1000 * (tp + fp) / len(y)}


def metric_deltas(y: np.ndarray, candidate: np.ndarray, reference: np.ndarray, threshold: float,
                  *, n_bootstrap: int = 200, seed: int = SEED) -> pd.DataFrame:
    """Candidate minus reference for each headline metric, with a paired bootstrap interval."""
    cand, ref = _point(y, candidate, threshold), _point(y, reference, threshold)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(y), len(y))
        a, b = _point(y[idx], candidate[idx], threshold), _point(y[idx], reference[idx], threshold)
        for m in METRICS:
            draws[m].append(a[m] - b[m])
    rows = []
    for m in METRICS:
        values = np.asarray(draws[m])
        values = values[~np.isnan(values)]
        lo, hi = np.percentile(values, [2.5, 97.5]) if len(values) else (np.nan, np.nan)
        rows.append({"metric": m, "candidate": cand[m], "production": ref[m], "difference": cand[m] - ref[m],
                     "lo": float(lo), "hi": float(hi)})
    return pd.DataFrame(rows)


def decision_flips(y: np.ndarray, candidate: np.ndarray, reference: np.ndarray, threshold: float) -> dict[str, int]:
    """How many patients' decisions change, and what each change means."""
    a, b = candidate >= threshold, reference >= threshold
    return {"newly_caught": int(np.sum(a & ~b & (y == 1))), "newly_missed": int(np.sum(~a & b & (y == 1))),
            "new_false_alarms": int(np.sum(a & ~b & (y == 0))), "false_alarms_removed": int(np.sum(~a & b & (y == 0))),
            "unchanged": int(np.sum(a == b))}


def subgroup_deltas(y: np.ndarray, candidate: np.ndarray, reference: np.ndarray, threshold: float,
                    sensitive: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Per group of each single attribute: sensitivity of each model and the change."""
    kwargs = {"sensitive_features": sensitive, "threshold": threshold, "min_n": min_n, "pairwise": False}
    a = subgroup_metrics(y, candidate, **kwargs).by_group  # type: ignore[arg-type]
    b = subgroup_metrics(y, reference, **kwargs).by_group  # type: ignore[arg-type]
    merged = a[["attribute_set", "group", "n", "enough_patients", "sensitivity", "specificity"]].merge(
        b[["attribute_set", "group", "sensitivity", "specificity"]], on=["attribute_set", "group"],
        suffixes=("_candidate", "_production"))
    merged["sensitivity_change"] = merged["sensitivity_candidate"] - merged["sensitivity_production"]
    return merged


def gap_changes(deltas: pd.DataFrame) -> pd.DataFrame:
    """Best-to-worst sensitivity gap per attribute, for each model, over groups with enough patients."""
    judged = deltas[deltas["enough_patients"] & (deltas["attribute_set"] != "overall")]
    rows = []
    for attribute_set, groups in judged.groupby("attribute_set", sort=False):
        cand, prod = groups["sensitivity_candidate"].dropna(), groups["sensitivity_production"].dropna()
        if len(cand) > 1 and len(prod) > 1:
            rows.append({"attribute_set": attribute_set, "gap_candidate": float(cand.max() - cand.min()),
                         "gap_production": float(prod.max() - prod.min())})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["gap_change"] = frame["gap_candidate"] - frame["gap_production"]
    return frame
