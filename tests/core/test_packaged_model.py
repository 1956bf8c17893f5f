"""Uploading a packaged MLflow model (a zip of save_model's folder): stored without loading, then evaluated."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature

from core.config import Settings
from core.domain.access import command_line_operator
from core.errors import ValidationError
from core.services.installation import open_registry, open_store
from core.services.packaged_model import submit_packaged_model, unpack
from tests.conftest import fit_on_validation_cohort

OPERATOR = command_line_operator("pytest")


def saved_model_zip(settings: Settings, folder: Path) -> tuple[bytes, Path]:
    model, X, data = fit_on_validation_cohort(settings, 2.0)
    mlflow.sklearn.save_model(model, str(folder / "model"), signature=infer_signature(X, model.predict_proba(X)),
                              serialization_format="skops", pyfunc_predict_fn="predict_proba")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in (folder / "model").rglob("*"):
            archive.write(path, str(path.relative_to(folder)))
    eval_path = folder / "eval.parquet"
    data.to_parquet(eval_path, index=False)
    return buffer.getvalue(), eval_path


def test_uploaded_model_is_logged_registered_and_evaluated(demo_settings: Settings, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    content, eval_path = saved_model_zip(demo_settings, tmp_path)

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("an uploaded model is stored, never loaded, outside the worker")

    monkeypatch.setattr(mlflow.pyfunc, "load_model", forbidden)
    monkeypatch.setattr(mlflow.sklearn, "load_model", forbidden)
    stored = submit_packaged_model(demo_settings, open_store(demo_settings), open_registry(demo_settings), OPERATOR,
                                   model="sepsis-icu", content=content, eval_path=eval_path)
    version = MlflowClient(demo_settings.tracking_uri).get_model_version("sepsis-icu", str(stored.version))
    run = MlflowClient(demo_settings.tracking_uri).get_run(str(version.run_id))
    assert run.data.tags["mlflow.user"] == OPERATOR.username and run.data.tags["modelboard.uploaded"] == "true"
    assert stored.status == "complete" and stored.result["n"] == len(pd.read_parquet(eval_path))


def zip_of(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


MLMODEL = b"flavors:\n  python_function: {loader_module: mlflow.sklearn}\n"


@pytest.mark.parametrize("content,message", [
    (b"not a zip", "not a zip file"),
    (zip_of({"../evil/MLmodel": MLMODEL}), "unsafe path"),
    (zip_of({"model/MLmodel": MLMODEL}, symlink="model/link"), "symbolic link"),
    (zip_of({"model/model.pkl": b"x"}), "exactly one MLmodel"),
    (zip_of({"model/MLmodel": b"flavors: {}\n"}), "no python_function flavour"),
    (zip_of({"model/MLmodel": MLMODEL}), "without a signature"),
])
def test_bad_packages_are_refused_before_extraction(settings: Settings, content: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        unpack(settings, content)
    assert not (settings.home / "uploads").exists() or not any((settings.home / "uploads").iterdir())
