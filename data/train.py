"""Train and log the demo models with the plain MLflow API, as a hospital data scientist would.

Each version gets its own run: parameters, validation metrics, the derivation and
validation cohorts as dataset inputs, and the model with signature and input
example, registered under its model name. Models are saved with skops and an
explicit list of trusted types (docs/decisions/0002-model-serialization.md).
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature
from sklearn.base import ClassifierMixin
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from data.cohort import FEATURES, LABEL, READMISSION_FEATURES, READMISSION_LABEL, SENSITIVE

SEPSIS = "sepsis-icu"
READMISSION = "readmission-30d"
TARGET_SENSITIVITY = 0.85  # thresholds are set on the derivation cohort to flag 85 of 100 cases
SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]  # the only non-default type these models need


@dataclass(frozen=True)
class LoggedVersion:
    model_name: str
    version: int
    run_id: str
    algorithm: str
    validation_auroc: float


@dataclass(frozen=True)
class TrainingSpec:
    model_name: str
    run_name: str
    algorithm: str
    estimator: Any
    cohort: pd.DataFrame
    features: list[str]
    label: str
    outcome: str
    note: str
    version_description: str
    extra_params: dict[str, str]


def _pip_requirements() -> list[str]:
    """Pinned from the installed packages, so MLflow does not infer them by loading the model."""
    names = ["scikit-learn", "skops", "numpy", "scipy", "pandas"]
    return [f"{n}=={importlib.metadata.version(n)}" for n in names] + [f"mlflow=={mlflow.__version__}"]


def _threshold_for_sensitivity(y: np.ndarray, score: np.ndarray, target: float) -> float:
    positives = np.sort(score[y == 1])
    return float(positives[int(np.floor((1 - target) * len(positives)))])


def _metrics(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    flagged = score >= threshold
    tp, fp = int(np.sum(flagged & (y == 1))), int(np.sum(flagged & (y == 0)))
    fn, tn = int(np.sum(~flagged & (y == 1))), int(np.sum(~flagged & (y == 0)))
    return {
        "val_auroc": float(roc_auc_score(y, score)),
        "val_auprc": float(average_precision_score(y, score)),
        "val_brier": float(brier_score_loss(y, score)),
        "val_sensitivity": tp / max(tp + fn, 1),
        "val_specificity": tn / max(tn + fp, 1),
        "val_ppv": tp / max(tp + fp, 1),
        "val_prevalence": float(np.mean(y)),
    }


def _split(df: pd.DataFrame, label: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, valid = train_test_split(df, test_size=0.3, stratify=df[label], random_state=seed)
    return train.sort_index(), valid.sort_index()


def _experiment(client: MlflowClient, name: str, artifact_root: Path) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=(artifact_root / name).as_uri()))


def _train_and_log(client: MlflowClient, spec: TrainingSpec, *, seed: int, artifact_root: Path,
                   tags: dict[str, str]) -> LoggedVersion:
    train, valid = _split(spec.cohort, spec.label, seed)
    X_train, X_valid = train[spec.features].astype("float64"), valid[spec.features].astype("float64")
    model: ClassifierMixin = spec.estimator.fit(X_train, train[spec.label])
    threshold = _threshold_for_sensitivity(train[spec.label].to_numpy(), model.predict_proba(X_train)[:, 1],
                                           TARGET_SENSITIVITY)
    proba = model.predict_proba(X_valid)
    metrics = _metrics(valid[spec.label].to_numpy(), proba[:, 1], threshold)
    time_col = "admitted_at" if "admitted_at" in train else "discharged_at"
    params = {
        "algorithm": spec.algorithm, "features": ",".join(spec.features), "outcome": spec.outcome,
        "decision_threshold": f"{threshold:.4f}", "n_derivation": str(len(train)), "n_validation": str(len(valid)),
        "training_period": f"{train[time_col].min():%Y-%m-%d} to {train[time_col].max():%Y-%m-%d}",
        **spec.extra_params,
    }
    experiment_id = _experiment(client, spec.model_name, artifact_root)
    with mlflow.start_run(experiment_id=experiment_id, run_name=spec.run_name,
                          tags=tags | {"mlflow.note.content": spec.note}) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        dataset_cols = spec.features + [spec.label]
        mlflow.log_input(from_pandas(train[dataset_cols], targets=spec.label,
                                                 name=f"{spec.model_name}-derivation-cohort"), context="training")
        eval_cols = ["encounter_id"] + spec.features + [c for c in SENSITIVE if c not in spec.features] + [spec.label]
        _log_validation_cohort(valid[eval_cols], spec)
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X_valid, proba), input_example=X_valid.head(5),
            registered_model_name=spec.model_name, serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES, pyfunc_predict_fn="predict_proba",
            pip_requirements=_pip_requirements(),
        )
    version = int(info.registered_model_version)
    client.update_model_version(spec.model_name, str(version), description=spec.version_description)
    return LoggedVersion(spec.model_name, version, run.info.run_id, spec.algorithm, metrics["val_auroc"])


def _log_validation_cohort(valid: pd.DataFrame, spec: TrainingSpec) -> None:
    """Log the validation cohort as a Parquet artifact and as the run's evaluation dataset,
    so ModelBoard can evaluate the version on exactly these patients."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "validation-cohort.parquet"
        valid.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path="datasets")
    uri = mlflow.get_artifact_uri("datasets/validation-cohort.parquet")
    dataset = from_pandas(valid, source=uri, targets=spec.label, name=f"{spec.model_name}-validation-cohort")
    mlflow.log_input(dataset, context="evaluation")


