"""Calibration: when the model says 20 %, do about 20 % develop the outcome? Overall and per group.

One binning (scikit-learn's calibration_curve, strategy="uniform") and one
recalibration fit, outcome ~ a + b·logit(score) by Newton–Raphson, written once
for many groups: every sum the fit needs is a bincount over group codes, and each
group's 2×2 Newton system is solved in closed form. One group is the overall fit.

Intervals (95 %): expected calibration error by seeded percentile bootstrap over
patients; slope and intercept by Wald, from the inverse Hessian of the fit;
observed/expected by Wilson bounds on the observed rate divided by the mean
predicted risk (which is treated as fixed). A group with one class only, or whose
fit does not converge (complete separation), has no slope or intercept: NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from core.metrics.bootstrap import SEED
from core.metrics.intervals import Z95, MetricValue, percentile_interval, wilson

LOGIT_CLIP = 1e-6  # scores of exactly 0 or 1 would have an infinite logit
MAX_ITER = 50
STEP_TOL = 1e-10
FIT_METHOD = "Wald, from the inverse Hessian of the maximum-likelihood logistic recalibration fit"
OBSERVED_EXPECTED_METHOD = "Wilson interval of the observed rate, divided by the mean predicted risk"
ECE_GROUP_METHOD = "point estimate, 10 equal-width risk bins (as scikit-learn's calibration_curve)"


def uniform_bins(score: np.ndarray, bins: int = 10) -> np.ndarray:
    """Each score's bin, as scikit-learn's calibration_curve(strategy="uniform") assigns it.

    A score on an inner edge belongs to the lower bin, and 1.0 to the last one.
    """
    return np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], score)


def clipped_logit(score: np.ndarray) -> np.ndarray:
    """log(p / (1 − p)) with p kept within [1e-6, 1 − 1e-6], so that scores of 0 and 1 stay finite."""
    p = np.clip(np.asarray(score, dtype=float), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.asarray(np.log(p / (1 - p)))


@dataclass(frozen=True)
class RecalibrationFit:
    """Intercept and slope of outcome ~ a + b·logit(score) per group, with standard errors (NaN if undefined)."""

    intercept: np.ndarray
    slope: np.ndarray
    intercept_se: np.ndarray
    slope_se: np.ndarray


def _newton_sums(y: np.ndarray, x: np.ndarray, codes: np.ndarray, a: np.ndarray, b: np.ndarray,
                 n_groups: int) -> tuple[np.ndarray, ...]:
    """Per group: the score vector (g0, g1) and the information matrix (h00, h01, h11)."""
    mu = expit(a[codes] + b[codes] * x)
    residual, weight = y - mu, mu * (1.0 - mu)
    wx = weight * x
    return tuple(np.bincount(codes, weights=w, minlength=n_groups)
                 for w in (residual, residual * x, weight, wx, wx * x))


def recalibration_by_group(y: np.ndarray, x: np.ndarray, codes: np.ndarray, n_groups: int,
                           *, start: tuple[float, float] = (0.0, 1.0)) -> RecalibrationFit:
    """Maximum-likelihood logistic recalibration of every group at once (x = logit of the score).

    Rows of groups that have converged (or cannot be fitted) are dropped from
    later iterations, so one slow group never costs a pass over everyone.
    """
    codes = codes.astype(np.intp)
    n = np.bincount(codes, minlength=n_groups)
    positives = np.bincount(codes, weights=y, minlength=n_groups)
    active = (positives > 0) & (positives < n)  # the maximum-likelihood fit needs both classes
    a, b = np.full(n_groups, start[0]), np.full(n_groups, start[1])
    variance = np.full((2, n_groups), np.nan)
    yf, xf, cf = np.asarray(y, dtype=float), x, codes
    if not active.all():
        keep = active[codes]
        yf, xf, cf = yf[keep], xf[keep], cf[keep]
    for _ in range(MAX_ITER):
        if not active.any():
            break
        g0, g1, h00, h01, h11 = _newton_sums(yf, xf, cf, a, b, n_groups)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            det = h00 * h11 - h01 * h01
            da, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
            step = np.maximum(np.abs(da), np.abs(db))
            a, b = np.where(active, a + da, a), np.where(active, b + db, b)
            done = active & (step < STEP_TOL)
            variance[:, done] = np.stack([h11 / det, h00 / det])[:, done]
        failed = active & ~np.isfinite(step)
        if (done | failed).any():
            active &= ~(done | failed)
            keep = active[cf]
            yf, xf, cf = yf[keep], xf[keep], cf[keep]
    fitted = ~np.isnan(variance[0])
    return RecalibrationFit(np.where(fitted, a, np.nan), np.where(fitted, b, np.nan),
                            np.sqrt(variance[0]), np.sqrt(variance[1]))


def ece_by_group(residual: np.ndarray, which_bin: np.ndarray, codes: np.ndarray, n: np.ndarray,
                 bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected calibration error per group (n: patients per group) from one bincount over group × bin.

    ECE = Σ_bins count·|mean predicted − observed rate| / n = Σ_bins |Σ (score − outcome)| / n,
    so `residual` (score − outcome per patient) is all it needs. Also returns Σ residual per group.
    """
    key = codes.astype(np.intp)
    key *= bins
    key += which_bin
    sums = np.bincount(key, weights=residual, minlength=len(n) * bins).reshape(len(n), bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        ece = np.where(n > 0, np.abs(sums).sum(axis=1) / n, np.nan)
    return ece, sums.sum(axis=1)


@dataclass(frozen=True)
class GroupCalibrationInputs:
    """Per-patient arrays every attribute set shares: computed once per subgroup report."""

    y: np.ndarray
    bins: int
    which_bin: np.ndarray
    residual: np.ndarray  # score − outcome
    logit: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, score: np.ndarray, bins: int = 10) -> GroupCalibrationInputs:
        return cls(y, bins, uniform_bins(score, bins), score - y, clipped_logit(score))


