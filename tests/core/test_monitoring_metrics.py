"""Window performance for monitoring: realised metrics against scikit-learn, CBPE against simulated outcomes.

Every expected number here comes from an independent computation (scikit-learn,
a quadratic solved with numpy, a brute-force DeLong), never from the module itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from core.metrics.monitoring import estimated_performance, realised_performance, subgroup_sensitivity

Z = norm.ppf(0.975)
THRESHOLD = 0.3


def _labelled_window(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Scores that separate the classes imperfectly, rounded so that ties occur."""
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.15, n)
    scores = np.clip(rng.normal(0.2 + 0.2 * y, 0.15), 0.0, 1.0).round(2)
    return y, scores


def _wilson_by_quadratic(k: int, n: int) -> tuple[float, float]:
    """Wilson's interval is the set of p with (k/n − p)² ≤ z² p (1 − p) / n: the roots of a quadratic."""
    phat, c = k / n, Z * Z / n
    roots = np.sort(np.roots([1 + c, -(2 * phat + c), phat * phat]).real)
    return float(roots[0]), float(roots[1])


def _delong_brute_force(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """AUROC and DeLong variance from the full positive × negative comparison matrix."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(psi.mean()), float(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


# --- realised performance ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_realised_point_estimates_match_scikit_learn(seed: int) -> None:
    y, scores = _labelled_window(seed)
    flagged = scores >= THRESHOLD
    perf = realised_performance(y, scores, flagged)
    assert (perf.labelled, perf.positives) == (len(y), int(y.sum()))
    assert perf.auroc.value == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert perf.sensitivity.value == pytest.approx(recall_score(y, flagged), abs=1e-12)
    assert perf.ppv.value == pytest.approx(precision_score(y, flagged), abs=1e-12)
    assert perf.observed_expected.value == pytest.approx(y.mean() / scores.mean(), rel=1e-12)
    assert (perf.auroc.method, perf.sensitivity.method, perf.ppv.method) == ("DeLong", "Wilson", "Wilson")


def test_realised_wilson_intervals_match_the_direct_formula() -> None:
    y, scores = _labelled_window(4)
    flagged = scores >= THRESHOLD
    perf = realised_performance(y, scores, flagged)
    tp = int((flagged & (y == 1)).sum())
    for metric, trials in ((perf.sensitivity, int(y.sum())), (perf.ppv, int(flagged.sum()))):
        assert metric.lo < metric.value < metric.hi
        lo, hi = _wilson_by_quadratic(tp, trials)
        assert (metric.lo, metric.hi) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))


def test_realised_auroc_interval_is_delong_around_the_value() -> None:
    y, scores = _labelled_window(5, n=600)
    perf = realised_performance(y, scores, scores >= THRESHOLD)
    auc, variance = _delong_brute_force(y, scores)
    half = Z * math.sqrt(variance)
    assert perf.auroc.lo < perf.auroc.value < perf.auroc.hi
    assert perf.auroc.value == pytest.approx(auc, abs=1e-12)
    assert (perf.auroc.lo, perf.auroc.hi) == (pytest.approx(auc - half, abs=1e-9), pytest.approx(auc + half, abs=1e-9))


def test_observed_expected_interval_is_log_normal_on_the_observed_count() -> None:
    y, scores = _labelled_window(6)
    oe = realised_performance(y, scores, scores >= THRESHOLD).observed_expected
    ratio, observed = y.mean() / scores.mean(), y.sum()
    assert oe.lo < oe.value < oe.hi
    assert oe.lo == pytest.approx(ratio * math.exp(-Z / math.sqrt(observed)), rel=1e-9)
    assert oe.hi == pytest.approx(ratio * math.exp(Z / math.sqrt(observed)), rel=1e-9)


def test_no_positives_leaves_auroc_and_sensitivity_undefined_not_zero() -> None:
    scores = np.linspace(0.05, 0.6, 200)
    flagged = scores >= THRESHOLD
    perf = realised_performance(np.zeros(200, dtype=int), scores, flagged)
    assert perf.positives == 0
    assert math.isnan(perf.auroc.value) and math.isnan(perf.sensitivity.value)
    assert math.isnan(perf.sensitivity.lo) and math.isnan(perf.sensitivity.hi)
    assert perf.ppv.value == 0.0  # flagged patients exist, none of them positive
    assert perf.ppv.hi == pytest.approx(_wilson_by_quadratic(0, int(flagged.sum()))[1], abs=1e-9)
    assert perf.observed_expected.value == 0.0


def test_an_empty_window_does_not_crash() -> None:
    empty = np.array([], dtype=float)
    perf = realised_performance(empty, empty, empty.astype(bool))
    assert (perf.labelled, perf.positives) == (0, 0)
    for metric in (perf.auroc, perf.sensitivity, perf.ppv, perf.observed_expected):
        assert math.isnan(metric.value)
    estimate = estimated_performance(empty, empty.astype(bool))
    assert all(math.isnan(v) for v in (estimate.auroc, estimate.sensitivity, estimate.ppv, estimate.expected_rate))


# --- CBPE --------------------------------------------------------------------------------------------------------

def test_cbpe_is_the_probability_weighted_confusion_matrix() -> None:
    """Each patient is a positive with weight p and a negative with weight 1 − p: scikit-learn with those
    weights gives the expected ROC curve and confusion matrix exactly, ties included."""
    rng = np.random.default_rng(11)
    p = rng.beta(2, 8, 5000).round(2)
    flagged = p >= THRESHOLD
    estimate = estimated_performance(p, flagged)
    labels = np.r_[np.ones(len(p)), np.zeros(len(p))]
    weights = np.r_[p, 1 - p]
    assert estimate.auroc == pytest.approx(roc_auc_score(labels, np.r_[p, p], sample_weight=weights), abs=1e-9)
    assert estimate.sensitivity == pytest.approx(
        recall_score(labels, np.r_[flagged, flagged], sample_weight=weights), abs=1e-12)
    assert estimate.ppv == pytest.approx(
        precision_score(labels, np.r_[flagged, flagged], sample_weight=weights), abs=1e-12)
    assert estimate.expected_rate == pytest.approx(p.mean(), abs=1e-12)


def _simulate(seed: int, n: int = 200_000) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return rng.beta(2, 8, n), rng


def test_cbpe_recovers_realised_performance_when_scores_are_calibrated() -> None:
    p, rng = _simulate(21)
    y = rng.binomial(1, p)  # calibrated by construction: P(y = 1 | p) = p
    flagged = p >= THRESHOLD
    estimate = estimated_performance(p, flagged)
    assert estimate.auroc == pytest.approx(roc_auc_score(y, p), abs=0.01)
    assert estimate.sensitivity == pytest.approx(recall_score(y, flagged), abs=0.01)
    assert estimate.ppv == pytest.approx(precision_score(y, flagged), abs=0.01)
    assert estimate.expected_rate == pytest.approx(y.mean(), abs=0.005)


def test_cbpe_is_only_as_good_as_calibration() -> None:
    """Outcomes drawn with probability p² (the model over-predicts): the estimate no longer describes reality."""
    p, rng = _simulate(22)
    y = rng.binomial(1, p ** 2)
    flagged = p >= THRESHOLD
    estimate = estimated_performance(p, flagged)
    realised = realised_performance(y, p, flagged)
    assert realised.sensitivity.value - estimate.sensitivity > 0.15  # high-risk patients carry more of the outcomes
    assert not realised.sensitivity.lo <= estimate.sensitivity <= realised.sensitivity.hi
    assert estimate.expected_rate - y.mean() > 0.1
    assert realised.observed_expected.hi < 0.5  # the realised O/E is what gives the miscalibration away


# --- subgroups ---------------------------------------------------------------------------------------------------

def test_subgroup_sensitivity_per_group_and_unlabelled_patients_only_in_the_estimate() -> None:
    rng = np.random.default_rng(31)
    n = 4000
    groups = rng.choice(np.array(["male", "female", "unknown"]), n, p=[0.5, 0.45, 0.05])
    y = rng.binomial(1, 0.2, n).astype(float)
    scores = np.clip(rng.normal(0.2 + 0.25 * y, 0.15), 0.0, 1.0)
    unlabelled = rng.random(n) < 0.3
    scores[unlabelled] = rng.uniform(0.5, 1.0, unlabelled.sum())  # awaiting outcomes, all high risk and flagged
    y[unlabelled] = np.nan
    flagged = scores >= THRESHOLD

    rows = subgroup_sensitivity(y, scores, flagged, groups)
    assert [r[0] for r in rows] == ["female", "male", "unknown"]
    for group, patients, positives, sensitivity, estimate in rows:
        member = groups == group
        known = member & ~unlabelled
        assert patients == int(member.sum())
        assert positives == int((y[known] == 1).sum())
        assert sensitivity.value == pytest.approx(recall_score(y[known].astype(int), flagged[known]), abs=1e-12)
        assert sensitivity.lo < sensitivity.value < sensitivity.hi
        k = int((flagged[known] & (y[known] == 1)).sum())
        lo, hi = _wilson_by_quadratic(k, positives)
        assert (sensitivity.lo, sensitivity.hi) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))
        # the CBPE estimate uses every member, labelled or not
        assert estimate == pytest.approx(scores[member & flagged].sum() / scores[member].sum(), abs=1e-12)
        labelled_only = scores[known & flagged].sum() / scores[known].sum()
        assert abs(estimate - labelled_only) > 0.01


def test_a_group_without_positives_has_no_realised_sensitivity() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, np.nan])
    scores = np.array([0.9, 0.1, 0.2, 0.4, 0.1, 0.2, 0.8])
    groups = np.array(["b", "b", "b", "a", "a", "a", "a"])
    rows = subgroup_sensitivity(y, scores, scores >= THRESHOLD, groups)
    (a, n_a, pos_a, sens_a, est_a), (b, n_b, pos_b, sens_b, est_b) = rows
    assert (a, n_a, pos_a, b, n_b, pos_b) == ("a", 4, 0, "b", 3, 2)
    assert math.isnan(sens_a.value)
    assert est_a == pytest.approx((0.4 + 0.8) / (0.4 + 0.1 + 0.2 + 0.8))
    assert sens_b.value == 0.5 and est_b == pytest.approx(0.9 / 1.2)
