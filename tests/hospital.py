"""A hospital's own data and models, made the way an outside data scientist would — not with the demo's code.

A general-ward deterioration cohort (unplanned ICU transfer or death within 24 h) with what real EHR extracts
have: a lab that is often not measured (lactate, more often missing for one group), a text category with
gaps (admission source), a true/false flag (on oxygen), whole-number age, and skewed groups (one ethnicity
group of about 1 %). It goes through CSV files like any extract, and the models are fitted and logged with
the plain MLflow API, each in one of the ways data scientists really log models. Nothing here uses an option
that exists for ModelBoard's sake.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from data.train import tracking

NUMBERS = ["age", "heart_rate", "resp_rate", "spo2", "lactate", "creatinine"]
COMPLETE_NUMBERS = ["age", "heart_rate", "resp_rate", "spo2", "creatinine"]
MIXED = [*NUMBERS, "on_oxygen", "admission_source"]
LABEL, NAMED_LABEL, POSITIVE = "deteriorated", "outcome", "deteriorated"
SENSITIVE = ["sex", "ethnicity"]
ETHNICITIES = ["White British", "South Asian", "Black Caribbean", "Other"]
SOURCES = ["emergency", "elective", "transfer", "clinic"]


def use_case(name: str, models: list[str], *, label: str = LABEL, threshold: float = 0.2,
             extra: str = "") -> str:
    """The hospital's use case for its ward models, as YAML (`extra`: more top-level lines)."""
    return (f"name: {name}\ntitle: Early warning of deterioration on general wards\n"
            "intended_use: Flag ward patients at risk of unplanned ICU transfer or death within 24 hours for a "
            "review.\ntarget_population: Adults on general medical and surgical wards\n"
            f"outcome: Deterioration within 24 hours\nthreshold: {threshold}\nlabel: {label}\n"
            f"models: [{', '.join(models)}]\nsensitive_attributes: [sex, ethnicity]\n{extra}")


def ward_cohort(n: int, seed: int) -> pd.DataFrame:
    """Deterioration depends on vitals, lactate, oxygen and source — not on ethnicity; missingness does."""
    rng = np.random.default_rng(seed)
    ethnicity = rng.choice(ETHNICITIES, n, p=[0.82, 0.12, 0.05, 0.01])
    sick = rng.gamma(1.5, 0.8, n)
    frame = pd.DataFrame({
        "encounter_id": [f"W{seed}-{i:06d}" for i in range(n)],
        "sex": rng.choice(["female", "male"], n),
        "ethnicity": ethnicity,
        "age": rng.integers(18, 100, n),
        "heart_rate": np.round(80 + 9 * sick + rng.normal(0, 12, n), 0),
        "resp_rate": np.round(16 + 2 * sick + rng.normal(0, 3, n), 0),
        "spo2": np.round(np.clip(97 - 1.5 * sick + rng.normal(0, 1.5, n), 75, 100), 0),
        "lactate": np.round(np.exp(0.1 + 0.3 * sick + rng.normal(0, 0.35, n)), 2),
        "creatinine": np.round(np.exp(-0.05 + 0.1 * sick + rng.normal(0, 0.3, n)), 2),
        "on_oxygen": rng.random(n) < 0.15 + 0.2 * (sick > 2),
        "admission_source": rng.choice(SOURCES, n, p=[0.55, 0.25, 0.12, 0.08]).astype(object),
    })
    risk = -4.2 + 0.9 * sick + 0.5 * frame["on_oxygen"] + 0.4 * (frame["admission_source"] == "transfer")
    frame[LABEL] = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(int)
    frame[NAMED_LABEL] = np.where(frame[LABEL] == 1, POSITIVE, "stable")
    not_measured = rng.random(n) < np.where(ethnicity == "South Asian", 0.35, 0.15)
    frame.loc[not_measured, "lactate"] = np.nan
    frame.loc[rng.random(n) < 0.05, "admission_source"] = None
    return frame


def as_extract(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Through a CSV file, as an EHR extract arrives (missing text reads back as NaN, flags as bool)."""
    frame.to_csv(path, index=False)
    return pd.read_csv(path)


@dataclass(frozen=True)
class Logged:
    """One model as its data scientist fitted and logged it: the run, the fitted estimator, its inputs."""

    case: str
    run_id: str
    estimator: Any  # what computes the reference scores: predict_proba(X) of the fitted model
    inputs: list[str]
    label: str = LABEL
    positive_index: int = 1


def log_run(tracking_uri: str, experiment: str, artifact_root: Path | None, log: Callable[[], None]) -> str:
    """Run `log` inside a new MLflow run of `experiment` (created with its own artifact folder, or, for an MLflow
    server, where the server keeps artifacts)."""
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    location = (artifact_root / experiment).as_uri() if artifact_root is not None else None
    experiment_id = found.experiment_id if found else client.create_experiment(experiment, artifact_location=location)
    with tracking(tracking_uri), mlflow.start_run(experiment_id=experiment_id) as run:
        log()
    return str(run.info.run_id)


def signature_of(X: pd.DataFrame, y: Any) -> Any:
    return infer_signature(X, y)


class RiskWrapper(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A data scientist's own pyfunc: predict returns the probability of deterioration, one per patient."""

    def __init__(self, model: Any, inputs: list[str]) -> None:
        self.model, self.inputs = model, inputs

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return np.asarray(self.model.predict_proba(model_input[self.inputs])[:, 1])


class DecisionWrapper(RiskWrapper):
    """The same model, but predict returns the decision (0/1): what a careless wrapper does."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return np.asarray(self.model.predict(model_input[self.inputs]))


def log_ward_pipeline(tracking_uri: str, artifact_root: Path | None, name: str, train: pd.DataFrame,
                      **boosting: Any) -> Pipeline:
    """A hospital's own model, logged the ordinary way and registered as `name`: numbers and the flag passed
    through, admission source one-hot encoded, gradient boosting (missing values handled by the model), the
    signature inferred from the training extract. Returns the fitted pipeline."""
    prepare = ColumnTransformer([("numbers", "passthrough", NUMBERS + ["on_oxygen"]),
                                 ("source", OneHotEncoder(handle_unknown="ignore"), ["admission_source"])])
    model = Pipeline([("prepare", prepare), ("model", HistGradientBoostingClassifier(random_state=0, **boosting))])

    def fit_and_log() -> None:
        model.fit(train[MIXED], train[LABEL])
        signature = mlflow.models.infer_signature(train[MIXED], model.predict_proba(train[MIXED]))
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle", registered_model_name=name,
                                 signature=signature)

    log_run(tracking_uri, name, artifact_root, fit_and_log)
    return model
