"""Champion–challenger numbers against scikit-learn and by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score, roc_auc_score

from core.metrics.comparison import decision_flips, gap_changes, metric_deltas, subgroup_deltas


def scores(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    reference = np.clip(0.2 + 0.2 * y + rng.normal(0, 0.15, n), 0, 1)
    candidate = np.clip(reference + 0.05 * y + rng.normal(0, 0.05, n), 0, 1)
    return y, candidate, reference


def test_deltas_match_sklearn_and_intervals_cover_them() -> None:
    y, candidate, reference = scores()
    deltas = metric_deltas(y, candidate, reference, 0.35, n_bootstrap=100).set_index("metric")
    assert deltas.loc["auroc", "difference"] == pytest.approx(roc_auc_score(y, candidate) - roc_auc_score(y, reference),
                                                              abs=1e-12)
    expected = recall_score(y, candidate >= 0.35) - recall_score(y, reference >= 0.35)
    assert deltas.loc["sensitivity", "difference"] == pytest.approx(expected, abs=1e-12)
    assert ((deltas["lo"] <= deltas["difference"]) & (deltas["difference"] <= deltas["hi"])).all()
    assert deltas.loc["auroc", "lo"] > 0  # the candidate really is better here


def test_flips_by_hand() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    candidate = np.array([0.9, 0.1, 0.9, 0.1, 0.9, 0.9])
    reference = np.array([0.1, 0.9, 0.1, 0.9, 0.9, 0.9])
    assert decision_flips(y, candidate, reference, 0.5) == {
        "newly_caught": 1, "newly_missed": 1, "new_false_alarms": 1, "false_alarms_removed": 1, "unchanged": 2}


def test_subgroup_and_gap_changes() -> None:
    y, candidate, reference = scores(seed=1)
    sensitive = pd.DataFrame({"sex": np.where(np.arange(len(y)) % 2, "female", "male")})
    deltas = subgroup_deltas(y, candidate, reference, 0.35, sensitive, 100)
    female = deltas[(deltas["attribute_set"] == "sex") & (deltas["group"] == "female")].iloc[0]
    mask = sensitive["sex"].to_numpy() == "female"
    assert female["sensitivity_candidate"] == pytest.approx(recall_score(y[mask], candidate[mask] >= 0.35))
    gaps = gap_changes(deltas).set_index("attribute_set")
    sexes = deltas[deltas["attribute_set"] == "sex"]
    spread = sexes["sensitivity_candidate"].max() - sexes["sensitivity_candidate"].min()
    assert gaps.loc["sex", "gap_candidate"] == pytest.approx(spread)
