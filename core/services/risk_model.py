"""A loaded model that returns risks, in the worker process only.

Before anything is computed the worker establishes what the model returns
(`core.domain.scoring`): where the flavour offers class probabilities it scores
with `predict_proba` and records that it did; otherwise MLflow's pyfunc output
must be a probability, or the submission is refused. Inputs reach the model in
the order and types its signature declares, with missing values left missing;
a model that fails on them fails with a message naming the columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.adapters.model_loader import LoadedModel, load_registered
from core.domain.scoring import ScoresNotRisks, ScoringMethod, describe_output, positive_index, risk_from_output
from core.domain.signature import ModelSignature
from core.errors import ModelBoardError


class ModelFailed(ModelBoardError):
    """The model raised an error on the evaluation data; the message names what to change."""


@dataclass(frozen=True)
class RiskModel:
    loaded: LoadedModel
    signature: ModelSignature
    method: ScoringMethod
    what: str
    positive: int = 1  # index of the outcome among the native estimator's classes
    text_missing: Any = np.nan  # how a missing text value reaches the model: None or NaN (see text_missing_marker)

    @property
    def estimator(self) -> Any:
        """The native estimator (for SHAP), when the scores come from its predict_proba."""
        return self.loaded.native if self.method.how == "predict_proba" else None

    def model_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The signature's inputs, in its order and types; a missing text value as the model knows it."""
        out = frame[self.signature.names].copy()
        for column in self.signature.inputs:
            if column.type == "string":
                values = out[column.name].astype(object)
                out[column.name] = values.where(values.notna(), self.text_missing)
        return out

    def risk(self, frame: pd.DataFrame) -> np.ndarray:
        """The probability of the outcome for each row (rows already in the signature's types)."""
        X = self.model_frame(frame)
        if self.method.how == "predict_proba":
            return np.asarray(_call(self, self.loaded.native.predict_proba, X), dtype=float)[:, self.positive]
        raw = _call(self, self.loaded.pyfunc.predict, X)
        return risk_from_output(raw, positive_class=self.method.positive_class, what=self.what)[0]


def _call(model: RiskModel, fn: Any, X: pd.DataFrame) -> Any:
    try:
        return fn(X)
    except Exception as exc:  # noqa: BLE001 - the model is foreign code; its failure must reach the person in words
        raise ModelFailed(_failure_message(model.what, exc, X)) from exc


def _failure_message(what: str, exc: Exception, X: pd.DataFrame) -> str:
    raw = " ".join(str(exc).split())[:300]
    missing = X.isna().sum()
    missing = missing[missing > 0]
    if missing.empty:
        return f"{what} failed on the evaluation data ({type(exc).__name__}: {raw})"
    columns = ", ".join(f"'{c}' ({int(n):,} of {len(X):,}, {n / len(X):.0%})" for c, n in missing.items())
    return (f"{what} failed on the evaluation data ({type(exc).__name__}: {raw}). Inputs with missing values: "
            f"{columns}. If the model cannot take missing values, resubmit with --complete-case to evaluate only "
            "patients with every input (the card records it), or handle them inside the model's pipeline")


def establish(loaded: LoadedModel, signature: ModelSignature, frame: pd.DataFrame, *, positive_class: str | None,
              what: str) -> tuple[RiskModel, np.ndarray]:
    """Decide how this model's risks are read, and score every row of `frame` that way."""
    native = loaded.native
    if native is not None and hasattr(native, "predict_proba") and hasattr(native, "classes_"):
        index = positive_index(list(native.classes_), positive_class, what)
        pyfunc_note = _pyfunc_output_note(loaded, list(native.classes_))
        method = ScoringMethod("predict_proba", loaded.flavor, str(list(native.classes_)[index]), pyfunc_note)
        model = RiskModel(loaded, signature, method, what, index, text_missing_marker(native))
        return model, model.risk(frame)
    probe = RiskModel(loaded, signature, ScoringMethod("pyfunc_risk", loaded.flavor, positive_class or "1"), what)
    raw = _call(probe, loaded.pyfunc.predict, probe.model_frame(frame))
    output = signature.output
    scores, how, label = risk_from_output(raw, positive_class=positive_class, what=what, check_distinct=True,
                                          declared_width=output.width if output.kind != "none" else None)
    if output.is_decision:  # probabilities came back, but the signature says classes: one of them is wrong
        raise ScoresNotRisks(f"{what}: predict returned {describe_output(raw)} in 0–1, but the logged signature "
                             f"declares {output.describe()} (classes, not probabilities); ModelBoard will not guess "
                             "which is right. Log the model again with signature=infer_signature(X, "
                             "<what predict returns>)")
    return RiskModel(loaded, signature, ScoringMethod(how, loaded.flavor, label), what), scores


def _pyfunc_output_note(loaded: LoadedModel, classes: list[Any]) -> str:
    """What MLflow's pyfunc predict returns for this model, read from the MLmodel file (not by calling it)."""
    predict_fn = str(loaded.flavors.get("python_function", {}).get("predict_fn", "predict"))
    if predict_fn == "predict_proba":
        return ""
    if predict_fn == "predict":
        return "decisions (the predicted class, " + " or ".join(str(c) for c in classes) + ")"
    return f"the output of {predict_fn}"


def load_risk_model(name: str, version: int, signature: ModelSignature, frame: pd.DataFrame, *,
                    positive_class: str | None) -> tuple[RiskModel, np.ndarray]:
    """Load a registered version through MLflow and establish its risks on `frame`."""
    return establish(load_registered(name, version), signature, frame, positive_class=positive_class,
                     what=f"{name} v{version}")


def _parts(estimator: Any) -> Iterator[Any]:
    """The estimator and every fitted step inside it (pipelines, column transformers, unions)."""
    yield estimator
    children = (getattr(estimator, "steps", None) or [])
    children += [(name, t) for name, t, *_ in getattr(estimator, "transformers_", None) or []]
    children += getattr(estimator, "transformer_list", None) or []
    for _, child in children:
        if not isinstance(child, str):
            yield from _parts(child)


def text_missing_marker(estimator: Any) -> Any:
    """None or NaN: which one the fitted pipeline learnt as a missing text value.

    scikit-learn treats the two differently (an encoder fitted on None knows None as a category and NaN
    as unknown; SimpleImputer's default looks for NaN only), and a Parquet file gives None where a CSV
    gives NaN. Read from the fitted encoders and imputers; NaN (pandas' own marker) when nothing says."""
    for part in _parts(estimator):
        for categories in getattr(part, "categories_", None) or []:
            for value in categories:
                if value is None:
                    return None
                if isinstance(value, float) and math.isnan(value):
                    return np.nan
        if "missing_values" in getattr(part, "__dict__", {}) and part.missing_values is None:
            return None
    return np.nan
