"""The drift engine, checked column by column against evidently 0.7's own DataDriftPreset report."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from core.metrics.drift import DataDriftResult, column_drift, data_drift, population_stability_index
from data.cohort import FEATURES, generate_icu_cohort

REL = 1e-9


@dataclass(frozen=True)
class Evidently:
    columns: dict[str, tuple[str, float, bool]]  # column: (method, score, drifted)
    share: float
    dataset_drift: bool


def evidently_report(reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str], categorical: list[str],
                     drift_share: float = 0.5) -> Evidently:
    """evidently's per-column method, score and test status, and its dataset decision (current first)."""
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    listed = numerical + categorical  # evidently would also infer and test any other column (ids as text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True).run(
            Dataset.from_pandas(current[listed], data_definition=definition),
            Dataset.from_pandas(reference[listed], data_definition=definition)).dict()
    by_id = {m["id"]: m for m in snapshot["metrics"]}
    columns, share, dataset_drift = {}, math.nan, False
    for test in snapshot["tests"]:
        metric = by_id[test["metric_config"]["metric_id"]]
        if metric["config"]["type"].endswith("ValueDrift"):
            columns[metric["config"]["column"]] = (metric["config"]["method"], float(metric["value"]),
                                                   test["status"] == "FAIL")
        else:  # DriftedColumnsCount: its test "share < drift_share" fails when the dataset drifts
            share, dataset_drift = float(metric["value"]["share"]), test["status"] == "FAIL"
    return Evidently(columns, share, dataset_drift)


def assert_same(ours: DataDriftResult, theirs: Evidently) -> None:
    assert set(ours.columns["column"]) == set(theirs.columns)
    for row in ours.columns.itertuples():
        method, score, drifted = theirs.columns[row.column]
        assert (row.column, row.method) == (row.column, method)
        assert row.score == pytest.approx(score, rel=REL, abs=1e-300), row.column
        assert (row.column, row.drifted) == (row.column, drifted)
    assert ours.share_drifted == pytest.approx(theirs.share)
    assert ours.dataset_drift == theirs.dataset_drift


def mixed_frame(n: int, seed: int, *, shift: bool) -> pd.DataFrame:
    """Every kind of column evidently distinguishes; with `shift`, `shifted` and `cat3` move."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "shifted": rng.normal(0.5 if shift else 0.0, 1.0, n),
        "stable": rng.normal(0.0, 1.0, n),
        "few_values": rng.integers(0, 4, n).astype(float),  # ≤ 5 distinct: treated as categories
        "binary_num": rng.integers(0, 2, n).astype(float),
        "six_values": rng.integers(0, 6, n).astype(float),  # 6 distinct: a continuous method
        "constant_num": np.full(n, 7.0),
        "cat3": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1] if shift else [0.34, 0.33, 0.33]),
        "binary_cat": rng.choice(["no", "yes"], n),
        "constant_cat": np.full(n, "same", dtype=object),
    })
    frame.loc[rng.random(n) < 0.02, "stable"] = np.nan  # missing values are dropped, by both engines
    frame.loc[rng.random(n) < 0.02, "binary_cat"] = None
    frame.loc[3, "stable"] = np.inf
    if shift:
        frame.loc[:4, "cat3"] = "new"  # a category the reference never saw
    return frame


NUMERICAL = ["shifted", "stable", "few_values", "binary_num", "six_values", "constant_num"]
CATEGORICAL = ["cat3", "binary_cat", "constant_cat"]


@pytest.mark.parametrize(("n_ref", "n_cur"), [(2_000, 1_500), (800, 300), (300, 2_500)])
def test_every_column_equals_evidently(n_ref: int, n_cur: int) -> None:
    reference, current = mixed_frame(n_ref, 1, shift=False), mixed_frame(n_cur, 2, shift=True)
    ours = data_drift(reference, current, NUMERICAL, CATEGORICAL)
    assert_same(ours, evidently_report(reference, current, NUMERICAL, CATEGORICAL))
    by_column = ours.columns.set_index("column")
    assert by_column.loc["shifted", "drifted"] and not by_column.loc["stable", "drifted"]
    assert not by_column.loc["constant_num", "drifted"] and not by_column.loc["constant_cat", "drifted"]
    expected = {"shifted": "wasserstein", "cat3": "jensenshannon", "few_values": "jensenshannon",
                "binary_cat": "jensenshannon"} if n_ref > 1_000 else {
                "shifted": "ks", "cat3": "chisquare", "few_values": "chisquare", "binary_cat": "z",
                "binary_num": "z", "six_values": "ks", "constant_num": "z"}
    assert {c: by_column.loc[c, "stattest"] for c in expected} == expected


def test_reference_size_is_counted_after_dropping_missing_values() -> None:
    """1,000 rows is K-S, 1,001 Wasserstein; 1,005 rows of which 10 missing is K-S again."""
    rng = np.random.default_rng(3)
    for n_ref, n_missing, method in [(1_000, 0, "ks"), (1_001, 0, "wasserstein"), (1_005, 10, "ks")]:
        reference = pd.DataFrame({"x": rng.normal(0, 1, n_ref)})
        reference.loc[: n_missing - 1, "x"] = np.nan
        current = pd.DataFrame({"x": rng.normal(0.1, 1, 700)})
        ours = data_drift(reference, current, ["x"], [])
        assert ours.columns.loc[0, "stattest"] == method
        assert_same(ours, evidently_report(reference, current, ["x"], []))


def test_two_different_constants_and_half_drifted_decide_the_dataset() -> None:
    """Z-test between two constants; exactly drift_share of the columns drifted counts as dataset drift."""
    reference = pd.DataFrame({"a": ["x"] * 400, "b": ["p", "q"] * 200, "c": np.arange(400.0), "d": np.ones(400)})
    current = pd.DataFrame({"a": ["y"] * 300, "b": ["p", "q"] * 150, "c": np.arange(300.0) + 200, "d": np.ones(300)})
    ours = data_drift(reference, current, ["c", "d"], ["a", "b"])
    assert ours.n_drifted == 2 and ours.dataset_drift
    assert_same(ours, evidently_report(reference, current, ["c", "d"], ["a", "b"]))
    stricter = data_drift(reference, current, ["c", "d"], ["a", "b"], drift_share=0.75)
    assert not stricter.dataset_drift
    assert_same(stricter, evidently_report(reference, current, ["c", "d"], ["a", "b"], drift_share=0.75))


def test_lactate_assay_change_drifts_lactate_only() -> None:
    """The demo's story: the post-change cohort drifts on lactate, as evidently says, and on nothing else."""
    start = date(2026, 1, 1)
    reference = generate_icu_cohort(3_000, seed=11, start=start, days=60)
    current = generate_icu_cohort(2_000, seed=12, start=start, days=30, lactate_assay_change_day=0)
    numerical, categorical = [f for f in FEATURES if f != "female"], ["female", "sex", "race_ethnicity", "payer"]
    ours = data_drift(reference, current, numerical, categorical)
    assert_same(ours, evidently_report(reference, current, numerical, categorical))
    assert ours.columns.loc[ours.columns["drifted"], "column"].tolist() == ["lactate"]


