"""Performance of one monitoring window: realised once outcomes arrive, estimated before.

The estimate is confidence-based performance estimation (CBPE, as in NannyML):
if the scores are calibrated, a patient with score p develops the outcome with
probability p, so the expected confusion matrix at the threshold is a sum of
scores, and the expected ROC curve follows from the same sums at every cut.
It is only as good as the calibration — exactly what a shift can break — so
pages always label it an estimate and later show it beside the realised value.
Realised metrics reuse the review's conventions: Wilson intervals for
proportions, DeLong for AUROC, and the observed/expected ratio for calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.metrics.binary import auroc_by_group
from core.metrics.intervals import Z95, MetricValue, auroc_interval, wilson

NAN = float("nan")


@dataclass(frozen=True)
class EstimatedPerformance:
    """What the window's performance should be if the model is still calibrated (no outcomes needed)."""

    auroc: float
    sensitivity: float
    ppv: float
    expected_rate: float


@dataclass(frozen=True)
class RealisedPerformance:
    """Measured on the labelled patients of a window, with 95 % intervals."""

    labelled: int
    positives: int
    auroc: MetricValue
    sensitivity: MetricValue
    ppv: MetricValue
    observed_expected: MetricValue  # observed outcome rate / mean predicted risk; 1 = calibrated in the large


def _nan_value(method: str) -> MetricValue:
    return MetricValue(NAN, NAN, NAN, method)


def estimated_performance(scores: np.ndarray, flagged: np.ndarray) -> EstimatedPerformance:
    """CBPE: expected sensitivity, PPV and AUROC from the scores and decisions alone."""
    p = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    if len(p) == 0:
        return EstimatedPerformance(NAN, NAN, NAN, NAN)
    flagged = np.asarray(flagged, dtype=bool)
    expected_pos = float(p.sum())
    sensitivity = float(p[flagged].sum()) / expected_pos if expected_pos > 0 else NAN
    ppv = float(p[flagged].mean()) if flagged.any() else NAN
    return EstimatedPerformance(_expected_auroc(p), sensitivity, ppv, float(p.mean()))


def _expected_auroc(p: np.ndarray) -> float:
    """Area under the expected ROC curve: cut at every distinct score, from the highest down."""
    expected_pos, expected_neg = p.sum(), (1 - p).sum()
    if expected_pos <= 0 or expected_neg <= 0:
        return NAN
    values, inverse = np.unique(-p, return_inverse=True)  # descending distinct scores
    tp = np.concatenate([[0.0], np.cumsum(np.bincount(inverse, weights=p, minlength=len(values)))])
    fp = np.concatenate([[0.0], np.cumsum(np.bincount(inverse, weights=1 - p, minlength=len(values)))])
    return float(np.trapezoid(tp / expected_pos, fp / expected_neg))


def realised_performance(y_true: np.ndarray, scores: np.ndarray, flagged: np.ndarray) -> RealisedPerformance:
    """Realised AUROC, sensitivity, PPV and calibration-in-the-large of the labelled patients."""
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(scores, dtype=float)
    flagged = np.asarray(flagged, dtype=bool)
    tp, positives, n_flagged = int((flagged & (y == 1)).sum()), int(y.sum()), int(flagged.sum())
    if len(y):
        g = auroc_by_group(y, s, np.zeros(len(y), dtype=np.int64), 1)
        lo, hi = auroc_interval(g.auroc, g.variance)
        auroc = MetricValue(float(g.auroc[0]), float(lo[0]), float(hi[0]), "DeLong")
    else:
        auroc = _nan_value("DeLong")
    return RealisedPerformance(len(y), positives, auroc, _proportion(tp, positives), _proportion(tp, n_flagged),
                               _observed_expected(y, s))


def _proportion(k: int, n: int) -> MetricValue:
    lo, hi = wilson(np.array([k]), np.array([n]))
    return MetricValue(k / n if n else NAN, float(lo[0]), float(hi[0]), "Wilson")


def _observed_expected(y: np.ndarray, s: np.ndarray) -> MetricValue:
    """O/E with a log-normal interval treating the observed count as Poisson (Riley et al. 2021)."""
    observed, expected = float(y.sum()), float(s.sum())
    if expected <= 0 or len(y) == 0:
        return _nan_value("Poisson")
    ratio = observed / expected
    if observed == 0:
        return MetricValue(0.0, 0.0, NAN, "Poisson")
    half = Z95 * np.sqrt(1.0 / observed)
    return MetricValue(ratio, float(ratio * np.exp(-half)), float(ratio * np.exp(half)), "Poisson")


def subgroup_sensitivity(y_true: np.ndarray, scores: np.ndarray, flagged: np.ndarray,
                         groups: np.ndarray) -> list[tuple[str, int, int, MetricValue, float]]:
    """Per group: (group, patients, positives, realised sensitivity, CBPE-estimated sensitivity).

    Patients without an outcome yet count only towards the estimate (y_true NaN)."""
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(scores, dtype=float)
    flagged = np.asarray(flagged, dtype=bool)
    codes, names = pd.factorize(pd.Series(np.asarray(groups, dtype=str)), sort=True)
    k = len(names)
    positive = ~np.isnan(y) & (y == 1)
    members = np.bincount(codes, minlength=k)
    positives = np.bincount(codes, weights=positive, minlength=k).astype(int)
    caught = np.bincount(codes, weights=positive & flagged, minlength=k).astype(int)
    expected = np.bincount(codes, weights=s, minlength=k)
    expected_caught = np.bincount(codes, weights=s * flagged, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(expected > 0, expected_caught / expected, NAN)
    return [(str(names[g]), int(members[g]), int(positives[g]), _proportion(int(caught[g]), int(positives[g])),
             float(estimate[g])) for g in range(k)]
