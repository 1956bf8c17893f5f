"""Read models for clinical review pages: stored evaluations, never recomputed on load
(the threshold explorer recomputes from stored per-patient scores, which takes milliseconds),
and the clinical sentences the pages show beside the numbers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from core.adapters.store import Store
from core.domain.access import Permission, User, require
from core.domain.criteria import who
from core.domain.glossary import Glossary, percent, with_unit
from core.errors import NotFound
from core.metrics.explanations import contribution_order, in_percentage_points, risk_from
from core.metrics.grouping import INTERSECTION
from core.metrics.subgroups import subgroup_metrics
from core.metrics.thresholds import sweep_thresholds
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


def _stored_cohort(store: Store, evaluation_id: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame] | None:
    rows = store.query_df("SELECT label, score, attributes FROM evaluation_rows WHERE evaluation_id = ? "
                          "ORDER BY row_index", [evaluation_id])
    if rows.empty:
        return None
    attributes = pd.DataFrame([json.loads(a) for a in rows["attributes"]])
    return rows["label"].to_numpy(), rows["score"].to_numpy(dtype=float), attributes


def _per100(value: float) -> str:
    return f"{value * 100:.0f}"


def natural_frequency(row: dict[str, Any] | pd.Series, outcome: str) -> str:
    """'Of 100 patients who developed sepsis, the model flagged 81' — or why it cannot be said."""
    value, people = row["sensitivity"], _who(row)
    if pd.isna(value):
        return f"{_capital(people)}: no patient developed {outcome}, so sensitivity is undefined."
    if not row["enough_patients"]:
        return f"{_capital(people)}: too few patients to judge ({int(row['n'])})."
    return f"Of 100 {people} who developed {outcome}, the model flagged {_per100(value)}."


def _who(row: dict[str, Any] | pd.Series) -> str:
    """'Black patients', 'patients aged 18-44', 'all patients' (core.domain.criteria.who)."""
    return who(str(row.get("attribute_set", "")), str(row["group"]))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _among(row: pd.Series, outcome: str) -> str:
    if not row["enough_patients"]:
        return f"among {_who(row)}, too few patients to judge (n = {int(row['n'])})"
    if pd.isna(row["sensitivity"]):
        return f"among {_who(row)}, none developed {outcome}, so it cannot be said"
    return f"among {_who(row)}, {_per100(row['sensitivity'])}"


def threshold_sentence(groups: pd.DataFrame, threshold: float, outcome: str) -> str:
    """'At 0.10: of 100 patients who developed sepsis, the model flags 87; among female patients, 79; …'

    `groups`: the all-patients row first, then the groups of one attribute set.
    """
    overall, rest = groups.iloc[0], groups.iloc[1:]
    if pd.isna(overall["sensitivity"]):
        head = f"At {threshold:.2f}: no patient developed {outcome}, so sensitivity cannot be said"
    else:
        head = f"At {threshold:.2f}: of 100 patients who developed {outcome}, the model flags " \
               f"{_per100(overall['sensitivity'])}"
    parts = [head, *(_among(row, outcome) for _, row in rest.iterrows())]
    return "; ".join(parts) + f". That is about {overall['alerts_per_100']:.0f} alerts per 100 encounters."


@dataclass(frozen=True)
class ThresholdView:
    """The threshold explorer for one attribute set: cells per group, the sentence, and curves."""

    threshold: float
    groups: pd.DataFrame  # all patients first; tp, fp, fn, tn, sensitivity, ppv, alerts_per_100, judgement
    sentence: str
    curves: pd.DataFrame  # group, threshold, sensitivity, alerts_per_100; all patients and judged groups
    left_out: tuple[str, ...]  # groups too small to draw


def threshold_view(store: Store, viewer: User, evaluation_id: str, *, threshold: float, min_n: int,
                   attribute_set: str, outcome: str) -> ThresholdView | None:
    """Everything the explorer shows at `threshold`, from the stored per-patient scores (None if none stored)."""
    require(viewer, Permission.VIEW_REGISTRY)
    cohort = _stored_cohort(store, evaluation_id)
    if cohort is None:
        return None
    y, score, attributes = cohort
    columns = tuple(attribute_set.split(INTERSECTION))
    rows = subgroup_metrics(y, score, sensitive_features=attributes[list(columns)], threshold=threshold,
                            min_n=min_n, pairwise=len(columns) > 1).by_group
    groups = rows[rows["attribute_set"].isin(["overall", attribute_set])].reset_index(drop=True)
    groups["alerts_per_100"] = groups["selection_rate"] * 100
    groups["judgement"] = groups["enough_patients"].map({True: "judged", False: "too few patients to judge"})
    curves = sweep_thresholds(y, score, sensitive_features=attributes, attribute_set=columns)
    small = tuple(groups.loc[~groups["enough_patients"], "group"])
    return ThresholdView(threshold, groups, threshold_sentence(groups, threshold, outcome),
                         curves[~curves["group"].isin(small)].reset_index(drop=True), small)


METRIC_WORDS = {"sensitivity": "sensitivity", "specificity": "specificity", "ppv": "PPV", "npv": "NPV",
                "selection_rate": "share of patients flagged", "auroc": "AUROC"}


def _number(value: Any) -> str:
    return "undefined" if value is None or pd.isna(value) else f"{float(value):.2f}"


def gap_sentences(evaluation: StoredEvaluation, attribute_set: str) -> list[str]:
    """The to-overall gaps in words, one per metric: 'The largest gap to all patients in sensitivity:
    among Black patients it is 0.140 lower (0.620 vs 0.760 for all patients); …'. Empty for older evaluations."""
    gaps = pd.DataFrame(evaluation.result.get("gaps", []))
    if gaps.empty or "difference_to_overall" not in gaps:
        return []
    out = []
    for _, gap in gaps[gaps["attribute_set"] == attribute_set].iterrows():
        if gap["metric"] not in METRIC_WORDS or pd.isna(gap["furthest_minus_overall"]):
            continue
        delta, overall = float(gap["furthest_minus_overall"]), float(gap["overall"])
        direction = "the same" if delta == 0 else "lower" if delta < 0 else "higher"
        out.append(f"The largest gap to all patients in {METRIC_WORDS[gap['metric']]}: among "
                   f"{who(attribute_set, str(gap['furthest_group']))} it is {abs(delta):.3f} {direction} "
                   f"({overall + delta:.3f} vs "
                   f"{overall:.3f} for all patients); smallest ratio of a group to all patients "
                   f"{_number(gap['ratio_to_overall'])} (1 means equal).")
    return out


