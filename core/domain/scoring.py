"""Is what the model returned a risk? Deciding from the output itself, before any metric is computed.

A scikit-learn classifier logged the ordinary way has a pyfunc `predict` that
returns decisions (0/1). Those pass a "between 0 and 1" check and, evaluated as
risks, give every number on every page wrongly — AUROC, calibration, thresholds,
SHAP — with nothing on screen to say so. So a score is accepted only when it is
a probability of the outcome: a flavour's `predict_proba` column for the
positive class, or a pyfunc output that is unmistakably a probability (more
than two distinct values in 0–1, agreeing with the logged signature). Anything
else is refused with a message that says how to log the model
(docs/decisions/0013).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.domain.typed_inputs import FALSE_WORDS, TRUE_WORDS
from core.errors import ValidationError

How = Literal["predict_proba", "pyfunc_probabilities", "pyfunc_risk"]
HOW_TO_LOG_RISKS = ("log it so that it returns the probability of the outcome: for scikit-learn, "
                    "mlflow.sklearn.log_model(model, name='model', pyfunc_predict_fn='predict_proba', ...); for a "
                    "custom mlflow.pyfunc.PythonModel, return model.predict_proba(X)[:, 1] from predict")
ROW_SUM_TOLERANCE = 1e-6


class ScoresNotRisks(ValidationError):
    """The model's output is not a probability of the outcome; the message says how to log it."""


@dataclass(frozen=True)
class ScoringMethod:
    """How the risk scores were produced, as the evaluation records it and the card shows it."""

    how: How
    flavor: str
    positive_class: str
    pyfunc_output: str = ""  # what MLflow's pyfunc predict returns, where ModelBoard did not use it

    def sentence(self) -> str:
        if self.how == "predict_proba":
            text = (f"Risk = the probability of class {self.positive_class!r} from the model's own predict_proba "
                    f"(MLflow {self.flavor} flavour)")
            return text + (f"; MLflow's pyfunc predict returns {self.pyfunc_output}, which ModelBoard did not use."
                           if self.pyfunc_output else ".")
        if self.how == "pyfunc_probabilities":
            return (f"Risk = the column for class {self.positive_class!r} of the class probabilities MLflow's "
                    "pyfunc predict returns.")
        return "Risk = the probability MLflow's pyfunc predict returns (one value per patient, between 0 and 1)."


def positive_index(classes: Sequence[Any], positive_class: str | None, what: str) -> int:
    """Which of a binary classifier's classes is the outcome: the true-like one of 0/1 or true/false classes
    (whatever the evaluation data's label calls it), else the one the use case names as positive_class."""
    names = [str(c).strip() for c in classes]
    if len(names) != 2:
        raise ScoresNotRisks(f"{what} has {len(names)} classes ({', '.join(names[:6])}): ModelBoard evaluates "
                             "models of one outcome, present or absent")
    lowered = [n.lower() for n in names]
    if set(lowered) <= TRUE_WORDS | FALSE_WORDS and len({n in TRUE_WORDS for n in lowered}) == 2:
        return 0 if lowered[0] in TRUE_WORDS else 1
    if positive_class is None:
        raise ScoresNotRisks(f"{what} knows the classes {', '.join(names)}: say which one is the outcome with "
                             "positive_class in the use case")
    if positive_class not in names:
        raise ScoresNotRisks(f"{what} knows the classes {', '.join(names)}, but the use case names the outcome "
                             f"{positive_class!r}: correct positive_class in the use case")
    return names.index(positive_class)


def describe_output(raw: Any) -> str:
    """'decisions (only the values 0 and 1)', 'probabilities of 2 classes', … — for notes and messages."""
    values = _as_array(raw)
    if values.ndim == 2 and values.shape[1] > 1:
        return f"{values.shape[1]} values per patient"
    flat = values.reshape(-1)
    if flat.dtype.kind not in "biuf":
        shown = ", ".join(sorted({str(v) for v in flat[:1000]})[:4])
        return f"labels ({shown})"
    distinct = np.unique(flat[np.isfinite(flat.astype(float))])
    if distinct.size <= 2:
        return "decisions (only the values " + " and ".join(f"{v:g}" for v in distinct) + ")"
    return "one number per patient"


def _as_array(raw: Any) -> np.ndarray:
    if isinstance(raw, pd.DataFrame | pd.Series):
        return np.asarray(raw.to_numpy())
    return np.asarray(raw)


def risk_from_output(raw: Any, *, positive_class: str | None, what: str, check_distinct: bool = False,
                     declared_width: int | None = None) -> tuple[np.ndarray, How, str]:
    """(risk per row, how it was read, the positive class) from pyfunc predict's output, or ScoresNotRisks.

    `check_distinct` (on the whole evaluation set, not on probes of a few rows): two distinct values are
    decisions. `declared_width`: the signature's output columns per row, which the output must match."""
    values = _as_array(raw)
    width = values.shape[1] if values.ndim == 2 else 1
    if declared_width is not None and declared_width != width:
        raise ScoresNotRisks(f"{what}: predict returned {describe_output(raw)} but the logged signature declares "
                             f"{declared_width} per patient; ModelBoard will not guess which is right. Log the model "
                             f"again with signature=infer_signature(X, <what predict returns>), and {HOW_TO_LOG_RISKS}")
    if width > 2:
        raise ScoresNotRisks(f"{what} returned {width} values per patient: ModelBoard evaluates models of one "
                             "outcome (present or absent)")
    if values.dtype.kind not in "biuf":
        raise ScoresNotRisks(f"{what} returned {describe_output(raw)}, not risks: {HOW_TO_LOG_RISKS}")
    values = values.astype(float)
    if width == 2:
        return _two_columns(raw, values, positive_class, what)
    flat = values.reshape(-1)
    _check_range(flat, what)
    if check_distinct and flat.size > 2 and np.unique(flat).size <= 2:
        raise ScoresNotRisks(f"{what} returned {describe_output(raw)}, not risks: a risk model gives patients "
                             f"different probabilities. {HOW_TO_LOG_RISKS[0].upper()}{HOW_TO_LOG_RISKS[1:]}")
    return flat, "pyfunc_risk", positive_class or "1"


def _two_columns(raw: Any, values: np.ndarray, positive_class: str | None,
                 what: str) -> tuple[np.ndarray, How, str]:
    _check_range(values.reshape(-1), what)
    if not np.allclose(values.sum(axis=1), 1.0, atol=ROW_SUM_TOLERANCE):
        raise ScoresNotRisks(f"{what} returned two values per patient that do not add up to 1, so they are not "
                             f"the probabilities of two classes: {HOW_TO_LOG_RISKS}")
    names = [str(c) for c in raw.columns] if isinstance(raw, pd.DataFrame) else []
    try:
        index = positive_index(names, positive_class, what) if names else 1
    except ScoresNotRisks:
        index = 1  # unnamed or unrecognised columns: scikit-learn's order, outcome last
    label = names[index] if names else (positive_class or "1")
    return values[:, index], "pyfunc_probabilities", label


def _check_range(values: np.ndarray, what: str) -> None:
    finite = values[np.isfinite(values)]
    if finite.size != values.size:
        raise ScoresNotRisks(f"{what} returned {values.size - finite.size} missing or infinite scores: a risk is "
                             "needed for every patient")
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        outside = finite[(finite < 0) | (finite > 1)][0]
        raise ScoresNotRisks(f"{what} returned values outside 0–1 (for example {outside:.4g}), which are not "
                             f"probabilities (log-odds or a regression?): {HOW_TO_LOG_RISKS}")
