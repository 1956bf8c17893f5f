"""One monitoring window: its rows read from the log, and every figure the rules and pages need.

Only the window's own rows are read (DuckDB extracts the inputs from the JSON
log), so a window never pulls the whole prediction log into memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from core.adapters.store import Store
from core.domain.signature import InputColumn
from core.metrics.drift import data_drift, population_stability_index
from core.metrics.monitoring import (
    EstimatedPerformance,
    RealisedPerformance,
    estimated_performance,
    realised_performance,
    subgroup_sensitivity,
)
from core.services.monitoring_reference import LABEL, SCORE, Reference


@dataclass(frozen=True)
class WindowFigures:
    start: datetime
    end: datetime
    predictions: int
    labelled: int
    drift: pd.DataFrame  # one row per column: DRIFT_COLUMNS (test, score, decision, means, missing shares)
    n_inputs: int
    n_drifted: int
    score_psi: float
    mean_score: float
    flagged_share: float
    estimated: EstimatedPerformance
    realised: RealisedPerformance | None
    subgroups: pd.DataFrame  # attribute, subgroup, n, positives, sensitivity (+ interval), est_sensitivity
    reference_mean_score: float
    reference_flagged_share: float

    @property
    def drifted_share(self) -> float:
        return self.n_drifted / self.n_inputs if self.n_inputs else float("nan")

    def missing_rises(self) -> pd.DataFrame:
        """Inputs more often missing than at sign-off: column, reference_missing_share, missing_share, rise."""
        inputs = self.drift[self.drift["role"] == "input"]
        rise = inputs["missing_share"] - inputs["reference_missing_share"]
        return inputs.assign(rise=rise)[rise > 0].sort_values("rise", ascending=False)

    def drifted_inputs(self) -> list[str]:
        rows = self.drift[(self.drift["role"] == "input") & self.drift["drifted"]]
        return rows.sort_values("score", ascending=False)["column"].tolist()


def _extract(column: InputColumn, i: int) -> str:
    """SQL reading one input from the JSON log in its declared type (JSON null → NULL)."""
    if column.kind == "numerical":
        return f"CAST(json_extract(p.features, ?) AS DOUBLE) AS f{i}"
    if column.type == "boolean":
        return f"CAST(json_extract(p.features, ?) AS BOOLEAN) AS f{i}"
    return f"json_extract_string(p.features, ?) AS f{i}"


def read_window(store: Store, model: str, version: int, start: datetime, end: datetime,
                columns: list[InputColumn], attributes: list[str]) -> pd.DataFrame:
    """The window's predictions with inputs (in their declared types) and attributes as columns, and the
    outcome where known."""
    features = [c.name for c in columns]
    inputs = [_extract(c, i) for i, c in enumerate(columns)]
    groups = [f"json_extract_string(p.attributes, ?) AS a{i}" for i in range(len(attributes))]
    frame = store.query_df(
        f"SELECT {', '.join(['p.score', 'p.decision', 'l.outcome', *inputs, *groups])} "  # noqa: S608 - fixed aliases
        "FROM prediction_log p LEFT JOIN outcome_labels l USING (model_name, encounter_id) "
        "WHERE p.model_name = ? AND p.model_version = ? AND p.predicted_at >= ? AND p.predicted_at < ?",
        [*(_path(f) for f in features), *(_path(a) for a in attributes), model, version, start, end])
    names = {f"f{i}": f for i, f in enumerate(features)} | {f"a{i}": a for i, a in enumerate(attributes)}
    return frame.rename(columns=names)


def _path(key: str) -> str:
    """A JSON path for one key, quoted so any column name (dots, spaces) is read literally."""
    return '$."' + key.replace('"', '\\"') + '"'


def reference_subgroups(reference: Reference, ref: pd.DataFrame, attributes: list[str]) -> dict[tuple[str, str], float]:
    """Each group's sensitivity in the reference data, at the use case's threshold (once per version)."""
    y, s = ref[LABEL].to_numpy(float), ref[SCORE].to_numpy(float)
    return {(a, g): v.value for a in attributes
            for g, _, _, v, _ in subgroup_sensitivity(y, s, s >= reference.threshold, ref[a].astype(str).to_numpy())}


def window_figures(reference: Reference, ref: pd.DataFrame, current: pd.DataFrame, *, start: datetime,
                   end: datetime, columns: list[InputColumn], attributes: list[str],
                   at_signoff: dict[tuple[str, str], float] | None = None) -> WindowFigures:
    """Drift, missing inputs, score drift, the CBPE estimate and — for labelled rows — realised performance
    and subgroups."""
    attributes = [a for a in attributes if a in ref.columns]
    drift = _drift_table(ref, current, columns, attributes)
    scores, flagged = current["score"].to_numpy(float), current["decision"].to_numpy(bool)
    labelled = current["outcome"].notna().to_numpy()
    realised = (realised_performance(current["outcome"][labelled].to_numpy(int), scores[labelled],
                                     flagged[labelled]) if labelled.any() else None)
    ref_scores = ref[SCORE].to_numpy(float)
    inputs = drift[(drift["role"] == "input") & (drift["stattest"] != "none")]
    return WindowFigures(
        start=start, end=end, predictions=len(current), labelled=int(labelled.sum()), drift=drift,
        n_inputs=len(inputs), n_drifted=int(inputs["drifted"].sum()),
        score_psi=population_stability_index(ref_scores, scores) if len(scores) else float("nan"),
        mean_score=float(scores.mean()) if len(scores) else float("nan"),
        flagged_share=float(flagged.mean()) if len(flagged) else float("nan"),
        estimated=estimated_performance(scores, flagged), realised=realised,
        subgroups=_subgroups(current, scores, flagged, attributes,
                             reference_subgroups(reference, ref, attributes) if at_signoff is None else at_signoff),
        reference_mean_score=float(ref_scores.mean()),
        reference_flagged_share=float((ref_scores >= reference.threshold).mean()))


DRIFT_COLUMNS = ["column", "role", "kind", "stattest", "score", "threshold", "drifted", "reference_mean",
                 "current_mean", "reference_missing_share", "missing_share"]


def _drift_table(ref: pd.DataFrame, current: pd.DataFrame, columns: list[InputColumn],
                 attributes: list[str]) -> pd.DataFrame:
    """Per-column drift by evidently's methods — numbers as numbers, text and flags as categories — for the
    model's inputs and the patient mix (sensitive attributes), with each input's missing share on both sides.
    A column with no value on one side cannot be tested for drift; its missing share still says why."""
    if current.empty:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    compared = [c for c in columns if c.kind != "datetime"]
    testable = [c for c in compared if ref[c.name].notna().any() and current[c.name].notna().any()]
    numerical = [c.name for c in testable if c.kind == "numerical"]
    mix = [a for a in attributes if ref[a].notna().any() and current[a].notna().any()]  # a file may lack one
    categorical = [c.name for c in testable if c.kind == "categorical"] + mix
    result = data_drift(_categories(ref, categorical), _categories(current, categorical), numerical=numerical,
                        categorical=categorical)
    untested = [(c.name, str(c.kind)) for c in compared if c not in testable]
    untested += [(a, "categorical") for a in attributes if a not in mix]
    table = (pd.concat([result.columns, _untestable(untested)], ignore_index=True) if untested
             else result.columns.copy())
    names = {c.name: c for c in columns}
    table["role"] = np.where(table["column"].isin(list(names)), "input", "patient mix")
    table["reference_mean"] = [_mean(ref, c, names) for c in table["column"]]
    table["current_mean"] = [_mean(current, c, names) for c in table["column"]]
    table["reference_missing_share"] = [float(ref[c].isna().mean()) if c in names else np.nan for c in table["column"]]
    table["missing_share"] = [float(current[c].isna().mean()) if c in names else np.nan for c in table["column"]]
    return table[DRIFT_COLUMNS]


def _categories(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Category columns as text on both sides (a flag stored as true/false compares with one read as bool)."""
    out = frame.copy()
    for name in names:
        out[name] = frame[name].astype("string")
    return out


