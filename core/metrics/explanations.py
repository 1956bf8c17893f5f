"""SHAP explanations, computed once per evaluation inside the worker process.

Tree models get shap.TreeExplainer (exact, in log-odds); anything else gets a
model-agnostic permutation explainer on the predicted probability, with a
background sample of 100 evaluation patients drawn with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

BACKGROUND_ROWS = 100
EXPLAINED_ROWS = 400
EXTRA_MISSED = 100
SEED = 20261124
TREE_TYPES = ("GradientBoostingClassifier", "RandomForestClassifier", "ExtraTreesClassifier",
              "DecisionTreeClassifier", "HistGradientBoostingClassifier", "XGBClassifier", "LGBMClassifier")


def explained_rows(label: np.ndarray, flagged: np.ndarray, seed: int = SEED) -> np.ndarray:
    """A seeded sample of patients, plus the model's missed cases (false negatives) clinicians ask about."""
    rng = np.random.default_rng(seed)
    everyone = np.arange(len(label))
    sample = rng.choice(everyone, size=min(EXPLAINED_ROWS, len(label)), replace=False)
    missed = everyone[(label == 1) & ~flagged]
    extra = rng.choice(missed, size=min(EXTRA_MISSED, len(missed)), replace=False) if len(missed) else missed
    return np.unique(np.concatenate([sample, extra]))


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def explain(model: Any, predict_risk: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame,
            rows: np.ndarray) -> tuple[str, str, str, np.ndarray, float]:
    """SHAP values for X.iloc[rows]: (method, units, background, values, base value)."""
    import shap

    target = X.iloc[rows]
    if type(_final_estimator(model)).__name__ in TREE_TYPES and not hasattr(model, "steps"):
        explainer = shap.TreeExplainer(model)
        result = explainer(target)
        values = np.asarray(result.values)
        base = np.asarray(result.base_values).reshape(len(rows), -1)[:, -1]
        if values.ndim == 3:
            values = values[:, :, -1]
        return "TreeExplainer (exact)", "log-odds", "the trees' own training cover", values, float(base[0])
    background = X.sample(min(BACKGROUND_ROWS, len(X)), random_state=SEED % 2**32)
    linear = _linear(model, X, target, background)
    if linear is not None:
        return linear
    masker = shap.maskers.Independent(background, max_samples=BACKGROUND_ROWS)
    explainer = shap.Explainer(lambda frame: predict_risk(pd.DataFrame(frame, columns=X.columns)), masker,
                               algorithm="permutation", seed=SEED)
    result = explainer(target)
    values = np.asarray(result.values)
    base_value = float(np.asarray(result.base_values).reshape(-1)[0])
    return ("permutation explainer (model-agnostic)", "probability",
            f"{len(background)} evaluation patients drawn with seed {SEED}", values, base_value)


def _linear(model: Any, X: pd.DataFrame, target: pd.DataFrame,
            background: pd.DataFrame) -> tuple[str, str, str, np.ndarray, float] | None:
    """Exact SHAP for a (column-preserving preprocessing +) linear model, in log-odds."""
    import shap

    final = _final_estimator(model)
    if not hasattr(final, "coef_") or np.asarray(final.coef_).shape[-1] != X.shape[1]:
        return None
    prepare = model[:-1] if hasattr(model, "steps") and len(model.steps) > 1 else None
    def to_model_space(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(prepare.transform(frame) if prepare is not None else frame, dtype=float)
    explainer = shap.LinearExplainer(final, to_model_space(background))
    result = explainer(to_model_space(target))
    return ("LinearExplainer (exact for a linear model)", "log-odds",
            f"{len(background)} evaluation patients drawn with seed {SEED}", np.asarray(result.values),
            float(np.asarray(result.base_values).reshape(-1)[0]))


def importance(values: np.ndarray, features: list[str]) -> pd.DataFrame:
    """Global importance: mean |SHAP| per feature, largest first."""
    mean_abs = np.abs(values).mean(axis=0)
    return (pd.DataFrame({"feature": features, "mean_abs_shap": mean_abs})
            .sort_values("mean_abs_shap", ascending=False, ignore_index=True))


def importance_by_group(values: np.ndarray, features: list[str], groups: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature within each group of each sensitive attribute."""
    frames = []
    magnitude = pd.DataFrame(np.abs(values), columns=features)
    for attribute in groups.columns:
        by = magnitude.groupby(groups[attribute].to_numpy()).mean()
        long = by.reset_index(names="group").melt(id_vars="group", var_name="feature", value_name="mean_abs_shap")
        frames.append(long.assign(attribute=attribute))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
