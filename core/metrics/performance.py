"""Overall performance at the use-case threshold, calibration and decision curves.

Intervals: Wilson score for proportions, DeLong for AUROC, and a seeded
percentile bootstrap for AUPRC, F1 and the Brier score (no closed form).
A metric a data set cannot define (e.g. no positives) is NaN, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.metrics.binary import auroc_by_group, confusion_by_group
from core.metrics.intervals import auroc_interval, wilson

BOOTSTRAP_SEED = 20261124


@dataclass(frozen=True)
class MetricValue:
    value: float
    lo: float
    hi: float
    method: str


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
    return {k: _percentiles(np.asarray(v)) for k, v in draws.items()}


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


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


@dataclass(frozen=True)
class Calibration:
    expected_calibration_error: float
    slope: float
    intercept: float
    curve: pd.DataFrame  # mean_predicted, observed_rate, count per non-empty bin


def _logistic_recalibration(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Fit outcome ~ a + b·logit(score) by Newton–Raphson (maximum likelihood)."""
    p = np.clip(score, 1e-6, 1 - 1e-6)
    x = np.log(p / (1 - p))
    design = np.column_stack([np.ones_like(x), x])
    beta = np.array([0.0, 1.0])
    for _ in range(50):
        mu = 1 / (1 + np.exp(-(design @ beta)))
        gradient = design.T @ (y - mu)
        hessian = design.T @ (design * (mu * (1 - mu))[:, None])
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    return float(beta[1]), float(beta[0])


def calibration(y_true: np.ndarray, y_score: np.ndarray, *, bins: int = 10) -> Calibration:
    """When the model says 20 %, do about 20 % develop the outcome? ECE, slope, intercept, curve."""
    y = np.asarray(y_true).astype(float)
    score = np.asarray(y_score, dtype=float)
    # Same bins as scikit-learn's calibration_curve(strategy="uniform"): a score on an edge
    # belongs to the lower bin, and 1.0 to the last one.
    edges = np.linspace(0.0, 1.0 + 1e-8, bins + 1)
    which = np.searchsorted(edges[1:-1], score)
    count = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=score, minlength=bins)
    observed = np.bincount(which, weights=y, minlength=bins)
    kept = count > 0
    curve = pd.DataFrame({"mean_predicted": predicted[kept] / count[kept],
                          "observed_rate": observed[kept] / count[kept], "count": count[kept]})
    ece = float(np.sum(np.abs(curve["mean_predicted"] - curve["observed_rate"]) * curve["count"]) / len(y))
    if len(np.unique(y)) < 2:
        return Calibration(ece, float("nan"), float("nan"), curve)
    slope, intercept = _logistic_recalibration(y, score)
    return Calibration(ece, slope, intercept, curve)


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
