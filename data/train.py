"""Train and log the demo models with the plain MLflow API, as a hospital data scientist would.

ModelBoard must work on what data scientists already put in MLflow, so the demo
uses nothing ModelBoard-specific: each version gets its own run with parameters,
validation metrics, the derivation and validation cohorts as dataset inputs, and
the model with signature and input example, registered under its model name.

Models are saved with skops and a per-model, minimal list of trusted types
(docs/decisions/0002-model-serialization.md): a logistic-regression pipeline
needs none beyond skops' defaults, a gradient-boosting ensemble needs exactly
`sklearn.tree._tree.Tree`. MLflow re-loads the model with that list while
saving, so a type missing from it fails the build rather than a later load.
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
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from data.cohort import CHARTED_FEATURES, FEATURES, LABEL, READMISSION_FEATURES, READMISSION_LABEL, SENSITIVE

SEPSIS = "sepsis-icu"
SEPSIS_CHARTED = "sepsis-icu-charted"
READMISSION = "readmission-30d"
TARGET_SENSITIVITY = 0.85  # each threshold flags 85 of 100 patients with the outcome in the derivation cohort
VALIDATION_SHARE = 0.3
LINEAR_TRUSTED_TYPES: list[str] = []  # StandardScaler + LogisticRegression: all in skops' default trusted set
TREE_TRUSTED_TYPES: list[str] = ["sklearn.tree._tree.Tree"]  # the fitted trees of a gradient-boosting ensemble
HIST_TRUSTED_TYPES: list[str] = [  # a histogram gradient-boosting classifier's fitted parts, as skops reports them
    "sklearn._loss.link.Interval", "sklearn._loss.link.LogitLink", "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss", "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
GB_HYPERPARAMETERS: dict[str, Any] = {"n_estimators": 150, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8}
HGB_HYPERPARAMETERS: dict[str, Any] = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15}
LR_HYPERPARAMETERS: dict[str, Any] = {"C": 1.0, "max_iter": 1000}


@dataclass(frozen=True)
class LoggedVersion:
    model_name: str
    version: int
    run_id: str
    algorithm: str
    validation_auroc: float


@dataclass(frozen=True)
class TrainingSpec:
    """Everything that makes one registered version: what to fit, on what, and how to describe it."""

    model_name: str
    run_name: str
    algorithm: str
    estimator: Any
    trusted_types: list[str]
    cohort: pd.DataFrame
    features: list[str]
    label: str
    time_column: str
    outcome: str
    note: str
    version_description: str
    extra_params: dict[str, str]
    categorical: tuple[str, ...] = ()  # inputs kept as text (the rest are passed as float64)
    pyfunc_predict_fn: str | None = "predict_proba"  # None: logged as MLflow's default (predict gives classes)


def _pip_requirements() -> list[str]:
    """Pinned from the installed packages: MLflow otherwise infers them by re-loading the model."""
    names = ["scikit-learn", "skops", "numpy", "scipy", "pandas"]
    return [f"{n}=={importlib.metadata.version(n)}" for n in names] + [f"mlflow=={mlflow.__version__}"]


def _threshold_for_sensitivity(y: np.ndarray, score: np.ndarray, target: float) -> float:
    """The highest score (to 4 decimals, as logged) that still flags `target` of the positives."""
    positives = np.sort(score[y == 1])
    exact = positives[int(np.floor((1 - target) * len(positives)))]
    return round(float(np.floor(exact * 1e4) / 1e4), 4)  # rounded down, so the logged value flags as many


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
    """Derivation (70 %) and validation (30 %) cohorts, stratified on the outcome, in admission order."""
    train, valid = train_test_split(df, test_size=VALIDATION_SHARE, stratify=df[label], random_state=seed)
    return train.sort_index(), valid.sort_index()


def _experiment(client: MlflowClient, name: str, artifact_root: Path | None) -> str:
    """The experiment, created with its own artifact folder (the sqlite store would use ./mlartifacts), or where
    an MLflow server keeps artifacts (`artifact_root` None)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = (artifact_root / name).as_uri() if artifact_root is not None else None
    return str(client.create_experiment(name, artifact_location=location))


def _params(spec: TrainingSpec, train: pd.DataFrame, valid: pd.DataFrame, threshold: float) -> dict[str, str]:
    period = train[spec.time_column]
    return {
        "algorithm": spec.algorithm, "features": ",".join(spec.features), "outcome": spec.outcome,
        "decision_threshold": f"{threshold:.4f}", "threshold_rule": f"sensitivity {TARGET_SENSITIVITY:.2f} "
        "in the derivation cohort", "n_derivation": str(len(train)), "n_validation": str(len(valid)),
        "training_period": f"{period.min():%Y-%m-%d} to {period.max():%Y-%m-%d}", **spec.extra_params,
    }


