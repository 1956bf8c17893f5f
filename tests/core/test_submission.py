"""Submission end to end on the demo: validation first, the worker process, stored results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.metrics import recall_score, roc_auc_score

from core.config import Settings
from core.domain.access import User, command_line_operator
from core.errors import NotFound, PermissionDenied, ValidationError
from core.services.installation import open_registry, open_store
from core.services.submission import StoredEvaluation, SubmissionRequest, submit_version
from data.train import tracking
from tests.conftest import fit_on_validation_cohort

REPO = Path(__file__).resolve().parents[2]


def stored_rows(settings: Settings, evaluation_id: str) -> pd.DataFrame:
    rows = open_store(settings).query_df("SELECT * FROM evaluation_rows WHERE evaluation_id = ? ORDER BY row_index",
                                         [evaluation_id])
    return rows.join(pd.DataFrame([json.loads(a) for a in rows["attributes"]]))


def test_stored_numbers_match_sklearn_on_the_stored_scores(demo_settings: Settings,
                                                           evaluated_v2: StoredEvaluation) -> None:
    result = evaluated_v2.result
    rows = stored_rows(demo_settings, evaluated_v2.id)
    assert len(rows) == result["n"] == 6_000
    assert result["overall"]["auroc"] == pytest.approx(roc_auc_score(rows["label"], rows["score"]), abs=1e-12)
    flagged = rows["score"] >= result["threshold"]
    assert result["overall"]["sensitivity"] == pytest.approx(recall_score(rows["label"], flagged), abs=1e-12)
    for group in ("Black", "White"):
        mask = rows["race_ethnicity"] == group
        expected = recall_score(rows["label"][mask], flagged[mask])
        assert result["subgroups"]["race_ethnicity"][group]["sensitivity"] == pytest.approx(expected, abs=1e-12)
    black, white = (result["subgroups"]["race_ethnicity"][g]["sensitivity"] for g in ("Black", "White"))
    assert black < white - 0.05  # the demo's pulse-oximetry bias, measured by ModelBoard itself


def test_worker_scores_equal_the_registered_models_predictions(demo_settings: Settings,
                                                               evaluated_v2: StoredEvaluation) -> None:
    rows = stored_rows(demo_settings, evaluated_v2.id)
    registry = open_registry(demo_settings)
    data = pd.read_parquet(registry.evaluation_dataset_path("sepsis-icu", 2))
    features = [c.name for c in registry.model_inputs("sepsis-icu", 2)]
    with tracking(demo_settings.tracking_uri):
        model = mlflow.pyfunc.load_model("models:/sepsis-icu/2")
    expected = np.asarray(model.predict(data[features].astype("float64")))[:, 1]
    assert np.allclose(rows["score"], expected, atol=1e-12)


def test_result_is_published_to_mlflow_and_the_version_is_in_review(demo_settings: Settings,
                                                                    evaluated_v2: StoredEvaluation) -> None:
    client = MlflowClient(demo_settings.tracking_uri)
    version = client.get_model_version("sepsis-icu", "2")
    assert version.tags["modelboard.status"] == "in_review"
    path = client.download_artifacts(str(version.run_id), "modelboard/evaluation.json")
    assert json.loads(Path(path).read_text()) == evaluated_v2.result
    assert len(evaluated_v2.result_sha256) == 64


def test_same_version_same_data_is_not_evaluated_twice(demo_settings: Settings,
                                                       evaluated_v2: StoredEvaluation) -> None:
    again = submit_version(demo_settings, open_store(demo_settings), open_registry(demo_settings),
                           command_line_operator("pytest"), SubmissionRequest("sepsis-icu", 2))
    assert again.reused and again.id == evaluated_v2.id


def counts(settings: Settings) -> tuple[int, int, int]:
    store = open_store(settings)
    return (store.query("SELECT count(*) AS n FROM evaluations")[0]["n"],
            store.query("SELECT count(*) AS n FROM audit_events")[0]["n"],
            len(list((settings.home / "evaluations").glob("*"))) if (settings.home / "evaluations").exists() else 0)


def test_refused_submission_leaves_nothing_behind(demo_settings: Settings, tmp_path: Path) -> None:
    registry = open_registry(demo_settings)
    data = pd.read_parquet(registry.evaluation_dataset_path("sepsis-icu", 3))
    data["mrn"] = [f"{i:08d}" for i in range(len(data))]
    path = tmp_path / "with-mrn.csv"
    data.to_csv(path, index=False)
    before = counts(demo_settings)
    with pytest.raises(ValidationError, match="column 'mrn' looks like a medical record number"):
        submit_version(demo_settings, open_store(demo_settings), registry, command_line_operator("pytest"),
                       SubmissionRequest("sepsis-icu", 3, eval_data=path))
    assert counts(demo_settings) == before
    assert "modelboard.status" not in MlflowClient(demo_settings.tracking_uri).get_model_version("sepsis-icu",
                                                                                                  "3").tags


def test_clinicians_cannot_submit(demo_settings: Settings) -> None:
    clinician = User(username="ng", full_name="Dr. Ng", role="clinician")
    with pytest.raises(PermissionDenied, match="may not submit"):
        submit_version(demo_settings, open_store(demo_settings), open_registry(demo_settings), clinician,
                       SubmissionRequest("sepsis-icu", 3))


def test_the_submitting_process_never_loads_the_model(demo_settings: Settings,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("models are loaded only in the worker process")

    monkeypatch.setattr(mlflow.pyfunc, "load_model", forbidden)
    monkeypatch.setattr(mlflow.sklearn, "load_model", forbidden)
    stored = submit_version(demo_settings, open_store(demo_settings), open_registry(demo_settings),
                            command_line_operator("pytest"), SubmissionRequest("readmission-30d", 1))
    assert stored.status == "complete" and stored.result["model"] == "readmission-30d"


def test_worker_refuses_a_malformed_id() -> None:
    result = subprocess.run([sys.executable, "-m", "core.worker", "../../etc"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "EVALUATION_ID" in result.stderr


def _unregistered_run(settings: Settings, with_model: bool) -> tuple[str, Path]:
    """A data scientist's run, logged with plain MLflow and not registered."""
    model, X, data = fit_on_validation_cohort(settings, 0.5)
    with tracking(settings.tracking_uri), mlflow.start_run(experiment_id=MlflowClient(
            settings.tracking_uri).get_experiment_by_name("sepsis-icu").experiment_id) as run:
        if with_model:
            mlflow.sklearn.log_model(model, name="model", input_example=X.head(3), serialization_format="skops",
                                     signature=mlflow.models.infer_signature(X, model.predict_proba(X)),
                                     pyfunc_predict_fn="predict_proba")
    path = Path(settings.home) / f"eval-{run.info.run_id}.parquet"
    data.to_parquet(path, index=False)
    return run.info.run_id, path


