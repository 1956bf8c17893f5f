"""Confidence intervals: Wilson score for proportions, DeLong for AUROC (both analytic).

Analytic intervals cost nothing on large grids and are what DOMAIN.md lists;
bootstrap intervals live beside them for metrics without a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

Z95 = float(norm.ppf(0.975))


@dataclass(frozen=True)
class MetricValue:
    """A point estimate with its 95 % interval and how the interval was computed."""

    value: float
    lo: float
    hi: float
    method: str


def wilson(successes: np.ndarray, trials: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for successes/trials; NaN where there are no trials."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    empty = n == 0
    return np.where(empty, np.nan, centre - half), np.where(empty, np.nan, centre + half)


def auroc_interval(auroc: np.ndarray, variance: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """DeLong normal interval, clipped to [0, 1]."""
    half = z * np.sqrt(np.asarray(variance, dtype=float))
    return np.clip(auroc - half, 0.0, 1.0), np.clip(auroc + half, 0.0, 1.0)


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """2.5th and 97.5th percentiles of bootstrap draws, ignoring draws that could not define the metric."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)
