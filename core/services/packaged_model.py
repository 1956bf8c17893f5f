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
import zlib
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
MAX_MEMBERS = 1_000  # a saved model folder holds a handful of files; thousands is a bomb, not a model
MAX_RATIO = 200  # deflate reaches ~1,000:1 only on degenerate data; model files compress far less
RATIO_FLOOR = 1_000_000  # below this uncompressed size a high ratio is harmless (a YAML file of spaces)
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError)  # what damage raises


def _safe_members(archive: zipfile.ZipFile, limit: int) -> list[zipfile.ZipInfo]:
    """The members, once every one is known safe to extract: no escaping path, link, encryption or bomb."""
    members, total = archive.infolist(), 0
    if len(members) > MAX_MEMBERS:
        raise ValidationError(f"the zip holds {len(members):,} files, over the limit of {MAX_MEMBERS:,}: "
                              "zip only the folder written by save_model")
    for info in members:
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in info.filename or "\0" in info.filename:
            raise ValidationError(f"the zip contains an unsafe path {info.filename!r}: package the model folder only")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ValidationError(f"the zip contains a symbolic link {info.filename!r}: links are not accepted")
        if info.flag_bits & 0x1:
            raise ValidationError(f"the zip member {info.filename!r} is encrypted: zip the model without a password")
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise ValidationError(f"the zip member {info.filename!r} expands {ratio:,} times (at most {MAX_RATIO} "
                                  "accepted): this looks like a zip bomb")
        total += info.file_size
    if total > limit:
        raise ValidationError(f"the zip expands to {total / 1e6:,.1f} MB, over the {limit / 1e6:,.0f} MB limit")
    files = {PurePosixPath(m.filename) for m in members if not m.is_dir()}
    clash = next((f for f in sorted(files) if any(parent in files for parent in f.parents)), None)
    if clash is not None:
        raise ValidationError(f"the zip holds {clash.parent.as_posix()!r} both as a file and as a folder")
    return members


def _model_root(members: list[zipfile.ZipInfo]) -> PurePosixPath:
    roots = [PurePosixPath(m.filename).parent for m in members
             if PurePosixPath(m.filename).name == "MLmodel" and not m.is_dir()]
    if len(roots) != 1:
        raise ValidationError("the zip must contain exactly one MLmodel file: zip the directory written by "
                              "mlflow.<flavor>.save_model(model, path)")
    return roots[0]


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    """One member's bytes; a corrupt member (bad CRC, broken deflate stream, truncated) is a ValidationError."""
    try:
        return archive.read(name)
    except ZIP_ERRORS as exc:
        raise ValidationError(f"the zip is damaged ({name!r}: {exc}): zip the model folder again") from None


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
    """Check and extract the zip into a fresh folder under MODELBOARD_HOME/uploads; return it and the inputs.

    Everything is checked before the first byte is written, and a member that turns out corrupt while it is
    extracted removes the whole folder again, so a refused zip leaves nothing on disk."""
    limit = settings.max_upload_mb * 1_000_000
    if len(content) > limit:
        raise ValidationError(f"the zip is {len(content) / 1e6:.0f} MB, over the {settings.max_upload_mb} MB limit")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except ZIP_ERRORS:
        raise ValidationError("the upload is not a zip file (or a damaged one): zip the folder written by "
                              "save_model") from None
    with archive:
        members = _safe_members(archive, limit * MAX_EXPANSION)
        root = _model_root(members)
        names = {PurePosixPath(m.filename): m.filename for m in members if not m.is_dir()}

        def example(name: str) -> bytes | None:
            member = names.get(root / name) if name else None
            return _read(archive, member) if member else None

        inputs = _check_mlmodel(_read(archive, names[root / "MLmodel"]).decode("utf-8", "replace"),
                                settings.extra_skops_types, example)
        target = settings.home / "uploads" / uuid.uuid4().hex
        try:
            _extract(archive, members, root, target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
    return target, inputs


def _extract(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], root: PurePosixPath, target: Path) -> None:
    """Write the model folder's files under `target`, streamed (never a whole member in memory)."""
    for info in members:
        try:
            relative = PurePosixPath(info.filename).relative_to(root)
        except ValueError:
            continue  # files beside the model folder are not part of the model
        if info.is_dir() or not relative.parts:
            continue
        destination = target / Path(*relative.parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(info) as source, destination.open("xb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        except ZIP_ERRORS as exc:
            raise ValidationError(f"the zip is damaged ({info.filename!r}: {exc}): zip the model folder "
                                  "again") from None


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
                                             artifact_root=settings.new_experiment_artifacts)
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
