"""The vectorised subgroup engine, checked number by number against fairlearn and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, count, selection_rate, true_negative_rate
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from core.metrics.binary import auroc_by_group
from core.metrics.intervals import wilson
from core.metrics.subgroups import subgroup_metrics

TOL = 1e-12


def random_cohort(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame({
        "sex": rng.choice(["female", "male"], n),
        "race": rng.choice(["White", "Black", "Asian", "Other"], n, p=[0.6, 0.2, 0.15, 0.05]),
        "payer": rng.choice(["Medicare", "Medicaid", "Commercial"], n),
    })
    y = (rng.random(n) < 0.15).astype(int)
    score = np.round(np.clip(0.15 + 0.3 * y + rng.normal(0, 0.2, n), 0, 1), 2)  # rounded: many ties
    y[(sensitive["race"] == "Other").to_numpy()] = 0  # a group with no positives at all
    return y, score, sensitive


def _auroc_or_nan(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else float("nan")


def reference(y: np.ndarray, score: np.ndarray, sensitive: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """fairlearn MetricFrame per attribute set, flattened like ModelBoard's by_group."""
    flagged = (score >= threshold).astype(int)
    metrics = {"n": count, "sensitivity": lambda t, p: recall_score(t, p, zero_division=np.nan),
               "specificity": true_negative_rate, "selection_rate": selection_rate,
               "ppv": lambda t, p: precision_score(t, p, zero_division=np.nan)}
    frames = []
    for columns in (["sex"], ["race"], ["payer"], ["sex", "race"], ["sex", "payer"], ["race", "payer"]):
        mf = MetricFrame(metrics=metrics, y_true=y, y_pred=flagged, sensitive_features=sensitive[columns])
        auc = MetricFrame(metrics=_auroc_or_nan, y_true=y, y_pred=score, sensitive_features=sensitive[columns])
        table = mf.by_group.assign(auroc=auc.by_group).reset_index()
        table["group"] = table[columns].astype(str).agg(" / ".join, axis=1)
        table["attribute_set"] = " × ".join(columns)
        frames.append(table.drop(columns=columns))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_group_matches_fairlearn_and_sklearn(seed: int) -> None:
    y, score, sensitive = random_cohort(5_000, seed)
    report = subgroup_metrics(y, score, sensitive_features=sensitive, threshold=0.35, min_n=100)
    ours = report.by_group.set_index(["attribute_set", "group"])
    ref = reference(y, score, sensitive, 0.35).set_index(["attribute_set", "group"])
    assert set(ref.index) <= set(ours.index)
    for metric in ("n", "sensitivity", "specificity", "selection_rate", "ppv", "auroc"):
        mine, theirs = ours.loc[ref.index, metric].to_numpy(float), ref[metric].to_numpy(float)
        assert np.array_equal(np.isnan(mine), np.isnan(theirs)), metric
        assert np.allclose(mine, theirs, atol=TOL, rtol=0, equal_nan=True), metric
    overall = ours.loc[("overall", "all patients")]
    assert overall["auroc"] == pytest.approx(roc_auc_score(y, score), abs=TOL)
    assert overall["sensitivity"] == pytest.approx(recall_score(y, score >= 0.35), abs=TOL)


def test_undefined_is_nan_never_zero_and_small_groups_are_kept() -> None:
    y, score, sensitive = random_cohort(3_000, 4)
    rows = subgroup_metrics(y, score, sensitive_features=sensitive, threshold=0.35, min_n=200).by_group
    other = rows[(rows["attribute_set"] == "race") & (rows["group"] == "Other")].iloc[0]
    assert other["positives"] == 0
    assert np.isnan(other["sensitivity"]) and np.isnan(other["auroc"]) and np.isnan(other["sensitivity_lo"])
    assert other["specificity"] > 0
    assert not other["enough_patients"]  # kept, and marked "too few patients to judge"


def test_gaps_use_fairlearn_between_groups_difference() -> None:
    y, score, sensitive = random_cohort(20_000, 5)
    sensitive = sensitive[["sex", "payer"]]  # every group large enough
    report = subgroup_metrics(y, score, sensitive_features=sensitive, threshold=0.35, min_n=100, pairwise=False)
    mf = MetricFrame(metrics=recall_score, y_true=y, y_pred=score >= 0.35, sensitive_features=sensitive["payer"])
    gap = report.gaps.set_index(["attribute_set", "metric"]).loc[("payer", "sensitivity")]
    assert gap["difference"] == pytest.approx(mf.difference(method="between_groups"), abs=TOL)
    assert gap["ratio"] == pytest.approx(mf.ratio(method="between_groups"), abs=TOL)