def calibration_by_group(evaluation: StoredEvaluation, attribute_set: str) -> pd.DataFrame:
    """Observed vs predicted risk per group of one attribute set, all patients first (empty for
    evaluations stored before per-group calibration existed)."""
    table = subgroup_frame(evaluation)
    if "mean_predicted" not in table:
        return pd.DataFrame()
    rows = table[table["attribute_set"].isin(["overall", attribute_set])].reset_index(drop=True)
    return rows.rename(columns={"prevalence": "observed_rate", "prevalence_lo": "observed_rate_lo",
                                "prevalence_hi": "observed_rate_hi"})


def calibration_sentence(row: pd.Series, outcome: str) -> str:
    """'Among Black patients the model predicted 20 % on average; 12 % developed sepsis: 61 for every 100 expected.'"""
    people = _who(row)
    if not row["enough_patients"]:
        return f"Among {people}: too few patients to judge (n = {int(row['n'])})."
    if pd.isna(row["observed_expected"]):
        return f"Among {people}: the model predicted no risk at all, so observed against expected cannot be said."
    return (f"Among {people} the model predicted {row['mean_predicted']:.0%} on average and "
            f"{row['observed_rate']:.0%} developed {outcome}: {_per100(row['observed_expected'])} for every 100 "
            f"it expected (95 % CI {_per100(row['observed_expected_lo'])}–{_per100(row['observed_expected_hi'])}).")


