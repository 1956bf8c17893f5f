"""SHAP explanations, computed once per evaluation inside the worker process, per original input.

A clinician asks "how much did admission source matter", not "how much did the
column admission_source_ward of a one-hot encoding matter". So:

- a tree or linear model behind preprocessing whose output columns each come
  from one input (scaling, imputation, one-hot encoding in a ColumnTransformer)
  is explained exactly in the model's own space (TreeExplainer / LinearExplainer)
  and each input's value is the sum over the columns made from it (SHAP values
  are additive, so the sum is the input's contribution);
- a tree model on the inputs themselves gets TreeExplainer directly;
- anything else gets the model-agnostic permutation explainer on the predicted
  probability, over the original inputs (text categories coded as numbers for
  shap and decoded before the model sees them), with a background sample of 100
  evaluation patients drawn with a fixed seed.

The units are read off the numbers (base + sum equals the log-odds or the
probability of each explained patient), never assumed from the model's type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BACKGROUND_ROWS = 100
EXPLAINED_ROWS = 400
EXTRA_MISSED = 100
SEED = 20261124
TREE_TYPES = ("GradientBoostingClassifier", "RandomForestClassifier", "ExtraTreesClassifier",
              "DecisionTreeClassifier", "HistGradientBoostingClassifier", "XGBClassifier", "LGBMClassifier")
STRIPPED_PREFIXES = ("missingindicator_",)
PERMUTATIONS = 10
PERMUTATION_ROWS = 100  # each costs ~PERMUTATIONS·(2p+1)·100 model rows: enough patients for the beeswarm
Risk = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class Explained:
    method: str
    units: str  # "log-odds", "probability", or "the model's raw output"
    background: str
    values: np.ndarray  # explained rows × original inputs
    base_value: float
    rows: np.ndarray  # the rows of X explained (the permutation explainer takes fewer: PERMUTATION_ROWS)


def explained_rows(label: np.ndarray, flagged: np.ndarray, seed: int = SEED) -> np.ndarray:
    """A seeded sample of patients, plus the model's missed cases (false negatives) clinicians ask about."""
    rng = np.random.default_rng(seed)
    everyone = np.arange(len(label))
    sample = rng.choice(everyone, size=min(EXPLAINED_ROWS, len(label)), replace=False)
    missed = everyone[(label == 1) & ~flagged]
    extra = rng.choice(missed, size=min(EXTRA_MISSED, len(missed)), replace=False) if len(missed) else missed
    return np.unique(np.concatenate([sample, extra]))


def _is_tree(estimator: Any) -> bool:
    return type(estimator).__name__ in TREE_TYPES


def explain(model: Any, predict_risk: Risk, X: pd.DataFrame, rows: np.ndarray, *, positive: int = 1) -> Explained:
    """SHAP values of X.iloc[rows], one column per input of X. `model` is the native estimator (or None
    for a model only MLflow's pyfunc can run); `positive` is the outcome's index among its classes."""
    target = X.iloc[rows]
    background = X.sample(min(BACKGROUND_ROWS, len(X)), random_state=SEED % 2**32)
    drawn = f"{len(background)} evaluation patients drawn with seed {SEED}"
    if model is not None:
        found = _in_model_space(model, X, target, background, positive)
        if found is not None:
            method, values, base = found
            units = _units(values, base, predict_risk(target))
            return Explained(method, units, "the trees' own training cover" if "Tree" in method else drawn,
                             values, base, rows)
    # a uniform subset: the seeded sample and the missed patients are spread through the sorted row numbers
    kept = rows if len(rows) <= PERMUTATION_ROWS else np.sort(
        np.random.default_rng(SEED).choice(rows, PERMUTATION_ROWS, replace=False))
    return _permutation(predict_risk, X, X.iloc[kept], background, drawn, kept)


