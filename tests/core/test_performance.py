"""Overall metrics, calibration and decision curves checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from core.metrics.calibration import calibration
from core.metrics.performance import decision_curve, latency_summary, overall_performance

TOL = 1e-12


def data(n: int = 4_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.12).astype(int)
    score = np.round(np.clip(0.1 + 0.3 * y + rng.normal(0, 0.15, n), 0, 1), 2)
    return y, score


@pytest.mark.parametrize("seed", [0, 1])
def test_point_values_match_sklearn(seed: int) -> None:
    y, score = data(seed=seed)
    flagged = score >= 0.3
    perf = overall_performance(y, score, threshold=0.3, n_bootstrap=50)
    tn, fp, fn, tp = confusion_matrix(y, flagged).ravel()
    assert (perf.tp, perf.fp, perf.fn, perf.tn) == (tp, fp, fn, tn)
    assert perf.auroc.value == pytest.approx(roc_auc_score(y, score), abs=TOL)
    assert perf.auprc.value == pytest.approx(average_precision_score(y, score), abs=TOL)
    assert perf.sensitivity.value == pytest.approx(recall_score(y, flagged), abs=TOL)
    assert perf.specificity.value == pytest.approx(tn / (tn + fp), abs=TOL)
    assert perf.ppv.value == pytest.approx(precision_score(y, flagged), abs=TOL)
    assert perf.npv.value == pytest.approx(tn / (tn + fn), abs=TOL)
    assert perf.f1.value == pytest.approx(f1_score(y, flagged), abs=TOL)
    assert perf.brier.value == pytest.approx(brier_score_loss(y, score), abs=TOL)
    for metric in (perf.auroc, perf.auprc, perf.sensitivity, perf.specificity, perf.ppv, perf.npv, perf.f1,
                   perf.brier):
        assert metric.lo <= metric.value <= metric.hi
    assert (perf.auroc.method, perf.sensitivity.method) == ("DeLong", "Wilson score")
    assert perf.f1.method.startswith("percentile bootstrap, 50 resamples")


def test_bootstrap_is_seeded() -> None:
    y, score = data()
    a = overall_performance(y, score, threshold=0.3, n_bootstrap=30, seed=1)
    b = overall_performance(y, score, threshold=0.3, n_bootstrap=30, seed=1)
    c = overall_performance(y, score, threshold=0.3, n_bootstrap=30, seed=2)
    assert (a.f1.lo, a.f1.hi) == (b.f1.lo, b.f1.hi)
    assert (a.f1.lo, a.f1.hi) != (c.f1.lo, c.f1.hi)


def test_undefined_metrics_are_nan() -> None:
    y = np.zeros(50, dtype=int)
    score = np.linspace(0, 1, 50)
    perf = overall_performance(y, score, threshold=0.5, n_bootstrap=10)
    assert np.isnan(perf.sensitivity.value) and np.isnan(perf.auroc.value) and np.isnan(perf.auprc.value)
    assert perf.specificity.value == pytest.approx(25 / 50)


def test_calibration_matches_sklearn() -> None:
    y, score = data(seed=3)
    cal = calibration(y, score, bins=10)
    observed, predicted = calibration_curve(y, score, n_bins=10, strategy="uniform")
    assert np.allclose(cal.curve["observed_rate"], observed, atol=1e-12)
    assert np.allclose(cal.curve["mean_predicted"], predicted, atol=1e-12)
    p = np.clip(score, 1e-6, 1 - 1e-6)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(np.log(p / (1 - p))[:, None], y)
    assert cal.slope == pytest.approx(reference.coef_[0][0], abs=1e-5)
    assert cal.intercept == pytest.approx(reference.intercept_[0], abs=1e-5)


def test_a_calibrated_model_looks_calibrated() -> None:
    rng = np.random.default_rng(4)
    score = rng.uniform(0.01, 0.99, 50_000)
    y = (rng.random(50_000) < score).astype(int)
    cal = calibration(y, score)
    assert cal.slope == pytest.approx(1.0, abs=0.05) and cal.intercept == pytest.approx(0.0, abs=0.05)
    assert cal.expected_calibration_error < 0.02


def test_decision_curve_by_the_formula() -> None:
    y = np.array([1, 1, 0, 0, 0, 1])
    score = np.array([0.9, 0.4, 0.4, 0.2, 0.1, 0.05])
    curve = decision_curve(y, score, np.array([0.3, 0.5])).set_index("threshold")
    # t=0.3: flagged 0.9, 0.4, 0.4 → TP 2, FP 1; NB = 2/6 − 1/6 · 0.3/0.7
    assert curve.loc[0.3, "net_benefit_model"] == pytest.approx(2 / 6 - 1 / 6 * 0.3 / 0.7)
    assert curve.loc[0.5, "net_benefit_model"] == pytest.approx(1 / 6)
    assert curve.loc[0.5, "net_benefit_treat_all"] == pytest.approx(0.5 - 0.5 * 1.0)
    y2, s2 = data(seed=5)
    full = decision_curve(y2, s2)
    for t in (0.05, 0.25, 0.6):
        flagged = s2 >= t
        tp, fp = np.sum(flagged & (y2 == 1)), np.sum(flagged & (y2 == 0))
        expected = tp / len(y2) - fp / len(y2) * t / (1 - t)
        assert full.loc[np.isclose(full["threshold"], t), "net_benefit_model"].item() == pytest.approx(expected)


def test_latency_summary() -> None:
    summary = latency_summary(np.array([0.001, 0.002, 0.003, 0.004, 0.010]))
    assert summary["median_ms"] == pytest.approx(3.0)
    assert summary["p95_ms"] == pytest.approx(float(np.percentile([1, 2, 3, 4, 10], 95)))
    assert isinstance(pd.DataFrame([summary]), pd.DataFrame)