@dataclass(frozen=True)
class ExplanationView:
    """The stored SHAP results in a clinician's words: effects in percentage points of risk where the model's
    explanation allows it (log-odds or probability), inputs by their clinical names, raw names kept for tooltips."""

    method: str
    units: str
    background: str
    base_value: float
    importance: pd.DataFrame  # feature, mean_abs_shap, name, effect (average |effect| on the shown scale)
    by_group: pd.DataFrame  # attribute, group, feature, mean_abs_shap, name, share (of the group's total influence)
    swarm: pd.DataFrame  # one row per (patient, feature): shap, value, value_rank, name, effect
    patients: pd.DataFrame  # one row per explained patient
    in_points: bool = False  # effects are percentage points of risk (else the model's own output scale)
    base_risk: float | None = None  # the risk at the explanation's starting point (its base value)
    yes_no: frozenset[str] = frozenset()  # inputs whose values are only 0 and 1: shown as no / yes

    @property
    def scale(self) -> str:
        return "percentage points of risk" if self.in_points else "the model's own output scale"

    @property
    def method_note(self) -> str:
        """The method in a data scientist's terms, for the toggle."""
        conversion = {"log-odds": ("each patient's SHAP values (log-odds) added one at a time to the base value, "
                                   "largest first; an input's effect is the change in predicted probability its "
                                   "step causes, so a patient's effects add up to predicted risk minus base risk"),
                      "probability": "SHAP values are in probability units already: effect = SHAP × 100"}
        return (f"SHAP, {self.method}, {self.units}\nbackground: {self.background}\n"
                f"base value: {self.base_value:.4f} ({self.units})\n"
                f"percentage points: {conversion.get(self.units, 'none: the output is not a risk')}\n"
                "by group: each input's mean |SHAP| as a share of the group's total")


def explanation_view(evaluation: StoredEvaluation, glossary: Glossary | None = None) -> ExplanationView | None:
    """The stored SHAP results, shaped for plotting; None for evaluations made before SHAP existed.
    Nothing is recomputed: the percentage points are a change of scale of the stored values."""
    stored = evaluation.result.get("explanations")
    if not stored:
        return None
    words = glossary or Glossary()
    features, units, base = list(stored["features"]), str(stored["units"]), float(stored["base_value"])
    values = np.array([[p["shap"][f] for f in features] for p in stored["patients"]], dtype=float)
    points = in_percentage_points(base, values, units)
    effects = points if points is not None else values
    names = {f: words.input(f).name for f in features}
    patients = pd.DataFrame(stored["patients"])
    swarm = pd.DataFrame([{"encounter_id": p["encounter_id"], "feature": f, "shap": p["shap"][f],
                           "value": p["inputs"][f]} for p in stored["patients"] for f in features])
    swarm["value_rank"] = swarm.groupby("feature")["value"].transform(_value_rank)
    swarm["name"] = swarm["feature"].map(names)
    swarm["effect"] = effects.reshape(-1)
    average = pd.Series(np.abs(effects).mean(axis=0), index=features)
    importance = pd.DataFrame(stored["importance"]).assign(
        name=lambda d: d["feature"].map(names), effect=lambda d: d["feature"].map(average))
    by_group = pd.DataFrame(stored["by_group"])
    if not by_group.empty:
        total = by_group.groupby(["attribute", "group"])["mean_abs_shap"].transform("sum")
        by_group = by_group.assign(name=by_group["feature"].map(names), share=by_group["mean_abs_shap"] / total)
    risk = risk_from(base, units)
    numeric = pd.to_numeric(swarm["value"], errors="coerce")
    yes_no = frozenset(f for f, v in numeric.groupby(swarm["feature"]) if v.notna().all() and v.isin([0, 1]).all())
    return ExplanationView(stored["method"], units, stored["background"], base, importance, by_group, swarm,
                           patients.drop(columns=["shap", "inputs"]).assign(kind=lambda d: d.apply(_kind, axis=1)),
                           in_points=points is not None, base_risk=None if risk is None else float(risk),
                           yes_no=yes_no)


