"""The registry adapter against a real MLflow sqlite store in a temporary folder."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from core.adapters.registry import Registry
from core.config import load_settings
from core.domain.access import User
from core.errors import NotFound, PermissionDenied, ValidationError
from core.services import catalog

MODEL = "sepsis-test"


def _log_version(client: MlflowClient, experiment_id: str, seed: int, commit: str | None) -> str:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"lactate": rng.gamma(2, 1, 300), "heart_rate": rng.normal(90, 15, 300)})
    y = (X["lactate"] + rng.normal(0, 1, 300) > 2.5).astype(int)
    model = LogisticRegression().fit(X, y)
    tags = {"mlflow.user": "lee"} | ({"mlflow.source.git.commit": commit} if commit else {})
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"lr-{seed}", tags=tags) as run:
        mlflow.log_params({"algorithm": "logistic_regression", "C": 1.0})
        mlflow.log_metrics({"val_auroc": 0.8 + seed / 100, "val_sensitivity": 0.85})
        dataset = mlflow.data.from_pandas(X.assign(label=y), targets="label", name="validation-cohort")
        mlflow.log_input(dataset, context="evaluation")
        mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL,
                                 serialization_format="cloudpickle", input_example=X.head(2))
    return str(run.info.run_id)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Built once for the module: logging models is the slow part."""
    settings = load_settings(env={}, home=tmp_path_factory.mktemp("registry") / "home")
    settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    experiment_id = client.create_experiment(MODEL, artifact_location=(settings.artifact_root / MODEL).as_uri())
    _log_version(client, experiment_id, 1, "abc123def456")
    _log_version(client, experiment_id, 2, None)
    client.set_registered_model_alias(MODEL, "production", "1")
    client.set_registered_model_alias(MODEL, "challenger", "2")
    client.set_model_version_tag(MODEL, "2", "modelboard.status", "in_review")
    return Registry(settings.tracking_uri)


def test_lists_models_with_aliases(registry: Registry) -> None:
    [model] = registry.list_models()
    assert model.name == MODEL
    assert model.aliases == {"production": 1, "challenger": 2}
    assert model.version_count == 2 and model.latest_version == 2


def test_versions_carry_aliases_status_metrics_and_author(registry: Registry) -> None:
    v2, v1 = registry.list_versions(MODEL)
    assert (v1.version, v1.aliases, v1.status) == (1, ("production",), "registered")
    assert (v2.version, v2.aliases, v2.status) == (2, ("challenger",), "in_review")
    assert v1.key_metrics["val_auroc"] == pytest.approx(0.81)
    assert v1.logged_by == "lee"


def test_version_detail_has_lineage(registry: Registry) -> None:
    detail = registry.get_version(MODEL, 1)
    run = MlflowClient(registry.tracking_uri).get_run(detail.summary.run_id or "")
    assert detail.params == run.data.params and detail.params["algorithm"] == "logistic_regression"
    assert detail.git_commit == "abc123def456"
    [dataset] = detail.datasets
    assert dataset.context == "evaluation" and dataset.name == "validation-cohort"
    assert dataset.digest == run.inputs.dataset_inputs[0].dataset.digest
    assert dataset.rows == 300
    assert registry.get_version(MODEL, 2).git_commit is None


def test_unknown_model_or_version_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        registry.list_versions("no-such-model")
    with pytest.raises(NotFound):
        registry.get_version(MODEL, 99)
    with pytest.raises(ValidationError):
        registry.get_version("bad'name;--", 1)


def test_catalog_checks_permissions(registry: Registry) -> None:
    disabled = User(username="x", full_name="Former clinician", role="clinician", active=False)
    with pytest.raises(PermissionDenied):
        catalog.list_models(registry, disabled)
    clinician = User(username="ng", full_name="Dr. Ng", role="clinician")
    items = catalog.attention_items(registry, clinician)
    assert items[0].version == 2 and "waits for your review" in items[0].headline


def test_registry_never_loads_models(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("the registry adapter must not load models")

    monkeypatch.setattr(mlflow.pyfunc, "load_model", forbidden)
    monkeypatch.setattr(mlflow.sklearn, "load_model", forbidden)
    registry.list_models()
    registry.get_version(MODEL, 1)
