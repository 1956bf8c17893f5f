"""Calibration overall and per group, checked against statsmodels and scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.calibration import calibration_curve
from statsmodels.stats.proportion import proportion_confint

from core.metrics.calibration import LOGIT_CLIP, calibration, recalibration_by_group
from core.metrics.subgroups import subgroup_metrics

EDGES = np.linspace(0.0, 1.0, 11)  # scikit-learn's uniform bins: [0, .1], (.1, .2], …, (.9, 1]


def demo_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Scores rounded to two decimals (ties, scores on bin edges, exact 0 and 1), three attributes,
    a race group with no positives and a ward of 15 patients with both outcomes, four of whom
    (Black / tiny) have scores that separate the outcome completely."""
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame({
        "sex": rng.choice(["female", "male"], n),
        "race": rng.choice(["White", "Black", "Asian", "Other"], n, p=[0.6, 0.2, 0.15, 0.05]),
        "ward": np.where(np.arange(n) < 15, "tiny", rng.choice(["ICU", "HDU"], n)),
    })
    sensitive.loc[:14, "race"] = "White"  # the tiny ward keeps its positives …
    sensitive.loc[[3, 5, 6, 9], "race"] = "Black"  # … and its Black patients are completely separated
    y = (rng.random(n) < 0.15).astype(int)
    score = np.round(np.clip(0.12 + 0.25 * y + rng.normal(0, 0.2, n), 0, 1), 2)
    y[(sensitive["race"] == "Other").to_numpy()] = 0
    y[:15] = [1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    score[:15] = [0.3, 0.5, 0.2, 0.1, 0.25, 0.6, 0.05, 0.3, 0.15, 0.45, 0.4, 0.1, 0.2, 0.05, 0.35]  # overlapping
    return y, score, sensitive


def ece_from_sklearn_bins(y: np.ndarray, score: np.ndarray) -> float:
    """Σ over non-empty bins of (share of patients) × |observed rate − mean predicted|, from calibration_curve."""
    observed, predicted = calibration_curve(y, score, n_bins=10, strategy="uniform")
    counts = np.array([np.sum((score > lo if i else score >= lo) & (score <= hi))
                       for i, (lo, hi) in enumerate(zip(EDGES[:-1], EDGES[1:], strict=True))])
    counts = counts[counts > 0]
    return float(np.sum(counts / len(y) * np.abs(observed - predicted)))


def statsmodels_fit(y: np.ndarray, score: np.ndarray) -> object:
    p = np.clip(score, LOGIT_CLIP, 1 - LOGIT_CLIP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separated tiny intersections: checked through mle_retvals
        return sm.Logit(y, sm.add_constant(np.log(p / (1 - p)))).fit(disp=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_slope_intercept_and_wald_intervals_match_statsmodels(seed: int) -> None:
    y, score, _ = demo_like(4_000, seed)
    cal = calibration(y, score, n_bootstrap=20)
    ref = statsmodels_fit(y, score)
    (a, b), (se_a, se_b) = ref.params, ref.bse  # type: ignore[attr-defined]
    ci = np.asarray(ref.conf_int(alpha=0.05))  # type: ignore[attr-defined]
    assert (cal.intercept, cal.slope) == pytest.approx((a, b), abs=1e-8)
    assert (cal.intercept_se, cal.slope_se) == pytest.approx((se_a, se_b), rel=1e-7)
    assert (cal.intercept_interval.lo, cal.intercept_interval.hi) == pytest.approx(tuple(ci[0]), abs=1e-7)
    assert (cal.slope_interval.lo, cal.slope_interval.hi) == pytest.approx(tuple(ci[1]), abs=1e-7)
    assert cal.slope_interval.value == cal.slope and cal.slope_interval.method.startswith("Wald")


def test_ece_and_curve_match_sklearn_bins() -> None:
    y, score, _ = demo_like(5_000, 2)
    cal = calibration(y, score, n_bootstrap=20)
    assert cal.expected_calibration_error == pytest.approx(ece_from_sklearn_bins(y, score), abs=1e-12)
    observed, predicted = calibration_curve(y, score, n_bins=10, strategy="uniform")
    assert np.allclose(cal.curve["observed_rate"], observed, atol=1e-12)
    assert np.allclose(cal.curve["mean_predicted"], predicted, atol=1e-12)


def test_ece_interval_is_a_seeded_percentile_bootstrap_over_patients() -> None:
    y, score, _ = demo_like(2_000, 3)
    cal = calibration(y, score, n_bootstrap=40, seed=7)
    rng = np.random.default_rng(7)
    draws = []
    for _ in range(40):
        idx = rng.integers(0, len(y), len(y))
        draws.append(ece_from_sklearn_bins(y[idx], score[idx]))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    assert (cal.ece_interval.lo, cal.ece_interval.hi) == pytest.approx((lo, hi), abs=1e-12)
    assert cal.ece_interval.method == "percentile bootstrap, 40 resamples, seed 7"
    again = calibration(y, score, n_bootstrap=40, seed=7)
    assert (again.ece_interval.lo, again.ece_interval.hi) == (cal.ece_interval.lo, cal.ece_interval.hi)


def test_one_class_has_no_slope_but_an_ece() -> None:
    score = np.linspace(0.05, 0.5, 200)
    cal = calibration(np.zeros(200, dtype=int), score, n_bootstrap=10)
    assert np.isnan(cal.slope) and np.isnan(cal.intercept) and np.isnan(cal.slope_interval.lo)
    assert cal.expected_calibration_error == pytest.approx(ece_from_sklearn_bins(np.zeros(200), score), abs=1e-12)


def test_complete_separation_is_undefined_not_a_huge_slope() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    assert not statsmodels_fit(y, 1 / (1 + np.exp(-x))).mle_retvals["converged"]  # type: ignore[attr-defined]
    fit = recalibration_by_group(y, x, np.zeros(6, dtype=np.int64), 1)
    assert np.isnan(fit.slope[0]) and np.isnan(fit.intercept_se[0])


def _groups(sensitive: pd.DataFrame, attribute_set: str) -> dict[str, np.ndarray]:
    columns = attribute_set.split(" × ")
    labels = sensitive[columns].astype(str).agg(" / ".join, axis=1).to_numpy()
    return {g: labels == g for g in np.unique(labels)}


@pytest.mark.parametrize("seed", [4, 5])
def test_every_group_matches_statsmodels_and_sklearn(seed: int) -> None:
    y, score, sensitive = demo_like(6_000, seed)
    rows = subgroup_metrics(y, score, sensitive_features=sensitive, threshold=0.3, min_n=50,
                            calibration_fit=True).by_group.set_index(["attribute_set", "group"])
    checked = separated = 0
    for attribute_set in ("sex", "race", "ward", "sex × race", "race × ward"):
        for group, mask in _groups(sensitive, attribute_set).items():
            row, yg, sg = rows.loc[(attribute_set, group)], y[mask], score[mask]
            assert row["mean_predicted"] == pytest.approx(sg.mean(), abs=1e-12)
            assert row["ece"] == pytest.approx(ece_from_sklearn_bins(yg, sg), abs=1e-12)
            lo, hi = proportion_confint(yg.sum(), len(yg), alpha=0.05, method="wilson")
            assert row["observed_expected"] == pytest.approx(yg.mean() / sg.mean(), abs=1e-12)
            assert (row["observed_expected_lo"], row["observed_expected_hi"]) == pytest.approx(
                (lo / sg.mean(), hi / sg.mean()), abs=1e-12)
            if len(np.unique(yg)) < 2:
                assert np.isnan(row["calibration_slope"]) and np.isnan(row["calibration_intercept_hi"])
                continue
            ref = statsmodels_fit(yg, sg)
            if not ref.mle_retvals["converged"]:  # type: ignore[attr-defined]
                assert np.isnan(row["calibration_slope"]), (attribute_set, group)  # complete separation
                separated += 1
                continue
            ci = np.asarray(ref.conf_int(alpha=0.05))  # type: ignore[attr-defined]
            assert (row["calibration_intercept"], row["calibration_slope"]) == pytest.approx(
                tuple(ref.params), abs=1e-7)  # type: ignore[attr-defined]
            assert (row["calibration_slope_lo"], row["calibration_slope_hi"]) == pytest.approx(tuple(ci[1]), abs=1e-6)
            assert (row["calibration_intercept_lo"], row["calibration_intercept_hi"]) == pytest.approx(
                tuple(ci[0]), abs=1e-6)
            checked += 1
    assert checked > 10 and separated >= 1
    tiny, other = rows.loc[("ward", "tiny")], rows.loc[("race", "Other")]
    assert tiny["n"] == 15 and not tiny["enough_patients"] and np.isfinite(tiny["calibration_slope"])
    assert other["positives"] == 0 and np.isnan(other["calibration_slope"])
    assert other["observed_expected"] == 0  # no one developed it: observed 0 of expected > 0, a real zero


def test_slope_is_opt_in_and_the_cheap_columns_are_always_there() -> None:
    y, score, sensitive = demo_like(1_000, 6)
    rows = subgroup_metrics(y, score, sensitive_features=sensitive, threshold=0.3).by_group
    assert "calibration_slope" not in rows and {"mean_predicted", "observed_expected", "ece"} <= set(rows)
