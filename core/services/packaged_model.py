"""A packaged MLflow model uploaded as a zip: checked, logged as a new run under the
uploader's name and registered — stored, never loaded, in the server process.

The zip must hold one directory saved with mlflow.<flavor>.save_model: an
MLmodel file with a python_function flavour and a signature. Paths that escape
the folder, links and zip bombs are refused before anything is extracted.
"""

from __future__ import annotations

import io
import json
import shutil
import stat
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from core.adapters.registry import Registry, check_model_name
from core.adapters.store import Store
from core.config import Settings
from core.domain.access import Permission, User, require
from core.domain.model_safety import check_loadable
from core.domain.signature import InputColumn, SignatureProblem, columns_from_example, parse_inputs
from core.errors import ValidationError
from core.services.audit import record_event
from core.services.evaluation_data import check_evaluation_data, read_table
from core.services.submission import Progress, StoredEvaluation, SubmissionRequest, kept_upload, submit_version
from core.services.usecases import use_case_for_model

MAX_EXPANSION = 5  # uncompressed size may be at most this many times the upload limit


def _safe_members(archive: zipfile.ZipFile, limit: int) -> list[zipfile.ZipInfo]:
    members, total = archive.infolist(), 0
    for info in members:
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts or info.filename.startswith("\\"):
            raise ValidationError(f"the zip contains an unsafe path {info.filename!r}: package the model folder only")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ValidationError(f"the zip contains a symbolic link {info.filename!r}: links are not accepted")
        total += info.file_size
    if total > limit:
        raise ValidationError(f"the zip expands to {total / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB limit")
    return members


def _model_root(members: list[zipfile.ZipInfo]) -> PurePosixPath:
    roots = [PurePosixPath(m.filename).parent for m in members if PurePosixPath(m.filename).name == "MLmodel"]
    if len(roots) != 1:
        raise ValidationError("the zip must contain exactly one MLmodel file: zip the directory written by "
                              "mlflow.<flavor>.save_model(model, path)")
    return roots[0]


def _check_mlmodel(text: str, extra_skops_types: tuple[str, ...] = (),
                   example: Callable[[str], bytes | None] = lambda _name: None) -> list[InputColumn]:
    """The MLmodel's input columns, from its signature or, without one, its logged input example."""
    try:
        spec: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"the MLmodel file is not valid YAML: {exc}") from None
    if not isinstance(spec, dict) or "python_function" not in (spec.get("flavors") or {}):
        raise ValidationError("the MLmodel file has no python_function flavour: save the model with an MLflow flavour")
    check_loadable(spec["flavors"], "the uploaded model", extra_skops_types)
    try:
        signature = spec.get("signature") or {}
        if signature.get("inputs"):
            return list(parse_inputs(signature["inputs"], "the uploaded model"))
        info = spec.get("saved_input_example_info") or {}
        raw = example(str(info.get("artifact_path", ""))) if info.get("type") == "dataframe" else None
        if raw is not None:
            found = json.loads(raw)
            return list(columns_from_example([str(c) for c in found["columns"]], found["data"]))
        return list(parse_inputs(None, "the uploaded model"))
    except SignatureProblem as exc:
        raise ValidationError(str(exc)) from None
    except (KeyError, TypeError, ValueError):
        raise ValidationError("the model's signature or input example cannot be read: save it with "
                              "signature=infer_signature(X, model.predict_proba(X))") from None


def unpack(settings: Settings, content: bytes) -> tuple[Path, list[InputColumn]]:
    """Check and extract the zip into MODELBOARD_HOME/uploads; return the model folder and its inputs."""
    limit = settings.max_upload_mb * 1_000_000
    if len(content) > limit:
        raise ValidationError(f"the zip is {len(content) / 1e6:.0f} MB, over the {settings.max_upload_mb} MB limit")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise ValidationError("the upload is not a zip file: zip the folder written by save_model") from None
    with archive:
        members = _safe_members(archive, limit * MAX_EXPANSION)
        root = _model_root(members)
        names = {m.filename for m in members}

        def example(name: str) -> bytes | None:
            path = str(root / name) if str(root) != "." else name
            return archive.read(path) if name and path in names else None

        inputs = _check_mlmodel(archive.read(str(root / "MLmodel")).decode("utf-8", "replace"),
                                settings.extra_skops_types, example)
        target = settings.home / "uploads" / uuid.uuid4().hex
        for info in members:
            try:
                relative = PurePosixPath(info.filename).relative_to(root)
            except ValueError:
                continue  # files beside the model folder are not part of the model
            if info.is_dir():
                continue
            destination = target / Path(*relative.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.read(info))
    return target, inputs


def submit_packaged_model(settings: Settings, store: Store, registry: Registry, actor: User, *, model: str,
                          content: bytes, eval_path: Path, deidentified: bool = False, complete_case: bool = False,
                          progress: Progress | None = None) -> StoredEvaluation:
    """Validate the zip and the evaluation data, log the model as a new run by `actor`, register and evaluate it."""
    require(actor, Permission.SUBMIT_MODELS)
    check_model_name(model)
    use_case = use_case_for_model(store, actor, model)
    folder, inputs = unpack(settings, content)
    try:  # the evaluation data is checked against the uploaded signature before anything is logged
        check_evaluation_data(read_table(eval_path, max_bytes=settings.max_upload_mb * 1_000_000), inputs=inputs,
                              label=use_case.label, sensitive=use_case.sensitive_attributes,
                              deidentified=deidentified, source=eval_path.name,
                              positive_class=use_case.positive_class, complete_case=complete_case)
    except ValidationError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        run_id = registry.log_packaged_model(model, folder, uploader=actor.username,
                                             artifact_root=settings.artifact_root)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with store.transaction() as cur:
        record_event(cur, actor=actor.username, action="model_uploaded", model=model, detail={"run_id": run_id})
    return submit_version(settings, store, registry, actor,
                          SubmissionRequest(model, 0, eval_data=eval_path, deidentified=deidentified, run_id=run_id,
                                            complete_case=complete_case), progress=progress)


def submit_packaged_upload(settings: Settings, store: Store, registry: Registry, actor: User, *, model: str,
                           content: bytes, eval_name: str, eval_content: bytes, deidentified: bool = False,
                           complete_case: bool = False, progress: Progress | None = None) -> StoredEvaluation:
    """Browser version: the evaluation file arrives as bytes and is kept only while it is used."""
    require(actor, Permission.SUBMIT_MODELS)
    with kept_upload(settings, eval_name, eval_content) as eval_path:
        return submit_packaged_model(settings, store, registry, actor, model=model, content=content,
                                     eval_path=eval_path, deidentified=deidentified, complete_case=complete_case,
                                     progress=progress)
