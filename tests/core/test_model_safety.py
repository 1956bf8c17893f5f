"""A model whose MLmodel asks skops to trust dangerous types is refused before anything loads it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.models import infer_signature

from core.config import Settings, load_settings
from core.domain.access import command_line_operator
from core.domain.model_safety import untrusted_skops_types
from core.errors import ValidationError
from core.services.installation import open_registry, open_store
from core.services.packaged_model import unpack
from core.services.submission import SubmissionRequest, submit_version
from data.train import TREE_TRUSTED_TYPES, tracking
from tests.conftest import fit_on_validation_cohort

DANGEROUS = ["builtins.exec", "posix.system"]


def test_the_demo_models_need_only_allowed_types(demo_settings: Settings) -> None:
    registry = open_registry(demo_settings)
    for version in (1, 2, 3):
        flavors = registry.model_flavors("sepsis-icu", version)
        assert flavors["sklearn"]["serialization_format"] == "skops"
        assert untrusted_skops_types(flavors) == []
    assert untrusted_skops_types({"sklearn": {"serialization_format": "skops",
                                              "skops_trusted_types": TREE_TRUSTED_TYPES}}) == []


def test_types_outside_the_allow_list_are_named() -> None:
    flavors = {"sklearn": {"serialization_format": "skops",
                           "skops_trusted_types": ["sklearn.tree._tree.Tree", *DANGEROUS]}}
    assert untrusted_skops_types(flavors) == sorted(DANGEROUS)
    assert untrusted_skops_types(flavors, extra_allowed=DANGEROUS) == []
    assert untrusted_skops_types({"sklearn": {"serialization_format": "skops",
                                              "skops_trusted_types": "builtins.exec"}}) == ["'builtins.exec'"]


def test_every_flavour_saved_with_skops_is_checked() -> None:
    """MLflow's lightgbm flavour saves with skops too, listing its own trusted types in its own section."""
    lightgbm = {"serialization_format": "skops", "skops_trusted_types": [
        "lightgbm.sklearn.LGBMClassifier", "collections.OrderedDict", "lightgbm.basic.Booster"]}
    assert untrusted_skops_types({"lightgbm": lightgbm, "python_function": {}}) == []
    crafted = lightgbm | {"skops_trusted_types": [*lightgbm["skops_trusted_types"], "builtins.exec"]}
    assert untrusted_skops_types({"lightgbm": crafted}) == ["builtins.exec"]


def test_an_administrator_can_allow_reviewed_types(tmp_path: Path) -> None:
    settings = load_settings(env={"MODELBOARD_HOME": str(tmp_path),
                                  "MODELBOARD_SKOPS_TRUSTED_TYPES": "sklearn.foo.Bar, numpy.core.Baz"})
    assert settings.extra_skops_types == ("sklearn.foo.Bar", "numpy.core.Baz")


def _saved(settings: Settings, folder: Path) -> tuple[Path, object]:
    model, X, data = fit_on_validation_cohort(settings, 1.0)
    # skops happily loads a model while trusting more than it needs: that is how a crafted file gets through.
    mlflow.sklearn.save_model(model, str(folder / "model"), signature=infer_signature(X, model.predict_proba(X)),
                              serialization_format="skops", skops_trusted_types=DANGEROUS,
                              pyfunc_predict_fn="predict_proba")
    return folder / "model", data


def test_an_uploaded_zip_trusting_dangerous_types_is_refused(demo_settings: Settings, tmp_path: Path) -> None:
    folder, _ = _saved(demo_settings, tmp_path)
    assert yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["sklearn"]["skops_trusted_types"] == DANGEROUS
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in folder.rglob("*"):
            archive.write(path, str(path.relative_to(tmp_path)))
    with pytest.raises(ValidationError, match="builtins.exec, posix.system"):
        unpack(demo_settings, buffer.getvalue())


def test_a_run_trusting_dangerous_types_is_refused_before_registration(demo_settings: Settings,
                                                                      tmp_path: Path) -> None:
    model, X, data = fit_on_validation_cohort(demo_settings, 1.0)
    client = MlflowClient(demo_settings.tracking_uri)
    with tracking(demo_settings.tracking_uri), mlflow.start_run(
            experiment_id=client.get_experiment_by_name("sepsis-icu").experiment_id) as run:
        mlflow.sklearn.log_model(model, name="model", serialization_format="skops", skops_trusted_types=DANGEROUS,
                                 signature=infer_signature(X, model.predict_proba(X)),
                                 pyfunc_predict_fn="predict_proba")
    path = tmp_path / "eval.parquet"
    data.to_parquet(path, index=False)  # type: ignore[attr-defined]
    store = open_store(demo_settings)
    versions = len(client.search_model_versions("name='sepsis-icu'"))
    evaluations = store.query_one("SELECT count(*) AS n FROM evaluations")
    with pytest.raises(ValidationError, match="does not allow: builtins.exec"):
        submit_version(demo_settings, store, open_registry(demo_settings), command_line_operator("pytest"),
                       SubmissionRequest("sepsis-icu", 0, eval_data=path, run_id=run.info.run_id))
    assert len(client.search_model_versions("name='sepsis-icu'")) == versions
    assert store.query_one("SELECT count(*) AS n FROM evaluations") == evaluations


def test_the_worker_refuses_a_version_whose_trust_list_changed_after_submission(demo_settings: Settings) -> None:
    """Registered behind ModelBoard's back (plain MLflow), queued as if submitted: the worker still refuses."""
    import json
    import os
    import subprocess
    import sys
    import uuid

    from core.domain.clock import utc_now
    from tests.conftest import REPO

    model, X, _ = fit_on_validation_cohort(demo_settings, 1.0)
    client = MlflowClient(demo_settings.tracking_uri)
    with tracking(demo_settings.tracking_uri), mlflow.start_run(
            experiment_id=client.get_experiment_by_name("sepsis-icu").experiment_id) as run:
        mlflow.sklearn.log_model(model, name="model", serialization_format="skops", skops_trusted_types=DANGEROUS,
                                 pyfunc_predict_fn="predict_proba",
                                 signature=infer_signature(X, model.predict_proba(X)))
    version = open_registry(demo_settings).register_run("sepsis-icu", run.info.run_id)  # the adapter does not check
    evaluation_id, store = uuid.uuid4().hex, open_store(demo_settings)
    store.execute("INSERT INTO evaluations (id, model_name, model_version, use_case, use_case_version, status, "
                  "request, data_digest, submitted_by, submitted_at) VALUES (?, 'sepsis-icu', ?, 'sepsis-icu-adult', "
                  "1, 'queued', ?, 'x', 'pytest', ?)", [evaluation_id, version, json.dumps({}), utc_now()])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    worker = subprocess.run([sys.executable, "-m", "core.worker", evaluation_id], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env=env | {"MODELBOARD_HOME": str(demo_settings.home)})
    assert worker.returncode == 1 and "does not allow: builtins.exec, posix.system" in worker.stderr
    row = store.query_one("SELECT status, error FROM evaluations WHERE id = ?", [evaluation_id])
    assert row is not None and row["status"] == "failed" and "builtins.exec" in row["error"]