def calibration_by_group(codes: np.ndarray, n: np.ndarray, positives: np.ndarray, inputs: GroupCalibrationInputs,
                         *, fit: bool, start: tuple[float, float] = (0.0, 1.0)) -> dict[str, np.ndarray]:
    """Columns of per-group calibration (n, positives: counts per group): mean predicted risk,
    observed/expected with CI, ECE, and (with `fit`) calibration slope and intercept with Wald CIs."""
    n, positives = np.asarray(n, dtype=float), np.asarray(positives, dtype=float)
    ece, residual_sum = ece_by_group(inputs.residual, inputs.which_bin, codes, n, inputs.bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = np.where(n > 0, (residual_sum + positives) / n, np.nan)
        expected = np.where(predicted > 0, predicted, np.nan)
        low, high = wilson(positives, n)
        out = {"mean_predicted": predicted, "observed_expected": positives / n / expected,
               "observed_expected_lo": low / expected, "observed_expected_hi": high / expected, "ece": ece}
    if fit:
        result = recalibration_by_group(inputs.y, inputs.logit, codes, len(n), start=start)
        for name, value, se in (("calibration_slope", result.slope, result.slope_se),
                                ("calibration_intercept", result.intercept, result.intercept_se)):
            out |= {name: value, f"{name}_lo": value - Z95 * se, f"{name}_hi": value + Z95 * se}
    return out


@dataclass(frozen=True)
class Calibration:
    """Overall calibration. The first four fields are what older evaluations stored."""

    expected_calibration_error: float
    slope: float
    intercept: float
    curve: pd.DataFrame  # mean_predicted, observed_rate, count per non-empty bin
    ece_interval: MetricValue
    slope_interval: MetricValue
    intercept_interval: MetricValue
    slope_se: float
    intercept_se: float
    bins: int


def _curve(y: np.ndarray, score: np.ndarray, which: np.ndarray, bins: int) -> pd.DataFrame:
    count = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=score, minlength=bins)
    observed = np.bincount(which, weights=y, minlength=bins)
    kept = count > 0
    return pd.DataFrame({"mean_predicted": predicted[kept] / count[kept],
                         "observed_rate": observed[kept] / count[kept], "count": count[kept]})


def _ece_bootstrap(residual: np.ndarray, which: np.ndarray, bins: int, n_bootstrap: int,
                   seed: int) -> tuple[float, float]:
    """Percentile interval of the ECE over patients resampled with replacement (fixed seed)."""
    rng = np.random.default_rng(seed)
    n = len(residual)
    draws = np.empty(n_bootstrap)
    for i in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        draws[i] = np.abs(np.bincount(which[idx], weights=residual[idx], minlength=bins)).sum() / n
    return percentile_interval(draws)


def calibration(y_true: np.ndarray, y_score: np.ndarray, *, bins: int = 10, n_bootstrap: int = 200,
                seed: int = SEED) -> Calibration:
    """When the model says 20 %, do about 20 % develop the outcome? ECE, slope and intercept with
    95 % intervals, and the reliability curve."""
    y = np.asarray(y_true).astype(float)
    score = np.asarray(y_score, dtype=float)
    which = uniform_bins(score, bins)
    zeros = np.zeros(len(y), dtype=np.intp)
    ece = float(ece_by_group(score - y, which, zeros, np.array([len(y)]), bins)[0][0])
    ece_lo, ece_hi = _ece_bootstrap(score - y, which, bins, n_bootstrap, seed) if len(y) else (np.nan, np.nan)
    fit = recalibration_by_group(y, clipped_logit(score), zeros, 1)
    slope, intercept = float(fit.slope[0]), float(fit.intercept[0])
    slope_se, intercept_se = float(fit.slope_se[0]), float(fit.intercept_se[0])
    return Calibration(
        ece, slope, intercept, _curve(y, score, which, bins),
        ece_interval=MetricValue(ece, ece_lo, ece_hi,
                                 f"percentile bootstrap, {n_bootstrap} resamples, seed {seed}"),
        slope_interval=MetricValue(slope, slope - Z95 * slope_se, slope + Z95 * slope_se, FIT_METHOD),
        intercept_interval=MetricValue(intercept, intercept - Z95 * intercept_se, intercept + Z95 * intercept_se,
                                       FIT_METHOD),
        slope_se=slope_se, intercept_se=intercept_se, bins=bins)
