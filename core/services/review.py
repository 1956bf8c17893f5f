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