def _in_model_space(model: Any, X: pd.DataFrame, target: pd.DataFrame, background: pd.DataFrame,
                    positive: int) -> tuple[str, np.ndarray, float] | None:
    """Exact SHAP in the final estimator's own input space, summed back to the original inputs."""
    import shap

    steps = getattr(model, "steps", None)
    final, prepare = (steps[-1][1], model[:-1]) if steps and len(steps) > 1 else (model, None)
    mapping = _input_of_each_column(prepare, list(X.columns), width=_width(prepare, target))
    if mapping is None or not (_is_tree(final) or hasattr(final, "coef_")):
        return None
    def to_space(frame: pd.DataFrame) -> Any:
        return _dense(prepare.transform(frame)) if prepare is not None else frame

    if _is_tree(final):
        result = shap.TreeExplainer(final)(to_space(target))
        name = "TreeExplainer (exact)"
    else:
        result = shap.LinearExplainer(final, _dense(to_space(background)))(to_space(target))
        name = "LinearExplainer (exact for a linear model)"
    values = np.asarray(result.values, dtype=float)
    base = np.asarray(result.base_values, dtype=float).reshape(len(target), -1)
    if values.ndim == 3:  # one slice per class
        values, base = values[:, :, positive], base[:, min(positive, base.shape[1] - 1)]
    else:
        base = base[:, -1]
    if prepare is not None:
        name += ", summed per original input"
    return name, values @ mapping, float(base[0])


def _dense(values: Any) -> Any:
    return values.toarray() if hasattr(values, "toarray") else values


def _width(prepare: Any, sample: pd.DataFrame) -> int:
    return int(_dense(prepare.transform(sample.head(5))).shape[1]) if prepare is not None else sample.shape[1]


def _input_of_each_column(prepare: Any, inputs: list[str], *, width: int) -> np.ndarray | None:
    """A (model column × input) 0/1 matrix saying which input each column the model sees was made from, or
    None when a column cannot be traced to exactly one input (then SHAP runs on the inputs themselves)."""
    if prepare is None:
        return np.eye(len(inputs))
    try:
        names = [str(n) for n in prepare.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):  # a step that cannot name its output columns
        return None
    if len(names) != width:
        return None
    mapping = np.zeros((width, len(inputs)))
    for i, name in enumerate(names):
        source = _source_input(name, inputs)
        if source is None:
            return None
        mapping[i, inputs.index(source)] = 1.0
    return mapping


def _source_input(name: str, inputs: list[str]) -> str | None:
    """'cat__admission_source_ward' → 'admission_source'; the longest input name that fits wins."""
    candidates = [name, name.split("__", 1)[1] if "__" in name else name]
    for prefix in STRIPPED_PREFIXES:
        candidates += [c.removeprefix(prefix) for c in candidates if c.startswith(prefix)]
    fits = [i for i in inputs for c in candidates if c == i or c.startswith(i + "_")]
    return max(fits, key=len) if fits else None


def _units(values: np.ndarray, base: float, risk: np.ndarray) -> str:
    total = base + values.sum(axis=1)
    if np.allclose(1.0 / (1.0 + np.exp(-total)), risk, atol=1e-6):
        return "log-odds"
    return "probability" if np.allclose(total, risk, atol=1e-6) else "the model's raw output"


def _permutation(predict_risk: Risk, X: pd.DataFrame, target: pd.DataFrame, background: pd.DataFrame,
                 drawn: str, rows: np.ndarray) -> Explained:
    import shap

    codec = _Codec(X)
    masker = shap.maskers.Independent(codec.encode(background), max_samples=BACKGROUND_ROWS)
    explainer = shap.Explainer(lambda values: predict_risk(codec.decode(values)), masker, algorithm="permutation",
                               seed=SEED)
    # Ten permutations per patient: each costs 2·p + 1 model calls over the background, and more add little
    # at p ≈ 10 inputs (shap's default, 500 evaluations, is 2–20 times that).
    result = explainer(codec.encode(target), max_evals=PERMUTATIONS * (2 * X.shape[1] + 1), silent=True)
    return Explained("permutation explainer (model-agnostic)", "probability", drawn,
                     np.asarray(result.values, dtype=float), float(np.asarray(result.base_values).reshape(-1)[0]), rows)