def test_threshold_convention_is_greater_or_equal() -> None:
    y = np.array([1, 1, 0, 0])
    score = np.array([0.5, 0.4, 0.5, 0.1])
    rows = subgroup_metrics(y, score, sensitive_features=pd.DataFrame({"a": ["x"] * 4}), threshold=0.5).by_group
    overall = rows.iloc[0]
    assert (overall["tp"], overall["fp"], overall["fn"], overall["tn"]) == (1, 1, 1, 1)
    # Hand-worked AUROC: pairs (0.5,0.5)=½, (0.5,0.1)=1, (0.4,0.5)=0, (0.4,0.1)=1 → 2.5/4.
    assert overall["auroc"] == 0.625


def test_wilson_matches_statsmodels() -> None:
    k = np.array([0, 1, 17, 99, 100])
    n = np.array([10, 10, 40, 100, 100])
    lo, hi = wilson(k, n)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert np.allclose(lo, ref_lo, atol=1e-12) and np.allclose(hi, ref_hi, atol=1e-12)
    assert np.isnan(wilson(np.array([0]), np.array([0]))[0]).all()


def delong_by_definition(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) structural components, computed pair by pair."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(psi.mean()), float(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


def test_delong_variance_matches_the_pairwise_definition() -> None:
    y, score, sensitive = random_cohort(1_500, 6)
    codes = pd.factorize(sensitive["payer"], sort=True)[0].astype(np.int64)
    result = auroc_by_group(y, score, codes, 3)
    for g in range(3):
        auc, var = delong_by_definition(y[codes == g], score[codes == g])
        assert result.auroc[g] == pytest.approx(auc, abs=TOL)
        assert result.variance[g] == pytest.approx(var, rel=1e-9)


def test_labels_must_be_binary() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        subgroup_metrics(np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]),
                         sensitive_features=pd.DataFrame({"a": ["x", "y", "z"]}), threshold=0.5)


def test_cell_bootstrap_matches_resampling_patients() -> None:
    """Multinomial draws of confusion cells = resampling patients within each group."""
    y, score, sensitive = random_cohort(4_000, 7)
    report = subgroup_metrics(y, score, sensitive_features=sensitive[["sex"]], threshold=0.35, pairwise=False,
                              n_bootstrap=2_000)
    female = report.by_group[report.by_group["group"] == "female"].iloc[0]
    mask = (sensitive["sex"] == "female").to_numpy()
    yf, ff = y[mask], score[mask] >= 0.35
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(2_000):
        idx = rng.integers(0, len(yf), len(yf))
        draws.append(np.sum(ff[idx] & (yf[idx] == 1)) / np.sum(yf[idx] == 1))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    assert female["sensitivity_boot_lo"] == pytest.approx(lo, abs=0.01)
    assert female["sensitivity_boot_hi"] == pytest.approx(hi, abs=0.01)
    other = subgroup_metrics(y, score, sensitive_features=sensitive[["race"]], threshold=0.35, pairwise=False,
                             n_bootstrap=50).by_group
    assert np.isnan(other[other["group"] == "Other"].iloc[0]["sensitivity_boot_lo"])