def test_an_unregistered_run_is_registered_and_evaluated(demo_settings: Settings) -> None:
    run_id, path = _unregistered_run(demo_settings, with_model=True)
    stored = submit_version(demo_settings, open_store(demo_settings), open_registry(demo_settings),
                            command_line_operator("pytest"),
                            SubmissionRequest("sepsis-icu", 0, eval_data=path, run_id=run_id))
    client = MlflowClient(demo_settings.tracking_uri)
    version = client.get_model_version("sepsis-icu", str(stored.version))
    assert version.run_id == run_id and version.tags["modelboard.status"] == "in_review"
    assert stored.result["comparison"]["production_version"] == 1


def test_a_run_without_a_model_registers_nothing(demo_settings: Settings) -> None:
    run_id, path = _unregistered_run(demo_settings, with_model=False)
    before = len(MlflowClient(demo_settings.tracking_uri).search_model_versions("name='sepsis-icu'"))
    with pytest.raises(NotFound, match="logged no model"):
        submit_version(demo_settings, open_store(demo_settings), open_registry(demo_settings),
                       command_line_operator("pytest"), SubmissionRequest("sepsis-icu", 0, eval_data=path,
                                                                          run_id=run_id))
    assert len(MlflowClient(demo_settings.tracking_uri).search_model_versions("name='sepsis-icu'")) == before