def _value_rank(values: pd.Series) -> pd.Series:
    """Where each patient's value stands among the explained patients (0–1): numbers by size, categories in
    alphabetical order; missing values have no rank (drawn grey)."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() == values.notna().sum():
        return numbers.rank(pct=True)
    text = values.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    codes = pd.Series(pd.Categorical(text).codes, index=values.index).astype(float)
    return codes.where(codes >= 0).rank(pct=True, method="dense")


def format_value(value: Any, unit: str = "") -> str:
    """An input value for a label: numbers compactly with their unit, categories as they are, missing in words."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "not recorded"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return with_unit(f"{value:g}", unit)
    return str(value)


def _kind(row: pd.Series) -> str:
    if row["label"] == 1 and not row["flagged"]:
        return "missed (developed the outcome, not flagged)"
    if row["label"] == 1:
        return "caught (developed the outcome, flagged)"
    return "false alarm (flagged, did not develop it)" if row["flagged"] else "correctly left alone"


def patient_contributions(evaluation: StoredEvaluation, encounter_id: str) -> pd.DataFrame:
    """One patient's SHAP contributions with the input values, largest effect first."""
    patient = _explained_patient(evaluation, encounter_id)
    features = list(patient["shap"])
    shap = np.array([patient["shap"][f] for f in features], dtype=float)
    order = contribution_order(shap)[0]
    return pd.DataFrame({"feature": [features[i] for i in order], "shap": shap[order],
                         "value": [patient["inputs"][features[i]] for i in order]})


def _explained_patient(evaluation: StoredEvaluation, encounter_id: str) -> dict[str, Any]:
    for patient in evaluation.result.get("explanations", {}).get("patients", []):
        if patient["encounter_id"] == encounter_id:
            return dict(patient)
    raise NotFound(f"patient {encounter_id!r} is not among the explained patients of this evaluation")


@dataclass(frozen=True)
class PatientExplanation:
    """What pushed one patient's risk up or down, in the order the waterfall draws it."""

    encounter_id: str
    rows: pd.DataFrame  # feature, name, label ("Lactate = 4.1 mmol/L"), shap, effect (on the view's scale)
    start: float  # the waterfall's start: baseline risk in % (or the base value on the model's own scale)
    end: float  # start + the effects: predicted risk in % (or the model's output)
    stored_risk: float  # the risk score the evaluation stored for this patient (0–1)
    sentence: str


def patient_explanation(evaluation: StoredEvaluation, encounter_id: str, view: ExplanationView,
                        glossary: Glossary | None = None) -> PatientExplanation:
    """One patient's contributions as `view` shows them (percentage points when it can), largest first, with
    labels in clinical words; the sentence cross-checks the end point against the score the evaluation stored."""
    words = glossary or Glossary()
    parts = patient_contributions(evaluation, encounter_id)
    patient = _explained_patient(evaluation, encounter_id)
    points = in_percentage_points(view.base_value, parts["shap"].to_numpy(), view.units)
    effect = points[0] if points is not None else parts["shap"].to_numpy()
    terms = [words.input(f) for f in parts["feature"]]
    labels = [f"{t.name}: {'yes' if v else 'no'}" if t.raw in view.yes_no and v is not None else
              f"{t.name} = {format_value(v, t.unit)}" for t, v in zip(terms, parts["value"], strict=True)]
    rows = parts.assign(name=[t.name for t in terms], label=labels, effect=effect)
    start = view.base_risk * 100 if view.in_points and view.base_risk is not None else view.base_value
    end = start + float(effect.sum())
    stored = float(patient["score"])
    kind = _kind(pd.Series(patient))
    if not view.in_points:
        sentence = (f"The explanation is on the model's own output scale ({view.units}), which is not a risk, so it "
                    f"cannot be shown in percentage points. The model's risk for this patient: {percent(stored)}. "
                    f"Outcome: {kind}.")
        return PatientExplanation(encounter_id, rows, start, end, stored, sentence)
    agrees = abs(end - stored * 100) < 0.5
    check = (f"the risk the model gave this patient ({percent(stored)})" if agrees else
             f"not the risk the model gave this patient ({percent(stored)}): the explanation is approximate")
    sentence = (f"Starting from the model's baseline risk of {start:.0f} %, each input pushed this patient's risk up "
                f"or down by the percentage points shown, to {end:.0f} %: {check}. Outcome: {kind}.")
    return PatientExplanation(encounter_id, rows, start, end, stored, sentence)
