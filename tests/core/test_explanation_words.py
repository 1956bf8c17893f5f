"""SHAP values as percentage points of risk (against the models' own predict_proba), a patient's explanation in
clinical words, and the comparison's table and sentences in words (against scikit-learn)."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from core.domain.glossary import glossary_for
from core.metrics.comparison import (
    TOO_FEW,
    change_text,
    gap_changes,
    gaps_in_words,
    groups_in_words,
    metric_deltas,
    metric_sentences,
    metrics_in_words,
    places,
    subgroup_deltas,
)
from core.metrics.explanations import Explained, explain, importance, importance_by_group, in_percentage_points
from core.services.review import explanation_view, patient_explanation
from core.services.submission import StoredEvaluation
from tests.core.test_comparison import scores

SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def ward(n: int = 1_500, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"lactate": rng.gamma(2, 1, n), "heart_rate": rng.normal(90, 12, n),
                      "admission_source": rng.choice(["ed", "ward", "transfer"], n).astype(object)})
    logit = X["lactate"] - 3 + 0.04 * (X["heart_rate"] - 90) + (X["admission_source"] == "ward")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    X.loc[rng.random(n) < 0.15, "lactate"] = np.nan
    return X, y


def pipeline(final: object) -> Pipeline:
    prepare = ColumnTransformer([("numbers", SimpleImputer(), ["lactate", "heart_rate"]),
                                 ("source", OneHotEncoder(handle_unknown="ignore"), ["admission_source"])])
    return Pipeline([("prepare", prepare), ("model", final)])


Risk = Callable[[pd.DataFrame], np.ndarray]


def explained(final: object, *, native: bool = True, rows: int = 200) -> tuple[Explained, Risk, pd.DataFrame,
                                                                                 np.ndarray]:
    X, y = ward()
    model = pipeline(final).fit(X, y)

    def risk(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(model.predict_proba(frame)[:, 1])

    return explain(model if native else None, risk, X, np.arange(rows)), risk, X, y


@pytest.mark.parametrize("final", [GradientBoostingClassifier(n_estimators=60, random_state=0),
                                   LogisticRegression(max_iter=1000)], ids=["trees", "linear"])
def test_log_odds_effects_add_up_to_the_models_risk_minus_the_base_risk(final: object) -> None:
    found, risk, X, _ = explained(final)
    assert found.units == "log-odds"
    points = in_percentage_points(found.base_value, found.values, found.units)
    assert points is not None and points.shape == found.values.shape
    base_risk = 1 / (1 + np.exp(-found.base_value))
    predicted = risk(X.iloc[found.rows])  # scikit-learn's predict_proba, not the conversion's own arithmetic
    assert np.allclose(points.sum(axis=1), 100 * (predicted - base_risk), atol=1e-6)


def test_effects_have_the_sign_of_their_shap_value_and_grow_with_it() -> None:
    found, *_ = explained(GradientBoostingClassifier(n_estimators=60, random_state=0))
    points = in_percentage_points(found.base_value, found.values, found.units)
    assert points is not None
    clear = np.abs(found.values) > 1e-9
    assert (np.sign(points[clear]) == np.sign(found.values[clear])).all()
    one_input = np.linspace(-3, 3, 61).reshape(-1, 1)  # the same start, a larger SHAP value each row
    steps = in_percentage_points(-2.0, one_input, "log-odds")
    assert steps is not None and (np.diff(steps[:, 0]) > 0).all()


def test_in_probability_units_the_effect_is_the_shap_value_itself() -> None:
    found, risk, X, _ = explained(LogisticRegression(max_iter=1000), native=False, rows=40)
    assert found.units == "probability" and "permutation" in found.method
    points = in_percentage_points(found.base_value, found.values, found.units)
    assert points is not None and np.allclose(points, 100 * found.values)
    assert np.allclose(points.sum(axis=1), 100 * (risk(X.iloc[found.rows]) - found.base_value), atol=1e-6)


def test_an_output_that_is_not_a_risk_has_no_percentage_points() -> None:
    assert in_percentage_points(0.0, np.ones((2, 3)), "the model's raw output") is None


def stored(found: Explained, risk: Risk, X: pd.DataFrame, y: np.ndarray) -> StoredEvaluation:
    """An evaluation stored the way the worker stores one (core/services/evaluation_compute.py)."""
    features = list(X.columns)
    score = risk(X)
    patients = [{"row_index": int(r), "encounter_id": f"ENC-{r:04d}", "label": int(y[r]), "score": float(score[r]),
                 "flagged": bool(score[r] >= 0.3),
                 "shap": dict(zip(features, map(float, found.values[i]), strict=True)),
                 "inputs": {f: (None if pd.isna(X.iloc[r][f]) else X.iloc[r][f]) for f in features}}
                for i, r in enumerate(found.rows)]
    groups = pd.DataFrame({"sex": np.where(np.arange(len(found.rows)) % 2, "female", "male")})
    explanations = {"method": found.method, "units": found.units, "background": found.background,
                    "base_value": found.base_value, "features": features,
                    "importance": importance(found.values, features).to_dict("records"),
                    "by_group": importance_by_group(found.values, features, groups).to_dict("records"),
                    "patients": patients}
    return StoredEvaluation("e1", "ward-model", 1, "complete", {"explanations": explanations}, "0" * 64)


def test_a_patients_explanation_ends_at_the_risk_the_model_gave_and_reads_in_words() -> None:
    found, risk, X, y = explained(GradientBoostingClassifier(n_estimators=60, random_state=0))
    evaluation = stored(found, risk, X, y)
    words = glossary_for({"lactate": ("Lactate", "mmol/L"), "admission_source": ("Admitted from", "")})
    view = explanation_view(evaluation, words)
    assert view is not None and view.in_points and view.scale == "percentage points of risk"
    gap = next(r for r in found.rows if pd.isna(X.iloc[r]["lactate"]))
    for row in (0, gap):
        patient = patient_explanation(evaluation, f"ENC-{row:04d}", view, words)
        assert patient.end == pytest.approx(100 * risk(X.iloc[[row]])[0], abs=1e-6)  # scikit-learn's own risk
        assert patient.start + patient.rows["effect"].sum() == pytest.approx(patient.end)
        assert list(patient.rows["effect"].abs()) == sorted(patient.rows["effect"].abs(), reverse=True)
        assert not any(SNAKE.search(label) for label in patient.rows["label"])
        assert "the risk the model gave this patient" in patient.sentence
    labels = " ".join(patient_explanation(evaluation, f"ENC-{gap:04d}", view, words).rows["label"])
    assert "Lactate = not recorded" in labels and "Admitted from = " in labels and "Heart rate = " in labels
    shares = view.by_group.groupby(["attribute", "group"])["share"].sum()
    assert np.allclose(shares, 1.0)
    assert view.importance["effect"].iloc[0] > 0 and not view.importance["name"].str.contains("_").any()


def test_a_change_has_the_decimals_its_interval_supports() -> None:
    assert places(-2.8, 0.0) == 1 and places(-51.0, -36.0) == 0 and places(-0.0061, 0.0031) == 3
    assert change_text(-0.0149, -0.0283, 0.0, scale=100, unit=" points") == "−1.5 points (−2.8 to 0.0)"
    assert change_text(-44.0, -51.2, -35.98) == "−44 (−51 to −36)"


def test_the_comparison_reads_in_words_and_matches_scikit_learn() -> None:
    y, candidate, reference = scores()
    deltas = metric_deltas(y, candidate, reference, 0.35, n_bootstrap=100)
    table = metrics_in_words(deltas).set_index("Measure")
    assert table.loc["Sensitivity", "Production"] == f"{round(recall_score(y, reference >= 0.35) * 100)} of 100"
    assert table.loc["PPV", "Candidate"] == f"{round(precision_score(y, candidate >= 0.35) * 100)} of 100"
    auroc = deltas.set_index("metric").loc["auroc"]
    assert str(table.loc["AUROC", "Verdict"]).startswith("a clear change" if auroc["lo"] > 0 else "no clear change")
    sentences = metric_sentences(deltas, "sepsis")
    assert sentences[1].startswith(f"Of 100 patients who developed sepsis, production flagged "
                                   f"{round(recall_score(y, reference >= 0.35) * 100)}")
    sensitive = pd.DataFrame({"site": np.where(np.arange(len(y)) < 60, "small_site", "main"),
                              "age_band": np.where(np.arange(len(y)) % 2, "18-44", "45-64")})
    by_group = subgroup_deltas(y, candidate, reference, 0.35, sensitive, min_n=100)
    groups = groups_in_words(by_group, lambda raw: raw.replace("_", " ").capitalize())
    assert groups.set_index("Group").loc["small_site", "Change"] == TOO_FEW
    assert "enough_patients" not in groups.columns and not any(SNAKE.search(c) for c in groups.columns)
    gaps = gaps_in_words(gap_changes(by_group), lambda raw: raw.replace("_", " ").capitalize())
    assert list(gaps["Grouped by"]) == ["Age band"] and gaps["Change"].str.endswith(("point", "points")).all()
