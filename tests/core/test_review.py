"""The review read models: threshold explorer, its sentences and curves, gap and calibration sentences."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, recall_score

from core.adapters.store import Store
from core.domain.access import User
from core.metrics.thresholds import sweep_thresholds
from core.services import review
from core.services.submission import StoredEvaluation

OUTCOME = "sepsis within 48 hours"


def cohort(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    attributes = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                               "race": rng.choice(["White", "Black", "Other"], n, p=[0.7, 0.28, 0.02])})
    y = (rng.random(n) < 0.2).astype(int)
    score = np.round(np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, n), 0, 1), 2)
    return y, score, attributes


def test_sweep_matches_sklearn_at_every_threshold() -> None:
    y, score, attributes = cohort()
    curves = sweep_thresholds(y, score, sensitive_features=attributes, attribute_set=("sex", "race"))
    for t in (0.01, 0.2, 0.35, 0.5, 0.99):  # 0.2, 0.35, 0.5: scores exactly on the threshold are flagged
        at = curves[np.isclose(curves["threshold"], t)].set_index("group")
        assert at.loc["all patients", "sensitivity"] == pytest.approx(recall_score(y, score >= t), abs=1e-12)
        labels = attributes["sex"] + " / " + attributes["race"]
        for group in labels.unique():
            mask = (labels == group).to_numpy()
            tn, fp, fn, tp = confusion_matrix(y[mask], score[mask] >= t, labels=[0, 1]).ravel()
            assert at.loc[group, "alerts_per_100"] == pytest.approx(100 * (tp + fp) / mask.sum(), abs=1e-12)
            assert at.loc[group, "caught"] == tp


def test_sweep_sensitivity_is_nan_without_positives() -> None:
    y = np.array([0, 0, 1, 1])
    curves = sweep_thresholds(y, np.array([0.1, 0.9, 0.4, 0.8]), sensitive_features=pd.DataFrame(
        {"a": ["x", "x", "y", "y"]}), attribute_set=("a",), thresholds=np.array([0.5]))
    by_group = curves.set_index("group")
    assert np.isnan(by_group.loc["x", "sensitivity"]) and by_group.loc["x", "alerts_per_100"] == 50
    assert by_group.loc["y", "sensitivity"] == 0.5  # a real zero would show as 0, undefined as NaN


def explored_rows() -> pd.DataFrame:
    return pd.DataFrame([
        {"group": "all patients", "n": 1000, "enough_patients": True, "sensitivity": 0.87, "alerts_per_100": 21.4},
        {"group": "female", "n": 480, "enough_patients": True, "sensitivity": 0.79, "alerts_per_100": 19.0},
        {"group": "Other", "n": 37, "enough_patients": False, "sensitivity": 0.5, "alerts_per_100": 20.0},
        {"group": "male", "n": 483, "enough_patients": True, "sensitivity": float("nan"), "alerts_per_100": 3.0},
    ])


def test_threshold_sentence_in_natural_frequencies() -> None:
    sentence = review.threshold_sentence(explored_rows(), 0.1, "sepsis")
    assert sentence == ("At 0.10: of 100 patients who developed sepsis, the model flags 87; "
                        "among female patients, 79; among Other patients, too few patients to judge (n = 37); "
                        "among male patients, none developed sepsis, so it cannot be said. "
                        "That is about 21 alerts per 100 encounters.")


def test_threshold_sentence_never_says_zero_for_undefined() -> None:
    rows = explored_rows().assign(sensitivity=float("nan"))
    sentence = review.threshold_sentence(rows, 0.5, "sepsis")
    assert sentence.startswith("At 0.50: no patient developed sepsis, so sensitivity cannot be said")
    assert " 0;" not in sentence and " 0." not in sentence.replace("0.50", "")


def stored(store: Store, y: np.ndarray, score: np.ndarray, attributes: pd.DataFrame) -> str:
    rows = pd.DataFrame({"evaluation_id": "ev-1", "row_index": np.arange(len(y), dtype=np.int32),
                         "encounter_id": None, "label": y, "score": score,
                         "attributes": [json.dumps(a) for a in attributes.to_dict(orient="records")]})
    with store.transaction() as cur:
        cur.register("incoming_rows", rows)
        cur.execute("INSERT INTO evaluation_rows SELECT * FROM incoming_rows")
    return "ev-1"


def test_threshold_view_covers_pairwise_intersections(store: Store, operator: User) -> None:
    y, score, attributes = cohort()
    evaluation_id = stored(store, y, score, attributes)
    view = review.threshold_view(store, operator, evaluation_id, threshold=0.35, min_n=100,
                                 attribute_set="sex × race", outcome=OUTCOME)
    assert view is not None
    assert list(view.groups["group"])[:2] == ["all patients", "female / Black"]
    row = view.groups.set_index("group").loc["male / White"]
    mask = ((attributes["sex"] == "male") & (attributes["race"] == "White")).to_numpy()
    tn, fp, fn, tp = confusion_matrix(y[mask], score[mask] >= 0.35).ravel()
    assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (tp, fp, fn, tn)
    assert row["alerts_per_100"] == pytest.approx(100 * (tp + fp) / mask.sum(), abs=1e-12)
    assert view.sentence.startswith(f"At 0.35: of 100 patients who developed {OUTCOME}, the model flags ")
    assert "among female Other patients, too few patients to judge (n = " in view.sentence
    assert set(view.left_out) == {"female / Other", "male / Other"}
    assert not set(view.curves["group"]) & set(view.left_out)
    assert review.threshold_view(store, operator, "no-such-evaluation", threshold=0.35, min_n=100,
                                 attribute_set="sex", outcome=OUTCOME) is None


def evaluation_with(result: dict[str, object]) -> StoredEvaluation:
    return StoredEvaluation("ev", "sepsis-icu", 2, "complete", result, "", False)


def test_gap_sentences_say_the_largest_gap_to_all_patients() -> None:
    gaps = [{"attribute_set": "race", "metric": "sensitivity", "overall": 0.76, "furthest_group": "Black",
             "furthest_minus_overall": -0.14, "difference_to_overall": 0.14, "ratio_to_overall": 0.8157},
            {"attribute_set": "race", "metric": "auroc", "overall": 0.8, "furthest_group": None,
             "furthest_minus_overall": None, "difference_to_overall": None, "ratio_to_overall": None},
            {"attribute_set": "sex", "metric": "ppv", "overall": 0.3, "furthest_group": "male",
             "furthest_minus_overall": 0.02, "difference_to_overall": 0.02, "ratio_to_overall": 0.94}]
    sentences = review.gap_sentences(evaluation_with({"gaps": gaps}), "race")
    assert sentences == ["The largest gap to all patients in sensitivity: among Black patients it is 0.140 lower "
                         "(0.620 vs 0.760 for all patients); smallest ratio of a group to all patients 0.82 "
                         "(1 means equal)."]
    assert review.gap_sentences(evaluation_with({"gaps": [{"attribute_set": "race", "metric": "ppv"}]}), "race") == []


def test_calibration_sentence_in_words() -> None:
    row = pd.Series({"group": "Black", "n": 400, "enough_patients": True, "mean_predicted": 0.2,
                     "observed_rate": 0.122, "observed_expected": 0.61, "observed_expected_lo": 0.5,
                     "observed_expected_hi": 0.74})
    assert review.calibration_sentence(row, "sepsis") == (
        "Among Black patients the model predicted 20% on average and 12% developed sepsis: 61 for every 100 it "
        "expected (95 % CI 50–74).")
    small = row.copy()
    small["enough_patients"], small["n"] = False, 12
    assert review.calibration_sentence(small, "sepsis") == "Among Black patients: too few patients to judge (n = 12)."