def _untestable(columns: list[tuple[str, str]]) -> pd.DataFrame:
    rows = [{"column": name, "kind": kind, "stattest": "none", "score": np.nan, "threshold": np.nan,
             "drifted": False} for name, kind in columns]
    return pd.DataFrame(rows, columns=["column", "kind", "stattest", "score", "threshold", "drifted"])


def _mean(frame: pd.DataFrame, name: str, names: dict[str, InputColumn]) -> float:
    if name not in names or names[name].kind != "numerical" or frame[name].notna().sum() == 0:
        return float("nan")
    return float(frame[name].astype(float).mean())


def _subgroups(current: pd.DataFrame, scores: np.ndarray, flagged: np.ndarray, attributes: list[str],
               at_signoff: dict[tuple[str, str], float]) -> pd.DataFrame:
    """Realised and estimated sensitivity per group, beside the group's sensitivity in the reference data."""
    y = current["outcome"].to_numpy(dtype=float, na_value=np.nan)
    rows = []
    for attribute in attributes:
        if current[attribute].isna().all():
            continue  # the window's files did not carry this attribute: no groups to show
        groups = current[attribute].astype(str).to_numpy()
        for group, n, positives, sensitivity, estimate in subgroup_sensitivity(y, scores, flagged, groups):
            rows.append({"attribute": attribute, "subgroup": group, "n": n, "positives": positives,
                         "sensitivity": sensitivity.value, "sensitivity_lo": sensitivity.lo,
                         "sensitivity_hi": sensitivity.hi, "est_sensitivity": estimate,
                         "reference_sensitivity": at_signoff.get((attribute, group), np.nan)})
    return pd.DataFrame(rows, columns=["attribute", "subgroup", "n", "positives", "sensitivity", "sensitivity_lo",
                                       "sensitivity_hi", "est_sensitivity", "reference_sensitivity"])