class _Codec:
    """Inputs as a float matrix for shap (categories as codes, missing as NaN) and back to typed columns."""

    def __init__(self, X: pd.DataFrame) -> None:
        self.columns = list(X.columns)
        self.dtypes = X.dtypes.to_dict()
        self.categories = {c: pd.Index(X[c].dropna().unique()) for c in X.columns
                           if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])}

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty(frame.shape, dtype=float)
        for j, c in enumerate(self.columns):
            if c in self.categories:
                codes = self.categories[c].get_indexer(pd.Index(frame[c]))
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = frame[c].to_numpy(dtype=float, na_value=np.nan)
        return out

    def decode(self, values: np.ndarray) -> pd.DataFrame:
        frame: dict[str, Any] = {}
        for j, c in enumerate(self.columns):
            column = values[:, j]
            if c in self.categories:
                picked = pd.Series(self.categories[c].take(np.nan_to_num(column, nan=0).astype(int)), dtype=object)
                frame[c] = picked.mask(pd.Series(np.isnan(column)), np.nan)
                if pd.api.types.is_bool_dtype(self.dtypes[c]) and not np.isnan(column).any():
                    frame[c] = frame[c].astype(bool)
            elif pd.api.types.is_integer_dtype(self.dtypes[c]):
                frame[c] = pd.Series(column).astype("Int64" if np.isnan(column).any() else self.dtypes[c])
            else:
                frame[c] = pd.Series(column, dtype=self.dtypes[c])
        return pd.DataFrame(frame)


def importance(values: np.ndarray, features: list[str]) -> pd.DataFrame:
    """Global importance: mean |SHAP| per input, largest first."""
    mean_abs = np.abs(values).mean(axis=0)
    return (pd.DataFrame({"feature": features, "mean_abs_shap": mean_abs})
            .sort_values("mean_abs_shap", ascending=False, ignore_index=True))


def importance_by_group(values: np.ndarray, features: list[str], groups: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per input within each group of each sensitive attribute."""
    frames = []
    magnitude = pd.DataFrame(np.abs(values), columns=features)
    for attribute in groups.columns:
        by = magnitude.groupby(groups[attribute].to_numpy()).mean()
        long = by.reset_index(names="group").melt(id_vars="group", var_name="feature", value_name="mean_abs_shap")
        frames.append(long.assign(attribute=attribute))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---- for display: SHAP values as percentage points of risk ----------------------------------------------------

def risk_from(output: np.ndarray | float, units: str) -> np.ndarray | None:
    """The predicted risk (0–1) at a point on the explanation's scale; None when the scale is not a known one."""
    if units == "log-odds":
        return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(output, dtype=float))))
    if units == "probability":
        return np.asarray(output, dtype=float)
    return None


def contribution_order(values: np.ndarray) -> np.ndarray:
    """Per row, the inputs by the size of their SHAP value, largest first (ties keep the input order): the
    order in which `in_percentage_points` adds them, and in which a patient's waterfall lists them."""
    return np.argsort(-np.abs(np.atleast_2d(values)), axis=1, kind="stable")


def in_percentage_points(base_value: float, values: np.ndarray, units: str) -> np.ndarray | None:
    """Each input's SHAP value as percentage points of predicted risk, row by row (rows × inputs).

    In probability units a SHAP value already is a change in risk: ×100. In log-odds the same value moves risk
    more near 50 % than near 5 %, so a patient's values are added one at a time to the base value, largest
    first (`contribution_order`), and each input gets the change in predicted risk its step causes. The steps
    telescope: per row they add up exactly to (predicted risk − baseline risk) × 100, every step has the sign
    of its SHAP value (the logistic function only increases), and a larger SHAP value from the same point
    makes a larger step. The split depends on the order; largest first is the order the waterfall shows.
    None when the units are neither (then there is no honest risk scale to show)."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if units == "probability":
        return 100.0 * values
    if units != "log-odds":
        return None
    order = contribution_order(values)
    ordered = np.take_along_axis(values, order, axis=1)
    path = base_value + np.concatenate([np.zeros((len(values), 1)), np.cumsum(ordered, axis=1)], axis=1)
    steps = 100.0 * np.diff(1.0 / (1.0 + np.exp(-path)), axis=1)
    points = np.empty_like(values)
    np.put_along_axis(points, order, steps, axis=1)
    return points