def _logistic() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))])


def _boosting(seed: int) -> GradientBoostingClassifier:
    return GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.1, subsample=0.8,
                                      random_state=seed)


def _specs(cohort: pd.DataFrame, post_change: pd.DataFrame, readmission: pd.DataFrame,
           seed: int) -> list[TrainingSpec]:
    sepsis = "sepsis within 48 hours of ICU admission"
    gb_params = {"n_estimators": "150", "max_depth": "3", "learning_rate": "0.1", "subsample": "0.8"}
    return [
        TrainingSpec(SEPSIS, "sepsis-lr-baseline", "logistic_regression", _logistic(), cohort, FEATURES, LABEL,
                     sepsis, "Baseline: standardised logistic regression on vitals and labs at admission.",
                     "Logistic regression on 10 admission vitals and labs; lactate measured with assay A.",
                     {"lactate_assay": "A", "C": "1.0"}),
        TrainingSpec(SEPSIS, "sepsis-gbm", "gradient_boosting", _boosting(seed), cohort, FEATURES, LABEL, sepsis,
                     "Gradient boosting on the same features and cohort as v1.",
                     "Gradient-boosted trees on the same 10 vitals and labs; lactate assay A.",
                     {"lactate_assay": "A", **gb_params}),
        TrainingSpec(SEPSIS, "sepsis-gbm-assay-b", "gradient_boosting", _boosting(seed), post_change, FEATURES,
                     LABEL, sepsis,
                     "Retrained on admissions after the lab switched to lactate assay B (reads 1.25x + 0.3 mmol/L).",
                     "Gradient-boosted trees retrained on admissions measured with the new lactate assay B.",
                     {"lactate_assay": "B", **gb_params}),
        TrainingSpec(READMISSION, "readmission-lr", "logistic_regression", _logistic(), readmission,
                     READMISSION_FEATURES, READMISSION_LABEL, "unplanned readmission within 30 days of discharge",
                     "Logistic regression on discharge facts.",
                     "Logistic regression on 8 facts known at discharge.", {"C": "1.0"}),
    ]


@contextmanager
def tracking(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at `uri` for a while. mlflow.set_tracking_uri also writes
    MLFLOW_TRACKING_URI into os.environ, so the environment is restored too."""
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def log_demo_models(*, tracking_uri: str, artifact_root: Path, seed: int, git_commit: str | None,
                    cohort: pd.DataFrame, post_change_cohort: pd.DataFrame, readmission_cohort: pd.DataFrame,
                    logged_by: str = "lee") -> list[LoggedVersion]:
    """Train, log and register every demo version; `production` → v1 of each model."""
    with tracking(tracking_uri), warnings.catch_warnings():
        # Integer columns (age, sex, the label) are complete in these cohorts; MLflow's hint does not apply.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        client = MlflowClient(tracking_uri)
        tags = {"mlflow.user": logged_by, "modelboard.demo": "true"}
        if git_commit:
            tags["mlflow.source.git.commit"] = git_commit
        logged = [_train_and_log(client, spec, seed=seed, artifact_root=artifact_root, tags=tags)
                  for spec in _specs(cohort, post_change_cohort, readmission_cohort, seed)]
        _describe_and_alias(client)
        return logged


def _describe_and_alias(client: MlflowClient) -> None:
    client.update_registered_model(SEPSIS, description=(
        "Predicts sepsis within 48 hours of ICU admission from admission vitals and labs, "
        "to prompt an early bedside sepsis assessment."))
    client.update_registered_model(READMISSION, description=(
        "Predicts unplanned readmission within 30 days of discharge, to target follow-up calls."))
    client.set_registered_model_alias(SEPSIS, "production", "1")
    client.set_registered_model_alias(READMISSION, "production", "1")