def test_column_drift_on_arrays_and_empty_columns() -> None:
    rng = np.random.default_rng(5)
    drift = column_drift(rng.normal(0, 1, 5_000), rng.normal(1, 1, 5_000), kind="numerical", column="x")
    assert (drift.method, drift.threshold, drift.drifted) == ("Wasserstein distance (normed)", 0.1, True)
    with pytest.raises(ValueError, match="'x' is empty in the current data"):
        column_drift(np.ones(10), np.full(10, np.nan), kind="numerical", column="x")
    with pytest.raises(ValueError, match="should contain numerical values only"):
        data_drift(pd.DataFrame({"s": ["a"]}), pd.DataFrame({"s": ["b"]}), ["s"], [])
    with pytest.raises(ValueError, match=r"\['gone'\] missing"):
        data_drift(pd.DataFrame({"s": [1.0]}), pd.DataFrame({"s": [1.0]}), ["s", "gone"], [])


def test_psi_by_hand() -> None:
    """Two reference-median bins: reference 50/50; current 30/70, then 0/100 (empty bin → 0.0001)."""
    reference = np.arange(1.0, 11.0)
    current = np.array([1, 2, 3, 7, 8, 9, 10, 11, 12, 13], dtype=float)
    expected = (0.5 - 0.3) * math.log(0.5 / 0.3) + (0.5 - 0.7) * math.log(0.5 / 0.7)
    assert population_stability_index(reference, current, bins=2) == pytest.approx(expected, rel=1e-12)
    all_high = np.full(10, 9.0)
    expected = (0.5 - 0.0001) * math.log(0.5 / 0.0001) + (0.5 - 1.0) * math.log(0.5 / 1.0)
    assert population_stability_index(reference, all_high, bins=2) == pytest.approx(expected, rel=1e-12)
    assert population_stability_index(reference, reference) == 0.0


def evidently_psi(reference: np.ndarray, current: np.ndarray) -> float:
    definition = DataDefinition(numerical_columns=["score"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([ValueDrift(column="score", method="psi")]).run(
            Dataset.from_pandas(pd.DataFrame({"score": current}), data_definition=definition),
            Dataset.from_pandas(pd.DataFrame({"score": reference}), data_definition=definition)).dict()
    return float(snapshot["metrics"][0]["value"])


def test_psi_evidently_binning_equals_evidently_psi() -> None:
    """evidently's binning (Sturges over both samples, or one bin per value when ≤ 20) reproduces its PSI.

    The default quantile binning is a different, documented choice and is not expected to agree."""
    rng = np.random.default_rng(7)
    reference, current = rng.beta(2, 5, 4_000), rng.beta(2.5, 5, 3_000)
    theirs = evidently_psi(reference, current)
    assert population_stability_index(reference, current, binning="evidently") == pytest.approx(theirs, rel=REL)
    assert population_stability_index(reference, current) != pytest.approx(theirs, rel=1e-3)
    coarse_ref, coarse_cur = np.round(reference, 1), np.round(current + 0.3, 1)  # few values, one side-only
    theirs = evidently_psi(coarse_ref, coarse_cur)
    assert population_stability_index(coarse_ref, coarse_cur, binning="evidently") == pytest.approx(theirs, rel=REL)


def test_infinity_without_missing_values_follows_evidently_value_drift() -> None:
    """A documented difference: with ±inf but no NaN in a column, evidently's DriftedColumnsCount keeps
    the inf (it cleans only columns where isna() finds something) and counts the column as drifted,
    while its own ValueDrift drops it and does not. We drop it everywhere, so our dataset decision
    follows the per-column tests. If this starts failing, evidently has made the two agree."""
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 2_000), "y": rng.normal(0, 1, 2_000)})
    current = pd.DataFrame({"x": rng.normal(0, 1, 2_000), "y": rng.normal(0, 1, 2_000)})
    current.loc[0, "x"] = np.inf
    ours, theirs = data_drift(reference, current, ["x", "y"], []), evidently_report(reference, current, ["x", "y"], [])
    for row in ours.columns.itertuples():
        assert row.score == pytest.approx(theirs.columns[row.column][1], rel=REL)
        assert row.drifted == theirs.columns[row.column][2] is False
    assert (ours.share_drifted, ours.dataset_drift) == (0.0, False)
    assert (theirs.share, theirs.dataset_drift) == (0.5, True)