def _log_cohorts(spec: TrainingSpec, train: pd.DataFrame, valid: pd.DataFrame) -> None:
    """The derivation cohort (inputs and label) as training data; the validation cohort, with the
    sensitive attributes ModelBoard needs for subgroups, as evaluation data. Latent truth such as
    sao2_true is never logged."""
    training = train[spec.features + [spec.label]]
    mlflow.log_input(from_pandas(training, targets=spec.label, name=f"{spec.model_name}-derivation-cohort"),
                     context="training")
    evaluation_columns = ["encounter_id", *spec.features, *[c for c in SENSITIVE if c not in spec.features]]
    valid = valid[evaluation_columns + [spec.label]]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "validation-cohort.parquet"
        valid.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path="datasets")
    # The Parquet artifact is the dataset's source, so ModelBoard can fetch exactly these patients.
    source = mlflow.get_artifact_uri("datasets/validation-cohort.parquet")
    if source.startswith("mlflow-artifacts:"):  # an MLflow server's artifact proxy: reachable over HTTP
        source = f"{mlflow.get_tracking_uri().rstrip('/')}/api/2.0/mlflow-artifacts/artifacts/" \
                 f"{source.removeprefix('mlflow-artifacts:').lstrip('/')}"
    mlflow.log_input(from_pandas(valid, source=source, targets=spec.label,
                                 name=f"{spec.model_name}-validation-cohort"), context="evaluation")


def _train_and_log(client: MlflowClient, spec: TrainingSpec, *, seed: int, artifact_root: Path | None,
                   tags: dict[str, str]) -> LoggedVersion:
    train, valid = _split(spec.cohort, spec.label, seed)
    types = {f: object if f in spec.categorical else "float64" for f in spec.features}
    x_train, x_valid = train[spec.features].astype(types), valid[spec.features].astype(types)
    model = spec.estimator.fit(x_train, train[spec.label])
    threshold = _threshold_for_sensitivity(train[spec.label].to_numpy(), model.predict_proba(x_train)[:, 1],
                                           TARGET_SENSITIVITY)
    proba = model.predict_proba(x_valid)
    metrics = _metrics(valid[spec.label].to_numpy(), proba[:, 1], threshold)
    experiment_id = _experiment(client, spec.model_name, artifact_root)
    with mlflow.start_run(experiment_id=experiment_id, run_name=spec.run_name,
                          tags=tags | {"mlflow.note.content": spec.note}) as run:
        mlflow.log_params(_params(spec, train, valid, threshold))
        mlflow.log_metrics(metrics)
        _log_cohorts(spec, train, valid)
        how = {"pyfunc_predict_fn": spec.pyfunc_predict_fn} if spec.pyfunc_predict_fn else {}
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(x_valid, proba), input_example=x_valid.head(5),
            registered_model_name=spec.model_name, serialization_format="skops",
            skops_trusted_types=spec.trusted_types, pip_requirements=_pip_requirements(), **how,
        )
    version = int(info.registered_model_version)
    client.update_model_version(spec.model_name, str(version), description=spec.version_description)
    return LoggedVersion(spec.model_name, version, run.info.run_id, spec.algorithm, metrics["val_auroc"])


def _logistic() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(**LR_HYPERPARAMETERS))])


def _boosting(seed: int) -> GradientBoostingClassifier:
    return GradientBoostingClassifier(**GB_HYPERPARAMETERS, random_state=seed)


def _as_params(hyperparameters: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in hyperparameters.items()}


def _sepsis_specs(cohort: pd.DataFrame, post_change: pd.DataFrame, seed: int) -> list[TrainingSpec]:
    common: dict[str, Any] = {"model_name": SEPSIS, "features": FEATURES, "label": LABEL,
                              "time_column": "admitted_at", "outcome": "sepsis within 48 hours of ICU admission"}
    lr, gb = _as_params(LR_HYPERPARAMETERS), _as_params(GB_HYPERPARAMETERS)
    return [
        TrainingSpec(**common, run_name="sepsis-lr-baseline", algorithm="logistic_regression", estimator=_logistic(),
                     trusted_types=LINEAR_TRUSTED_TYPES, cohort=cohort,
                     note="Baseline: standardised logistic regression on vitals and labs at ICU admission.",
                     version_description="Logistic regression on 10 admission vitals and labs; "
                                         "lactate measured with assay A.",
                     extra_params={"lactate_assay": "A", **lr}),
        TrainingSpec(**common, run_name="sepsis-gbm", algorithm="gradient_boosting", estimator=_boosting(seed),
                     trusted_types=TREE_TRUSTED_TYPES, cohort=cohort,
                     note="Gradient boosting on the same features and admissions as version 1.",
                     version_description="Gradient-boosted trees on the same 10 vitals and labs; lactate assay A.",
                     extra_params={"lactate_assay": "A", **gb}),
        TrainingSpec(**common, run_name="sepsis-gbm-assay-b", algorithm="gradient_boosting",
                     estimator=_boosting(seed), trusted_types=TREE_TRUSTED_TYPES, cohort=post_change,
                     note="Retrained on admissions after the lab switched to lactate assay B, which reads "
                          "1.25 x + 0.3 mmol/L of the old assay.",
                     version_description="Gradient-boosted trees retrained on admissions measured with the new "
                                         "lactate assay B.",
                     extra_params={"lactate_assay": "B", **gb}),
    ]


