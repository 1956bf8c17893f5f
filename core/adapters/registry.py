"""The MLflow model registry, behind one small interface.

Only metadata is read here; this module never loads (unpickles) a model.
Model loading happens only in the evaluation worker process.
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from core.config import quiet_mlflow
from core.domain.models import (
    KEY_METRICS,
    STATUS_TAG,
    DatasetRef,
    ModelVersionDetail,
    ModelVersionSummary,
    RegisteredModelSummary,
)
from core.domain.signature import (
    InputColumn,
    ModelSignature,
    SignatureProblem,
    columns_from_example,
    parse_inputs,
    parse_output,
)
from core.errors import NotFound, RegistryError, ValidationError

MODEL_NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")
HIDDEN_RUN_TAGS = ("mlflow.log-model.history",)


AUDIT_EXPERIMENT = "modelboard-audit"  # holds the mirrored checkpoint; no runs are logged to it
CHECKPOINT_TAG = "modelboard.audit_checkpoint"


_OPENED = False


def registry_was_opened() -> bool:
    """Whether this process opened a registry: commands that did leave the audit checkpoint mirrored there."""
    return _OPENED


def _when(millis: int | None) -> datetime | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC).replace(tzinfo=None)


def check_model_name(name: str) -> str:
    if not MODEL_NAME_RULE.match(name):
        raise ValidationError(
            f"{name!r} is not a registered-model name: use letters, digits, '.', '_', '-' or spaces"
        )
    return name


class Registry:
    """Read access to registered models, their versions, runs and aliases."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        global _OPENED  # noqa: PLW0603 - a process-wide fact: has this process talked to MLflow at all?
        _OPENED = True
        quiet_mlflow()
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFound(f"{what} does not exist in the MLflow registry") from exc
            raise RegistryError(f"MLflow could not {what}: {exc.message}") from exc

    def list_models(self) -> list[RegisteredModelSummary]:
        models = self._call("list registered models", self.client.search_registered_models, max_results=1000)
        out = []
        for rm in models:
            versions = self._versions(rm.name)
            numbers = [int(v.version) for v in versions]
            out.append(
                RegisteredModelSummary(
                    name=rm.name,
                    description=rm.description or "",
                    aliases={a: int(v) for a, v in (rm.aliases or {}).items()},
                    version_count=len(numbers),
                    latest_version=max(numbers) if numbers else None,
                    last_updated=_when(rm.last_updated_timestamp),
                )
            )
        return sorted(out, key=lambda m: m.name)

    def model_tags(self, prefix: str) -> list[tuple[str, str, str]]:
        """(model, key, value) of every registered-model tag whose key starts with `prefix`."""
        models = self._call("list registered models", self.client.search_registered_models, max_results=1000)
        return sorted((rm.name, key, value) for rm in models for key, value in (rm.tags or {}).items()
                      if key.startswith(prefix))

    def tag_model(self, name: str, key: str, value: str) -> None:
        self._call(f"tag registered model {name!r}", self.client.set_registered_model_tag, check_model_name(name),
                   key, value)

    def audit_checkpoint_mirror(self) -> str | None:
        """The newest audit checkpoint line ModelBoard mirrored into MLflow (docs/decisions/0014), if any."""
        experiment = self._call("read the audit experiment", self.client.get_experiment_by_name, AUDIT_EXPERIMENT)
        return None if experiment is None else (experiment.tags or {}).get(CHECKPOINT_TAG)

    def set_audit_checkpoint_mirror(self, line: str) -> None:
        """An experiment tag, because a fresh installation has no registered model to carry it."""
        experiment = self._call("read the audit experiment", self.client.get_experiment_by_name, AUDIT_EXPERIMENT)
        experiment_id = (experiment.experiment_id if experiment is not None else
                         self._call("create the audit experiment", self.client.create_experiment, AUDIT_EXPERIMENT))
        self._call("mirror the audit checkpoint", self.client.set_experiment_tag, experiment_id, CHECKPOINT_TAG, line)

    def aliases(self, name: str) -> dict[str, int]:
        """Alias → version. Read from the registered model: with the sqlite store,
        versions returned by a search carry no aliases."""
        rm = self._call(f"read registered model {name!r}", self.client.get_registered_model, check_model_name(name))
        return {a: int(v) for a, v in (rm.aliases or {}).items()}

    def _versions(self, name: str) -> list[ModelVersion]:
        escaped = name.replace("'", "''")
        found = self._call(f"list versions of {name!r}", self.client.search_model_versions, f"name='{escaped}'")
        return list(found)

    def list_versions(self, name: str) -> list[ModelVersionSummary]:
        """Every version of a model, newest first, with key metrics from its run."""
        aliases = self.aliases(name)
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        summaries = [self._summary(mv, by_version, self._run(mv.run_id)) for mv in self._versions(name)]
        return sorted(summaries, key=lambda s: s.version, reverse=True)

    def _run(self, run_id: str | None) -> Run | None:
        if not run_id:
            return None
        try:
            return self.client.get_run(run_id)
        except MlflowException:
            return None  # a version whose run was deleted still shows, without run facts

    def _summary(self, mv: ModelVersion, by_version: dict[int, list[str]], run: Run | None) -> ModelVersionSummary:
        metrics = run.data.metrics if run else {}
        logged_by = (run.data.tags.get("mlflow.user") if run else None) or mv.user_id or "unknown"
        return ModelVersionSummary(
            name=mv.name,
            version=int(mv.version),
            aliases=tuple(sorted(by_version.get(int(mv.version), []))),
            status=(mv.tags or {}).get(STATUS_TAG, "registered"),
            created_at=_when(mv.creation_timestamp) or datetime.min,
            logged_by=logged_by,
            run_id=mv.run_id,
            description=mv.description or "",
            key_metrics={k: float(metrics[k]) for k in KEY_METRICS if k in metrics},
        )

    def get_version(self, name: str, version: int) -> ModelVersionDetail:
        """One version with everything needed to trace where it came from."""
        mv = self._call(
            f"read version {version} of {name!r}", self.client.get_model_version, check_model_name(name), str(version)
        )
        aliases = self.aliases(name)
        by_version: dict[int, list[str]] = {}
        for alias, v in aliases.items():
            by_version.setdefault(v, []).append(alias)
        run = self._run(mv.run_id)
        run_tags = dict(run.data.tags) if run else {}
        return ModelVersionDetail(
            summary=self._summary(mv, by_version, run),
            source=mv.source or "",
            run_name=run.info.run_name if run else None,
            experiment_id=run.info.experiment_id if run else None,
            params=dict(run.data.params) if run else {},
            metrics=dict(run.data.metrics) if run else {},
            version_tags=dict(mv.tags or {}),
            run_tags={k: v for k, v in run_tags.items() if k not in HIDDEN_RUN_TAGS},
            datasets=_datasets(run),
            git_commit=run_tags.get("mlflow.source.git.commit"),
            model_id=getattr(mv, "model_id", None),
        )

    def version_for_alias(self, name: str, alias: str) -> int | None:
        return self.aliases(name).get(alias)

    def model_inputs(self, name: str, version: int) -> list[InputColumn]:
        """The version's input columns (name, type, required), read from its MLmodel file only
        (a YAML file: nothing is unpickled)."""
        return list(self.model_signature(name, version).inputs)

    def model_signature(self, name: str, version: int) -> ModelSignature:
        """Inputs and output as the version's signature declares them (or its input example, without one)."""
        mv = self._call(f"read version {version} of {name!r}", self.client.get_model_version,
                        check_model_name(name), str(version))
        location = self._artifact_location(mv)
        return self._signature_at(location, self._mlmodel_at(location, f"{name} v{version}"), f"{name} v{version}")

    def model_flavors(self, name: str, version: int) -> dict[str, Any]:
        """The flavours section of the version's MLmodel file (how it was serialized), read as YAML only."""
        return dict(self._version_mlmodel(name, version).flavors)

    def _version_mlmodel(self, name: str, version: int) -> Any:
        mv = self._call(f"read version {version} of {name!r}", self.client.get_model_version,
                        check_model_name(name), str(version))
        return self._mlmodel_at(self._artifact_location(mv), f"{name} v{version}")

    def _mlmodel_at(self, location: str, what: str) -> Any:
        import tempfile

        from mlflow.artifacts import download_artifacts
        from mlflow.models import Model

        try:
            with tempfile.TemporaryDirectory() as folder:
                local = download_artifacts(artifact_uri=f"{location}/MLmodel", dst_path=folder,
                                           tracking_uri=self.tracking_uri)
                return Model.load(local)
        except (MlflowException, OSError) as exc:
            raise RegistryError(f"cannot read the MLmodel file of {what}: {exc}") from exc

    def run_model(self, run_id: str) -> tuple[str, str]:
        """(model_id, artifact location) of the model an unregistered run logged."""
        if not re.fullmatch(r"[0-9a-f]{32}", run_id):
            raise ValidationError(f"{run_id!r} is not an MLflow run id (32 hexadecimal characters)")
        run = self._call(f"read run {run_id}", self.client.get_run, run_id)
        found = self._call("search logged models", self.client.search_logged_models,
                           experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'")
        if not found:
            raise NotFound(f"run {run_id} logged no model: log one with mlflow.<flavor>.log_model(..., name='model')")
        return str(found[0].model_id), str(found[0].artifact_location)

    def run_model_inputs(self, run_id: str) -> list[InputColumn]:
        return list(self.run_model_signature(run_id).inputs)

    def run_model_signature(self, run_id: str) -> ModelSignature:
        what, location = f"the model of run {run_id}", self.run_model(run_id)[1]
        return self._signature_at(location, self._mlmodel_at(location, what), what)

    def _signature_at(self, location: str, mlmodel: Any, what: str) -> ModelSignature:
        try:
            if mlmodel.signature is not None and mlmodel.signature.inputs is not None:
                spec = mlmodel.signature.to_dict()
                return ModelSignature(parse_inputs(spec["inputs"], what), parse_output(spec.get("outputs")))
            example = self._input_example(location, mlmodel)
            if example is None:
                return ModelSignature(parse_inputs(None, what), parse_output(None))
            return ModelSignature(columns_from_example(*example), parse_output(None), source="input example")
        except SignatureProblem as exc:
            raise RegistryError(str(exc)) from None

    def _input_example(self, location: str, mlmodel: Any) -> tuple[list[str], list[list[Any]]] | None:
        """The columns and rows of a logged pandas input example (JSON, read as data)."""
        import tempfile

        from mlflow.artifacts import download_artifacts

        info = getattr(mlmodel, "saved_input_example_info", None) or {}
        if info.get("type") != "dataframe" or not info.get("artifact_path"):
            return None
        try:
            with tempfile.TemporaryDirectory() as folder:
                local = download_artifacts(artifact_uri=f"{location}/{info['artifact_path']}", dst_path=folder,
                                           tracking_uri=self.tracking_uri)
                example = json.loads(Path(local).read_text(encoding="utf-8"))
        except (MlflowException, OSError, ValueError) as exc:
            raise RegistryError(f"cannot read the logged input example at {location}: {exc}") from exc
        if info.get("pandas_orient", "split") != "split" or not isinstance(example, dict):
            return None
        return [str(c) for c in example.get("columns", [])], list(example.get("data", []))

    def run_model_flavors(self, run_id: str) -> dict[str, Any]:
        what = f"the model of run {run_id}"
        return dict(self._mlmodel_at(self.run_model(run_id)[1], what).flavors)

    def register_run(self, name: str, run_id: str) -> int:
        """Register the run's model as a new version of `name` (created if new); returns the version."""
        model_id, location = self.run_model(run_id)
        try:
            self.client.get_registered_model(check_model_name(name))
        except MlflowException:
            self._call(f"create registered model {name!r}", self.client.create_registered_model, name)
        # The artifact location, not models:/m-…: that URI would be resolved with the process-wide tracking URI.
        mv = self._call(f"register run {run_id} as {name!r}", self.client.create_model_version, name,
                        location, run_id=run_id, model_id=model_id)
        return int(mv.version)

    def log_packaged_model(self, name: str, folder: Path, *, uploader: str, artifact_root: Path | None) -> str:
        """Log an uploaded model folder as a new run and logged model, without loading it; returns the run id."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            location = (artifact_root / name).as_uri() if artifact_root else None
            experiment_id = self._call(f"create experiment {name!r}", self.client.create_experiment, name,
                                       artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        run = self._call("create a run", self.client.create_run, experiment_id, run_name=f"upload-by-{uploader}",
                         tags={"mlflow.user": uploader, "modelboard.uploaded": "true",
                               "mlflow.note.content": "Packaged model uploaded through ModelBoard's Submit page."})
        logged = self._call("create a logged model", self.client.create_logged_model, experiment_id, name="model",
                            source_run_id=run.info.run_id)
        self._call("store the model files", self.client.log_model_artifacts, logged.model_id, str(folder))
        self._call("finalize the logged model", self.client.finalize_logged_model, logged.model_id, "READY")
        self._call("close the run", self.client.set_terminated, run.info.run_id)
        return str(run.info.run_id)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._call(f"point alias {alias!r} of {name!r} at version {version}",
                   self.client.set_registered_model_alias, check_model_name(name), alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        if alias in self.aliases(name):
            self._call(f"remove alias {alias!r} of {name!r}", self.client.delete_registered_model_alias,
                       check_model_name(name), alias)

    def tag_version(self, name: str, version: int, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(f"tag version {version} of {name!r}", self.client.set_model_version_tag,
                       check_model_name(name), str(version), key, value)

    def artifact_sha256(self, name: str, version: int) -> str:
        """SHA-256 over every file of the version's model (relative path and content hash, in path order).
        The files are copied to a temporary folder and hashed as bytes: nothing is unpickled."""
        import hashlib
        import tempfile

        from mlflow.artifacts import download_artifacts

        mv = self._call(f"read version {version} of {name!r}", self.client.get_model_version,
                        check_model_name(name), str(version))
        location = self._artifact_location(mv)
        try:
            with tempfile.TemporaryDirectory() as folder:
                local = Path(download_artifacts(artifact_uri=location, dst_path=folder,
                                                tracking_uri=self.tracking_uri))
                lines = []
                for path in sorted(p for p in local.rglob("*") if p.is_file()):
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    lines.append(f"{path.relative_to(local).as_posix()}\0{digest}\n")
        except (MlflowException, OSError) as exc:
            raise RegistryError(f"cannot read the model files of {name} v{version}: {exc}") from exc
        if not lines:
            raise RegistryError(f"{name} v{version} has no model files at {location}")
        return hashlib.sha256("".join(lines).encode()).hexdigest()

    def models_logged_by_others(self, marker: str) -> list[str]:
        """Registered models with a version whose run does not carry the tag `marker` = "true" (what the demo
        builder tags its runs with): the models a demo must never delete from a shared MLflow server."""
        others = []
        for model in self.list_models():
            for mv in self._versions(model.name):
                run = self._run(mv.run_id)
                if run is None or run.data.tags.get(marker) != "true":
                    others.append(model.name)
                    break
        return others

    def delete_model(self, name: str) -> None:
        self._call(f"delete the registered model {name!r}", self.client.delete_registered_model, name)

    def delete_version(self, name: str, version: int) -> None:
        self._call(f"delete version {version} of {name!r}", self.client.delete_model_version, name, str(version))

    def _artifact_location(self, mv: ModelVersion) -> str:
        """Where the version's model files live, without going through process-wide MLflow URIs."""
        model_id = getattr(mv, "model_id", None)
        if model_id:
            return str(self.client.get_logged_model(model_id).artifact_location)
        return str(self.client.get_model_version_download_uri(mv.name, mv.version))

    def evaluation_dataset_path(self, name: str, version: int) -> str:
        """Local path of the evaluation dataset logged with the version's run, if it can be fetched."""
        import mlflow.data

        detail = self.get_version(name, version)
        run = self._run(detail.summary.run_id)
        inputs = run.inputs.dataset_inputs if run and run.inputs else []
        for dataset_input in inputs:
            if any(t.key == "mlflow.data.context" and t.value == "evaluation" for t in dataset_input.tags or []):
                try:
                    with warnings.catch_warnings():  # MLflow warns that two source classes match a local file
                        warnings.simplefilter("ignore", UserWarning)
                        return str(mlflow.data.get_source(dataset_input.dataset).load())
                except Exception as exc:  # noqa: BLE001 - any source type may fail in its own way
                    raise RegistryError(
                        f"the evaluation dataset logged with {name} v{version} cannot be fetched ({exc}); "
                        "pass the evaluation data as a file instead (--eval-data FILE)") from exc
        raise NotFound(f"{name} v{version} has no evaluation dataset logged with its run: "
                       "pass the evaluation data as a file (--eval-data FILE)")


def _datasets(run: Run | None) -> tuple[DatasetRef, ...]:
    if run is None or run.inputs is None:
        return ()
    refs = []
    for dataset_input in run.inputs.dataset_inputs or []:
        ds = dataset_input.dataset
        context = next((t.value for t in dataset_input.tags or [] if t.key == "mlflow.data.context"), "")
        refs.append(DatasetRef(ds.name, ds.digest, context, ds.source_type, _rows(ds.profile)))
    return tuple(refs)


def _rows(profile: str | None) -> int | None:
    try:
        value = json.loads(profile or "{}").get("num_rows")
    except (ValueError, AttributeError):
        return None
    return int(value) if value is not None else None