def test_fairlearn_summaries_follow_from_the_grid() -> None:
    """demographic parity and equalized odds differences, as fairlearn computes them, from our by_group."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    y, score, sensitive = random_cohort(8_000, 8)
    flagged = score >= 0.35
    rows = subgroup_metrics(y, score, sensitive_features=sensitive[["payer"]], threshold=0.35,
                            pairwise=False).by_group
    payer = rows[rows["attribute_set"] == "payer"]
    dp = payer["selection_rate"].max() - payer["selection_rate"].min()
    fpr = 1 - payer["specificity"]
    eo = max(payer["sensitivity"].max() - payer["sensitivity"].min(), fpr.max() - fpr.min())
    assert dp == pytest.approx(demographic_parity_difference(y, flagged, sensitive_features=sensitive["payer"]),
                               abs=TOL)
    assert eo == pytest.approx(equalized_odds_difference(y, flagged, sensitive_features=sensitive["payer"]), abs=TOL)


TO_OVERALL = ("sensitivity", "specificity", "selection_rate", "ppv", "auroc")


def fairlearn_frames(y: np.ndarray, score: np.ndarray, sensitive: pd.DataFrame, columns: list[str],
                     threshold: float) -> MetricFrame:
    flagged = (score >= threshold).astype(int)
    metrics = {"n": count, "sensitivity": lambda t, p: recall_score(t, p, zero_division=np.nan),
               "specificity": true_negative_rate, "selection_rate": selection_rate,
               "ppv": lambda t, p: precision_score(t, p, zero_division=np.nan)}
    mf = MetricFrame(metrics=metrics, y_true=y, y_pred=flagged, sensitive_features=sensitive[columns])
    auc = MetricFrame(metrics={"auroc": _auroc_or_nan}, y_true=y, y_pred=score, sensitive_features=sensitive[columns])
    return mf, auc


@pytest.mark.parametrize("columns", [["race"], ["payer"], ["sex", "race"]])
def test_gaps_to_overall_match_fairlearn_when_every_group_counts(columns: list[str]) -> None:
    y, score, sensitive = random_cohort(6_000, 9)
    report = subgroup_metrics(y, score, sensitive_features=sensitive, threshold=0.35, min_n=0)
    gaps = report.gaps.set_index(["attribute_set", "metric"])
    mf, auc = fairlearn_frames(y, score, sensitive, columns, 0.35)
    for metric in TO_OVERALL:
        frame = auc if metric == "auroc" else mf
        row = gaps.loc[(" × ".join(columns), metric)]
        assert row["difference_to_overall"] == pytest.approx(frame.difference(method="to_overall")[metric], abs=TOL)
        assert row["ratio_to_overall"] == pytest.approx(frame.ratio(method="to_overall")[metric], abs=TOL)
        assert row["overall"] == pytest.approx(frame.overall[metric], abs=TOL)
        assert row["difference"] == pytest.approx(frame.difference(method="between_groups")[metric], abs=TOL)
        assert abs(row["furthest_minus_overall"]) == row["difference_to_overall"]


def test_gaps_to_overall_leave_out_groups_below_min_n() -> None:
    y, score, sensitive = random_cohort(6_000, 10)
    report = subgroup_metrics(y, score, sensitive_features=sensitive, threshold=0.35, min_n=400)
    gaps = report.gaps.set_index(["attribute_set", "metric"])
    mf, _ = fairlearn_frames(y, score, sensitive, ["sex", "race"], 0.35)
    by_group = mf.by_group
    by_group.index = [" / ".join(map(str, key)) for key in by_group.index]
    kept = by_group[by_group["n"] >= 400]
    assert 0 < len(kept) < len(by_group)  # the small groups (race "Other") really are left out
    for metric in ("specificity", "selection_rate", "ppv"):
        row = gaps.loc[("sex × race", metric)]
        deviation = (kept[metric] - mf.overall[metric]).abs()
        folded = (kept[metric] / mf.overall[metric]).map(lambda r: 1 / r if r > 1 else r)
        assert row["difference_to_overall"] == pytest.approx(deviation.max(), abs=TOL)
        assert row["ratio_to_overall"] == pytest.approx(folded.min(), abs=TOL)
        assert row["furthest_group"] == deviation.idxmax()
        assert row["furthest_group"] in set(kept.index)
        assert row["difference_to_overall"] < mf.difference(method="to_overall")[metric]  # small groups vary most


@pytest.mark.parametrize("values", [
    ["b", "a", None, "c"], [1.0, 2.0, np.nan], ["x", 1, 1.5, None, "1"], [np.nan, None, "a"],
])
def test_group_codes_match_factorizing_the_strings(values: list[object]) -> None:
    """Grouping factorizes only distinct values; the groups must be those of str() on every row."""
    from core.metrics.grouping import encode

    column = pd.Series(np.random.default_rng(3).choice(np.array(values, dtype=object), 500))
    expected_codes, expected_labels = pd.factorize(column.astype(str), sort=True)
    grouped = encode(pd.DataFrame({"attribute": column}), ("attribute",))
    assert grouped.labels == tuple(expected_labels)
    assert np.array_equal(grouped.codes, expected_codes)