def _charted_pipeline(seed: int) -> Pipeline:
    """Admission source one-hot encoded; numbers as charted, lactate empty where not ordered (the trees route
    a missing value themselves)."""
    prepare = ColumnTransformer([("numbers", "passthrough", FEATURES),
                                 ("source", OneHotEncoder(handle_unknown="ignore"), ["admission_source"])])
    return Pipeline([("prepare", prepare),
                     ("model", HistGradientBoostingClassifier(**HGB_HYPERPARAMETERS, random_state=seed))])


def _charted_spec(charted: pd.DataFrame, seed: int) -> TrainingSpec:
    """Logged the way most data scientists do: no pyfunc_predict_fn, so MLflow's predict returns classes."""
    return TrainingSpec(
        model_name=SEPSIS_CHARTED, run_name="sepsis-hgb-as-charted", algorithm="hist_gradient_boosting",
        estimator=_charted_pipeline(seed), trusted_types=HIST_TRUSTED_TYPES, cohort=charted,
        features=CHARTED_FEATURES, label=LABEL, time_column="admitted_at",
        outcome="sepsis within 48 hours of ICU admission",
        note="Histogram gradient boosting on the admission record as the EHR holds it: admission source, and "
             "lactate left empty when it was not ordered.",
        version_description="Gradient-boosted trees on 10 vitals and labs as charted (lactate missing when not "
                            "measured) and the admission source.",
        extra_params={"lactate_assay": "A", "lactate": "as charted (missing when not ordered)",
                      **_as_params(HGB_HYPERPARAMETERS)},
        categorical=("admission_source",), pyfunc_predict_fn=None)


def _readmission_spec(readmission: pd.DataFrame) -> TrainingSpec:
    return TrainingSpec(
        model_name=READMISSION, run_name="readmission-lr", algorithm="logistic_regression", estimator=_logistic(),
        trusted_types=LINEAR_TRUSTED_TYPES, cohort=readmission, features=READMISSION_FEATURES,
        label=READMISSION_LABEL, time_column="discharged_at",
        outcome="unplanned readmission within 30 days of discharge",
        note="Logistic regression on facts known at discharge.",
        version_description="Logistic regression on 8 facts known at discharge.",
        extra_params=_as_params(LR_HYPERPARAMETERS))


@contextmanager
def tracking(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (tracking and registry) at `uri` for a while, then put back
    exactly what was there. mlflow.set_tracking_uri also writes MLFLOW_TRACKING_URI into
    os.environ, and re-setting the URI read before would pin MLflow's cwd default, so both
    URIs are unset on exit and the environment is restored."""
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets it (documented in the source)
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def log_demo_models(*, tracking_uri: str, artifact_root: Path | None, seed: int, git_commit: str | None,
                    cohort: pd.DataFrame, post_change_cohort: pd.DataFrame, readmission_cohort: pd.DataFrame,
                    charted_cohort: pd.DataFrame, logged_by: str = "lee") -> list[LoggedVersion]:
    """Train, log and register every demo version, then point `production` at v1 of each model."""
    with tracking(tracking_uri), warnings.catch_warnings():
        # Integer columns (age, sex, the label) are complete in these cohorts; MLflow's hint does not apply.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        tags = {"mlflow.user": logged_by, "modelboard.demo": "true"}
        if git_commit is not None:
            tags["mlflow.source.git.commit"] = git_commit
        specs = _sepsis_specs(cohort, post_change_cohort, seed) + [_readmission_spec(readmission_cohort),
                                                                   _charted_spec(charted_cohort, seed)]
        logged = [_train_and_log(client, spec, seed=seed, artifact_root=artifact_root, tags=tags) for spec in specs]
        _describe_and_alias(client)
        return logged


def _describe_and_alias(client: MlflowClient) -> None:
    client.update_registered_model(SEPSIS, description=(
        "Predicts sepsis within 48 hours of ICU admission from admission vitals and labs, "
        "to prompt an early bedside sepsis assessment."))
    client.update_registered_model(READMISSION, description=(
        "Predicts unplanned readmission within 30 days of discharge, to target follow-up calls."))
    client.update_registered_model(SEPSIS_CHARTED, description=(
        "Predicts sepsis within 48 hours of ICU admission from the admission record as charted, missing lactate "
        "included, to prompt an early bedside sepsis assessment."))
    client.set_registered_model_alias(SEPSIS, "production", "1")
    client.set_registered_model_alias(READMISSION, "production", "1")
