"""The reference data production is compared with: what the version looked like when it was signed off.

A version ModelBoard evaluated is compared with that evaluation's patients and
scores (the newest complete evaluation: the one signatures are bound to). A
version ModelBoard adopted without evaluating it (an alias it found) is compared
with the evaluation dataset logged with its MLflow run, scored by the worker
process — the only process that loads models (docs/decisions/0005). Either way
the reference is frozen into one Parquet file whose SHA-256 is recorded, so the
same windows always meet the same reference.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import REPO_ROOT, Settings, child_environment
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.errors import ModelBoardError, NotFound
from core.metrics.monitoring import realised_performance
from core.services.audit import record_event
from core.services.usecases import use_case_for_model

SCORE, LABEL = "__score__", "__label__"


@dataclass(frozen=True)
class Reference:
    model: str
    version: int
    source: str  # a sentence: where the patients and scores came from
    evaluation_id: str | None
    rows: int
    threshold: float
    auroc: float
    sensitivity: float
    ppv: float
    path: Path
    sha256: str

    def frame(self) -> pd.DataFrame:
        """Inputs, sensitive attributes, `__score__` and `__label__`, as frozen."""
        if _sha256(self.path) != self.sha256:
            raise ModelBoardError(f"the reference data of {self.model} v{self.version} at {self.path} changed since "
                                  "it was recorded; delete its row in monitoring_references to rebuild it")
        return pd.read_parquet(self.path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def stored_reference(store: Store, model: str, version: int) -> Reference | None:
    row = store.query_one("SELECT * FROM monitoring_references WHERE model_name = ? AND model_version = ?",
                          [model, version])
    if row is None:
        return None
    return Reference(model, version, row["source"], row["evaluation_id"], int(row["rows"]), float(row["threshold"]),
                     _f(row["auroc"]), _f(row["sensitivity"]), _f(row["ppv"]), Path(row["path"]), row["sha256"])


def _f(value: Any) -> float:
    return float("nan") if value is None else float(value)


def reference_for(settings: Settings, store: Store, registry: Registry, viewer: User, model: str,
                  version: int) -> Reference:
    """The recorded reference, or build it now (from the evaluation, else by the worker)."""
    require(viewer, Permission.RUN_MONITORING)
    found = stored_reference(store, model, version)
    if found is not None:
        return found
    evaluation = store.query_one("SELECT id, request FROM evaluations WHERE model_name = ? AND model_version = ? "
                                 "AND status = 'complete' ORDER BY finished_at DESC LIMIT 1", [model, version])
    if evaluation is not None:
        return _from_evaluation(settings, store, model, version, evaluation["id"], json.loads(evaluation["request"]))
    use_case_for_model(store, viewer, model)  # NotFound before starting a worker that would fail the same way
    _run_reference_worker(settings, model, version)
    built = stored_reference(store, model, version)
    if built is None:
        raise NotFound(f"the worker finished without recording reference data for {model} v{version}")
    return built


def _from_evaluation(settings: Settings, store: Store, model: str, version: int, evaluation_id: str,
                     request: dict[str, Any]) -> Reference:
    frame = pd.read_parquet(settings.home / "evaluations" / evaluation_id / "data.parquet")
    rows = store.query_df("SELECT row_index, label, score FROM evaluation_rows WHERE evaluation_id = ? "
                          "ORDER BY row_index", [evaluation_id])
    frame = frame.iloc[rows["row_index"].to_numpy()].reset_index(drop=True)
    return save_reference(settings, store, model=model, version=version, frame=frame,
                          labels=rows["label"].to_numpy(), scores=rows["score"].to_numpy(),
                          threshold=float(request["threshold"]), evaluation_id=evaluation_id,
                          source=f"the evaluation ModelBoard ran at submission ({evaluation_id[:8]})")


def save_reference(settings: Settings, store: Store, *, model: str, version: int, frame: pd.DataFrame,
                   labels: np.ndarray, scores: np.ndarray, threshold: float, source: str,
                   evaluation_id: str | None = None) -> Reference:
    """Freeze the reference into Parquet and record it (with its figures at sign-off) and an audit row."""
    folder = settings.home / "monitoring" / "references" / model
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"v{version}.parquet"
    y, s = np.asarray(labels, dtype=np.int64), np.asarray(scores, dtype=float)
    frame.assign(**{SCORE: s, LABEL: y}).to_parquet(path, index=False)
    perf = realised_performance(y, s, s >= threshold)
    reference = Reference(model, version, source, evaluation_id, len(frame), threshold, perf.auroc.value,
                          perf.sensitivity.value, perf.ppv.value, path, _sha256(path))
    with store.transaction() as cur:
        cur.execute("INSERT INTO monitoring_references VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (model_name, model_version) DO UPDATE SET source = excluded.source, "
                    "evaluation_id = excluded.evaluation_id, rows = excluded.rows, threshold = excluded.threshold, "
                    "auroc = excluded.auroc, sensitivity = excluded.sensitivity, ppv = excluded.ppv, "
                    "path = excluded.path, sha256 = excluded.sha256, created_at = excluded.created_at",
                    [model, version, source, evaluation_id, reference.rows, threshold, _db(reference.auroc),
                     _db(reference.sensitivity), _db(reference.ppv), str(path), reference.sha256, utc_now()])
        record_event(cur, actor="modelboard-monitor", action="monitoring_reference_recorded", model=model,
                     version=version, detail={"source": source, "rows": reference.rows, "sha256": reference.sha256,
                                              "auroc": _db(reference.auroc)})
    return reference


def _db(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _run_reference_worker(settings: Settings, model: str, version: int) -> None:
    """Score the version's logged evaluation dataset in the worker process (the one that may load models)."""
    env = child_environment(settings, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true")
    done = subprocess.run([sys.executable, "-m", "core.worker", "reference", model, str(version)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = lines[-1].removeprefix("error: ") if lines else "the worker stopped without a reason"
        raise ModelBoardError(f"could not build reference data for {model} v{version}: {reason}")


def score_logged_evaluation_set(settings: Settings, store: Store, registry: Registry, viewer: User, model: str,
                                version: int) -> Reference:
    """In the worker only: load the version through MLflow and score the dataset logged with its run."""
    from core.domain.typed_inputs import conform, label_problem, outcome_values
    from core.services.evaluation_data import read_table
    from core.services.risk_model import load_risk_model

    use_case = use_case_for_model(store, viewer, model)
    frame = read_table(Path(registry.evaluation_dataset_path(model, version)), max_bytes=10**10)
    signature = registry.model_signature(model, version)
    missing = [c for c in [*signature.names, use_case.label] if c not in frame.columns]
    conformed = conform(frame, signature.inputs)
    problems = ([f"it lacks {', '.join(missing)}"] if missing else []) + list(conformed.problems)
    label = None if missing else label_problem(frame[use_case.label], use_case.label, use_case.positive_class)
    if problems or label:
        raise ModelBoardError(f"the evaluation dataset logged with {model} v{version} cannot be scored: "
                              + "; ".join(problems + ([label] if label else []))
                              + ". Submit the version for evaluation with a complete evaluation file instead")
    _, scores = load_risk_model(model, version, signature, conformed.frame, positive_class=use_case.positive_class)
    keep = [c for c in [*signature.names, *use_case.sensitive_attributes] if c in frame.columns]
    return save_reference(settings, store, model=model, version=version,
                          frame=conformed.frame[keep].reset_index(drop=True),
                          labels=outcome_values(frame[use_case.label], use_case.positive_class), scores=scores,
                          threshold=use_case.threshold,
                          source="the evaluation dataset logged with its MLflow run, scored by ModelBoard's worker")
