"""Overall performance at the use-case threshold and decision curves (calibration: calibration.py).

Intervals: Wilson score for proportions, DeLong for AUROC, and a seeded
percentile bootstrap for AUPRC, F1 and the Brier score (no closed form).
A metric a data set cannot define (e.g. no positives) is NaN, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.metrics.binary import auroc_by_group, confusion_by_group
from core.metrics.intervals import MetricValue, auroc_interval, percentile_interval, wilson

BOOTSTRAP_SEED = 20261124


@dataclass(frozen=True)
class OverallPerformance:
    n: int
    tp: int
    fp: int
    fn: int
    tn: int
    prevalence: float
    alerts_per_100: float
    auroc: MetricValue
    auprc: MetricValue
    sensitivity: MetricValue
    specificity: MetricValue
    ppv: MetricValue
    npv: MetricValue
    f1: MetricValue
    brier: MetricValue


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Step-wise average precision, as scikit-learn computes it (ties share a threshold)."""
    positives = y.sum()
    if positives == 0:
        return float("nan")
    order = np.argsort(-score, kind="stable")
    s, t = score[order], y[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(t)[last_of_tie]
    fp = np.cumsum(1 - t)[last_of_tie]
    precision = tp / (tp + fp)
    recall_step = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(precision * recall_step))


def _f1(tp: float, fp: float, fn: float) -> float:
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _bootstrap(y: np.ndarray, score: np.ndarray, threshold: float, n_bootstrap: int,
               seed: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    flagged = score >= threshold
    draws: dict[str, list[float]] = {"auprc": [], "f1": [], "brier": []}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(y), len(y))
        yb, sb, fb = y[idx], score[idx], flagged[idx]
        tp, fp = float(np.sum(fb & (yb == 1))), float(np.sum(fb & (yb == 0)))
        fn = float(np.sum(~fb & (yb == 1)))
        draws["auprc"].append(average_precision(yb, sb))
        draws["f1"].append(_f1(tp, fp, fn))
        draws["brier"].append(float(np.mean((sb - yb) ** 2)))
    return {k: percentile_interval(np.asarray(v)) for k, v in draws.items()}


def overall_performance(y_true: np.ndarray, y_score: np.ndarray, *, threshold: float, n_bootstrap: int = 200,
                        seed: int = BOOTSTRAP_SEED) -> OverallPerformance:
    """Every headline metric at `threshold` (flagged when score >= threshold), with 95 % intervals."""
    y = np.asarray(y_true).astype(np.int64)
    score = np.asarray(y_score, dtype=float)
    zeros = np.zeros(len(y), dtype=np.int64)
    c = confusion_by_group(y, score >= threshold, zeros, 1)
    tp, fp, fn, tn = (int(x[0]) for x in (c.tp, c.fp, c.fn, c.tn))
    auc = auroc_by_group(y, score, zeros, 1)
    auc_lo, auc_hi = auroc_interval(auc.auroc, auc.variance)
    boot = _bootstrap(y, score, threshold, n_bootstrap, seed)
    boot_method = f"percentile bootstrap, {n_bootstrap} resamples, seed {seed}"

    def proportion(k: int, n: int) -> MetricValue:
        lo, hi = wilson(np.array([k]), np.array([n]))
        return MetricValue(_ratio(k, n), float(lo[0]), float(hi[0]), "Wilson score")

    return OverallPerformance(
        n=len(y), tp=tp, fp=fp, fn=fn, tn=tn, prevalence=_ratio(tp + fn, len(y)),
        alerts_per_100=100 * _ratio(tp + fp, len(y)),
        auroc=MetricValue(float(auc.auroc[0]), float(auc_lo[0]), float(auc_hi[0]), "DeLong"),
        auprc=MetricValue(average_precision(y, score), *boot["auprc"], boot_method),
        sensitivity=proportion(tp, tp + fn), specificity=proportion(tn, tn + fp),
        ppv=proportion(tp, tp + fp), npv=proportion(tn, tn + fn),
        f1=MetricValue(_f1(tp, fp, fn), *boot["f1"], boot_method),
        brier=MetricValue(float(np.mean((score - y) ** 2)) if len(y) else float("nan"), *boot["brier"],
                          boot_method),
    )


def decision_curve(y_true: np.ndarray, y_score: np.ndarray, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Net benefit of acting on the model vs treating all or none (Vickers & Elkin 2006)."""
    y = np.asarray(y_true).astype(np.int64)
    score = np.asarray(y_score, dtype=float)
    t = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else np.asarray(thresholds, dtype=float)
    n, prevalence = len(y), float(np.mean(y))
    order = np.sort(score)
    pos_scores = np.sort(score[y == 1])
    flagged = n - np.searchsorted(order, t, side="left")
    tp = len(pos_scores) - np.searchsorted(pos_scores, t, side="left")
    fp = flagged - tp
    odds = t / (1 - t)
    return pd.DataFrame({"threshold": t, "net_benefit_model": tp / n - fp / n * odds,
                         "net_benefit_treat_all": prevalence - (1 - prevalence) * odds,
                         "net_benefit_treat_none": np.zeros(len(t))})


def latency_summary(per_row_seconds: np.ndarray) -> dict[str, float]:
    values = np.asarray(per_row_seconds, dtype=float)
    return {"median_ms": float(np.median(values) * 1000), "p95_ms": float(np.percentile(values, 95) * 1000)}
