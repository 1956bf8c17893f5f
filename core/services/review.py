"""Read models for clinical review pages: stored evaluations, never recomputed on load
(the threshold explorer recomputes from stored per-patient scores, which takes milliseconds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from core.adapters.store import Store
from core.domain.access import Permission, User, require
from core.errors import NotFound
from core.metrics.subgroups import subgroup_metrics
from core.services.submission import StoredEvaluation, load_evaluation


@dataclass(frozen=True)
class EvaluatedVersion:
    model: str
    version: int
    evaluation_id: str
    finished_at: datetime
    submitted_by: str
    criteria_passed: bool


def evaluated_versions(store: Store, viewer: User) -> list[EvaluatedVersion]:
    """The latest complete evaluation of every evaluated version, newest first."""
    require(viewer, Permission.VIEW_REGISTRY)
    rows = store.query("""
        SELECT id, model_name, model_version, finished_at, submitted_by,
               CAST(json_extract(result, '$.criteria_passed') AS BOOLEAN) AS passed
        FROM evaluations e
        WHERE status = 'complete' AND finished_at = (
            SELECT max(finished_at) FROM evaluations f
            WHERE f.model_name = e.model_name AND f.model_version = e.model_version AND f.status = 'complete')
        ORDER BY model_name, model_version DESC""")
    return [EvaluatedVersion(r["model_name"], int(r["model_version"]), r["id"], r["finished_at"], r["submitted_by"],
                             bool(r["passed"])) for r in rows]


def subgroup_frame(evaluation: StoredEvaluation) -> pd.DataFrame:
    """The stored subgroup table with undefined metrics as NaN (stored JSON uses null)."""
    frame = pd.DataFrame(evaluation.result.get("subgroup_table", []))
    numeric = [c for c in frame.columns if c not in ("attribute_set", "group", "enough_patients")]
    return frame.astype({c: "float64" for c in numeric})


def evaluation_of(store: Store, viewer: User, evaluation_id: str) -> StoredEvaluation:
    return load_evaluation(store, viewer, evaluation_id)


def explore_threshold(store: Store, viewer: User, evaluation_id: str, threshold: float,
                      min_n: int) -> pd.DataFrame:
    """Subgroup confusion matrices and workload at another threshold, from stored scores."""
    require(viewer, Permission.VIEW_REGISTRY)
    rows = store.query_df("SELECT label, score, attributes FROM evaluation_rows WHERE evaluation_id = ? "
                          "ORDER BY row_index", [evaluation_id])
    if rows.empty:
        return pd.DataFrame()
    attributes = pd.DataFrame([json.loads(a) for a in rows["attributes"]])
    report = subgroup_metrics(rows["label"].to_numpy(), rows["score"].to_numpy(), sensitive_features=attributes,
                              threshold=threshold, min_n=min_n, pairwise=False)
    frame = report.by_group
    frame["alerts_per_100"] = frame["selection_rate"] * 100
    return frame


def natural_frequency(row: dict[str, Any] | pd.Series, outcome: str) -> str:
    """'Of 100 patients who developed sepsis, the model flagged 81' — or why it cannot be said."""
    value = row["sensitivity"]
    if pd.isna(value):
        return f"{row['group']}: no patient developed {outcome}, so sensitivity is undefined."
    if not row["enough_patients"]:
        return f"{row['group']}: too few patients to judge ({int(row['n'])})."
    return f"Of 100 {row['group']} patients who developed {outcome}, the model flagged {value * 100:.0f}."


@dataclass(frozen=True)
class ExplanationView:
    method: str
    units: str
    background: str
    base_value: float
    importance: pd.DataFrame
    by_group: pd.DataFrame
    swarm: pd.DataFrame  # one row per (patient, feature): shap, input value, its rank within the feature
    patients: pd.DataFrame  # one row per explained patient


def explanation_view(evaluation: StoredEvaluation) -> ExplanationView | None:
    """The stored SHAP results, shaped for plotting; None for evaluations made before SHAP existed."""
    stored = evaluation.result.get("explanations")
    if not stored:
        return None
    patients = pd.DataFrame(stored["patients"])
    records = [{"encounter_id": p["encounter_id"], "feature": f, "shap": p["shap"][f], "value": p["inputs"][f]}
               for p in stored["patients"] for f in stored["features"]]
    swarm = pd.DataFrame(records)
    swarm["value_rank"] = swarm.groupby("feature")["value"].rank(pct=True)
    return ExplanationView(stored["method"], stored["units"], stored["background"], float(stored["base_value"]),
                           pd.DataFrame(stored["importance"]), pd.DataFrame(stored["by_group"]), swarm,
                           patients.drop(columns=["shap", "inputs"]).assign(
                               kind=lambda d: d.apply(_kind, axis=1)))


def _kind(row: pd.Series) -> str:
    if row["label"] == 1 and not row["flagged"]:
        return "missed (developed the outcome, not flagged)"
    if row["label"] == 1:
        return "caught (developed the outcome, flagged)"
    return "false alarm (flagged, did not develop it)" if row["flagged"] else "correctly left alone"


def patient_contributions(evaluation: StoredEvaluation, encounter_id: str) -> pd.DataFrame:
    """One patient's SHAP contributions with the input values, largest effect first."""
    for patient in evaluation.result.get("explanations", {}).get("patients", []):
        if patient["encounter_id"] == encounter_id:
            frame = pd.DataFrame({"feature": list(patient["shap"]), "shap": list(patient["shap"].values()),
                                  "value": [patient["inputs"][f] for f in patient["shap"]]})
            return frame.reindex(frame["shap"].abs().sort_values(ascending=False).index).reset_index(drop=True)
    raise NotFound(f"patient {encounter_id!r} is not among the explained patients of this evaluation")
