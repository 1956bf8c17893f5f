"""Missing inputs per group (against pandas), what missingness costs (against scikit-learn), and SHAP per
original input for a pipeline with a one-hot encoded text column (against the model's own predictions).
The permutation explainer over a text column is checked end to end in tests/core/test_hospital_models.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from core.metrics.explanations import explain
from core.metrics.missingness import input_profile, missing_sentence, missing_shares, sensitivity_by_presence
from core.services.risk_model import text_missing_marker


def ward(n: int = 2_000, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B", "C"], n, p=[0.7, 0.25, 0.05])
    X = pd.DataFrame({"lactate": rng.gamma(2, 1, n), "heart_rate": rng.normal(90, 12, n),
                      "source": rng.choice(["ed", "ward", "transfer"], n).astype(object)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(X["lactate"] - 3 + (X["source"] == "ward"))))).astype(int).to_numpy()
    X.loc[rng.random(n) < np.where(group == "B", 0.4, 0.1), "lactate"] = np.nan
    X.loc[rng.random(n) < 0.05, "source"] = np.nan
    return X, pd.DataFrame({"group": group, "sex": rng.choice(["f", "m"], n)}), y


def test_missing_shares_equal_pandas_overall_and_per_group() -> None:
    X, groups, _ = ward()
    shares = missing_shares(X, groups)
    overall = shares[shares["attribute"] == "overall"].set_index("column")["share"]
    assert overall.to_dict() == pytest.approx(X.isna().mean().to_dict(), abs=1e-15)
    for attribute in groups.columns:
        for column in ("lactate", "source"):
            mine = shares[(shares["attribute"] == attribute) & (shares["column"] == column)].set_index("group")
            expected = X[column].isna().groupby(groups[attribute]).mean()
            assert mine["share"].to_dict() == pytest.approx(expected.to_dict(), abs=1e-15)
            assert mine["n"].to_dict() == groups[attribute].value_counts().to_dict()
    assert shares[(shares["attribute"] != "overall") & (shares["column"] == "heart_rate")].empty  # never missing


def test_the_sentence_names_the_groups_missing_it_most_and_least() -> None:
    X, groups, _ = ward()
    shares = missing_shares(X, groups)
    by_group = X["lactate"].isna().groupby(groups["group"]).mean()
    sentence = missing_sentence(shares, "lactate", "group", min_n=150)  # C (about 100 patients) is too small
    assert sentence == (f"lactate is missing for {by_group['B']:.0%} of B patients and {by_group['A']:.0%} of A "
                        f"patients ({X['lactate'].isna().mean():.0%} of all patients)")
    assert missing_sentence(shares, "heart_rate", "group", min_n=150) is None


def test_what_missingness_costs_equals_recall_on_each_part() -> None:
    X, _, y = ward()
    flagged = np.nan_to_num(X["lactate"].to_numpy(), nan=0.0) > 2.5
    entry = next(e for e in sensitivity_by_presence(y, flagged, X) if e["column"] == "lactate")
    gone = X["lactate"].isna().to_numpy()
    assert entry["missing"]["sensitivity"] == pytest.approx(recall_score(y[gone], flagged[gone]), abs=1e-15)
    assert entry["present"]["sensitivity"] == pytest.approx(recall_score(y[~gone], flagged[~gone]), abs=1e-15)
    assert entry["present"]["lo"] < entry["present"]["sensitivity"] < entry["present"]["hi"]
    assert entry["missing"]["positives"] == int(y[gone].sum())


def test_the_input_profile_says_type_missing_range_and_categories() -> None:
    X, _, _ = ward()
    profile = {e["column"]: e for e in input_profile(X, ["double", "double", "string"], [False, True, False])}
    assert profile["lactate"]["missing"] == int(X["lactate"].isna().sum())
    assert profile["lactate"]["median"] == pytest.approx(X["lactate"].median())
    assert profile["source"]["top"] == X["source"].value_counts().to_dict()


def fitted_pipeline(X: pd.DataFrame, y: np.ndarray, final: object) -> Pipeline:
    prepare = ColumnTransformer([("numbers", SimpleImputer(), ["lactate", "heart_rate"]),
                                 ("source", OneHotEncoder(handle_unknown="ignore"), ["source"])])
    return Pipeline([("prepare", prepare), ("model", final)]).fit(X, y)


@pytest.mark.parametrize("final,units", [(HistGradientBoostingClassifier(max_iter=50, random_state=0), "log-odds"),
                                         (LogisticRegression(max_iter=1000), "log-odds")])
def test_shap_is_per_original_input_and_adds_up_to_the_models_own_output(final: object, units: str) -> None:
    X, _, y = ward()
    model = fitted_pipeline(X, y, final)

    def risk(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(model.predict_proba(frame)[:, 1])

    rows = np.arange(0, 300)
    found = explain(model, risk, X, rows)
    assert found.values.shape == (300, 3) and found.units == units  # three inputs, not one column per category
    assert "summed per original input" in found.method
    if isinstance(final, HistGradientBoostingClassifier):  # exact: base + contributions = the model's log-odds
        log_odds = model.decision_function(X.iloc[rows])
        assert np.allclose(found.base_value + found.values.sum(axis=1), log_odds, atol=1e-9)


def test_the_missing_text_marker_is_read_from_the_fitted_pipeline() -> None:
    X, _, y = ward()
    assert np.isnan(text_missing_marker(fitted_pipeline(X, y, LogisticRegression(max_iter=1000))))
    with_none = X.assign(source=X["source"].where(X["source"].notna(), None))
    assert text_missing_marker(fitted_pipeline(with_none, y, LogisticRegression(max_iter=1000))) is None
