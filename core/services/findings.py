"""The finding a reviewer must see first: which patients the model fails most, in one sentence.

Fairness opens on it and Monitoring's fairness over time opens on the same attribute. The rule, from the use
case's criteria: among groups with enough patients to judge (`min_subgroup_n`), a group below the use case's
minimum sensitivity weighs most (the further below, the worse); failing that, the widest gap between the best and
the worst group of one attribute. Single attributes come first: an intersection (age band × race) replaces them
only when its worst group is clearly worse — its whole 95 % interval below the single attribute's worst group's
interval — because intersections are many and small, and one of them is always lowest by chance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.adapters.store import Store
from core.domain.access import Permission, User, require
from core.domain.criteria import group_values, who
from core.domain.glossary import attribute as attribute_words
from core.domain.glossary import per100
from core.domain.model_card import FIELDS
from core.domain.usecase import PerformanceCriteria
from core.errors import NotFound
from core.metrics.grouping import INTERSECTION
from core.metrics.intervals import wilson
from core.services import monitoring
from core.services.model_card import narratives
from core.services.submission import StoredEvaluation, latest_evaluation, load_evaluation
from core.services.usecases import get_use_case, use_case_for_model

# Narrative card fields where a developer records known causes of a disparity, in the order they are quoted.
CAUSE_FIELDS = ("known_risks_limitations", "ethical_considerations", "bias_mitigation")
_LABELS = {f.key: f.label for f in FIELDS}


@dataclass(frozen=True)
class GroupSensitivity:
    """One group's sensitivity: of its `positives` patients who developed the outcome, `caught` were flagged."""

    attribute: str
    group: str
    n: int
    positives: int
    caught: int
    sensitivity: float
    lo: float
    hi: float

    @property
    def who(self) -> str:
        return who(self.attribute, self.group)


@dataclass(frozen=True)
class DocumentedCause:
    """A model card field that mentions the group (or its attribute): where the reader finds a known cause."""

    field: str
    label: str
    text: str


@dataclass(frozen=True)
class Finding:
    attribute: str  # raw attribute set, e.g. 'race_ethnicity'
    worst: GroupSensitivity
    best: GroupSensitivity  # the comparison: the best-served judged group of the same attribute
    others: float  # sensitivity among every other patient of the attribute, pooled
    below_minimum: bool
    exceeds_gap: bool
    headline: str
    calibration: str | None  # when the risk is also off for the worst group (its O/E interval excludes 1)
    cause: DocumentedCause | None

    @property
    def gap(self) -> float:
        return self.best.sensitivity - self.worst.sensitivity

    @property
    def clinically_relevant(self) -> bool:
        return self.below_minimum or self.exceeds_gap


@dataclass(frozen=True)
class FairnessReview:
    """What a fairness view opens on: the finding (None when no two groups can be judged), the sentence to lead
    with, and the attribute to open on (None when there is none)."""

    finding: Finding | None
    headline: str
    attribute: str | None
    basis: str = "the evaluation"  # what the numbers come from: 'the evaluation' or 'the monitored windows'
    # The lowest group of each OTHER attribute that is below the minimum too: the headline names one finding,
    # and a reviewer must not read it as the only one.
    also_below: tuple[GroupSensitivity, ...] = ()

    def also_below_sentence(self) -> str | None:
        if not self.also_below:
            return None
        return "Also below the minimum: " + "; ".join(
            f"{g.who} ({per100(g.sensitivity)}, {attribute_words(g.attribute).lower()})" for g in self.also_below
        ) + "."


def _rows(table: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Per-group rows with caught patients and a 95 % Wilson interval where the table has none."""
    rows = table[table["attribute_set"] != "overall"].copy()
    rows["positives"] = rows["positives"].fillna(0).astype(int)
    caught = rows["tp"] if "tp" in rows else rows["sensitivity"] * rows["positives"]
    rows["caught"] = np.round(pd.to_numeric(caught, errors="coerce").fillna(0)).astype(int)
    lo, hi = wilson(rows["caught"].to_numpy(float), rows["positives"].to_numpy(float))
    for column, fallback in (("sensitivity_lo", lo), ("sensitivity_hi", hi)):
        rows[column] = pd.to_numeric(rows[column], errors="coerce").fillna(pd.Series(fallback, index=rows.index)) \
            if column in rows else fallback
    enough = rows["enough_patients"].astype(bool) if "enough_patients" in rows else True
    rows["judged"] = enough & (rows["n"] >= min_n) & (rows["positives"] > 0) & rows["sensitivity"].notna()
    return rows


def _group(row: pd.Series) -> GroupSensitivity:
    return GroupSensitivity(str(row["attribute_set"]), str(row["group"]), int(row["n"]), int(row["positives"]),
                            int(row["caught"]), float(row["sensitivity"]), float(row["sensitivity_lo"]),
                            float(row["sensitivity_hi"]))


def _candidate(rows: pd.DataFrame, attribute: str,
               criteria: PerformanceCriteria) -> tuple[tuple[bool, float], pd.Series, pd.Series, float] | None:
    """(severity, worst row, best row, others' sensitivity) of one attribute set; None without two judged groups."""
    groups = rows[rows["attribute_set"] == attribute]
    judged = groups[groups["judged"]]
    if len(judged) < 2:
        return None
    ordered = judged.sort_values("sensitivity", kind="stable")
    worst, best = ordered.iloc[0], ordered.iloc[-1]
    rest = groups[groups.index != worst.name]
    others = rest["caught"].sum() / rest["positives"].sum() if rest["positives"].sum() else math.nan
    limit = criteria.min_sensitivity
    below = limit is not None and float(worst["sensitivity"]) < limit
    severity = (below, (limit - float(worst["sensitivity"])) if below and limit is not None
                else float(best["sensitivity"] - worst["sensitivity"]))
    return severity, worst, best, float(others)


def lowest_group(table: pd.DataFrame, attribute: str, min_n: int) -> str | None:
    """The judged group of one attribute set with the lowest sensitivity (None when no group is judged): the bar a
    reader's eye should go to when they look at an attribute other than the finding's."""
    rows = _rows(table, min_n)
    judged = rows[(rows["attribute_set"] == attribute) & rows["judged"]]
    return None if judged.empty else str(judged.sort_values("sensitivity", kind="stable").iloc[0]["group"])


def _clearly_worse(intersection: pd.Series, single: pd.Series) -> bool:
    return float(intersection["sensitivity_hi"]) < float(single["sensitivity_lo"])


def documented_cause(card: Mapping[str, str], attribute: str, group: str) -> DocumentedCause | None:
    """The first cause field of the card that names the group ('Black'), else one that names its attribute
    ('race'); None when the card records nothing about either."""
    def mentions(words: list[str]) -> DocumentedCause | None:
        for key in CAUSE_FIELDS:
            text = str(card.get(key) or "")
            if any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE) for w in words if w):
                return DocumentedCause(key, _LABELS.get(key, key), text)
        return None

    parts = [p.strip() for p in attribute.split(INTERSECTION)]
    named = [w for p in parts for w in [attribute_words(p).lower(), *p.split("_")] if len(w) >= 3]
    return mentions(group_values(group)) or mentions(named)


def _calibration(table: pd.DataFrame, worst: GroupSensitivity, outcome: str) -> str | None:
    if not {"observed_expected", "observed_expected_lo", "observed_expected_hi"} <= set(table.columns):
        return None
    row = table[(table["attribute_set"] == worst.attribute) & (table["group"] == worst.group)]
    if row.empty or row[["observed_expected_lo", "observed_expected_hi"]].isna().any(axis=None):
        return None
    oe, lo, hi = (float(row.iloc[0][c]) for c in ("observed_expected", "observed_expected_lo", "observed_expected_hi"))
    if lo <= 1 <= hi:
        return None
    direction = "under-estimates" if oe > 1 else "over-estimates"
    return (f"The model also {direction} their risk: {oe * 100:.0f} of them developed {outcome} for every 100 it "
            f"expected (95 % CI {lo * 100:.0f}–{hi * 100:.0f}).")


def _headline(worst: GroupSensitivity, best: GroupSensitivity, outcome: str, criteria: PerformanceCriteria,
              below: bool) -> str:
    limit = criteria.min_sensitivity
    tail = f", below the use case's minimum of {per100(limit)}" if below and limit is not None else ""
    return (f"{worst.who[:1].upper()}{worst.who[1:]} who developed {outcome} are flagged less often than "
            f"{best.who}: {per100(worst.sensitivity)} vs {per100(best.sensitivity)}{tail}.")


def find_gap(table: pd.DataFrame, criteria: PerformanceCriteria, *, outcome: str,
             card: Mapping[str, str] | None = None) -> FairnessReview:
    """The attribute and group with the largest clinically relevant sensitivity gap (rule in the module docstring).

    `table`: one row per group (attribute_set, group, n, positives, sensitivity; optionally tp, sensitivity_lo/hi,
    enough_patients, observed_expected[_lo/_hi]), as an evaluation stores it or as monitoring pools it.
    """
    rows = _rows(table, criteria.min_subgroup_n)
    sets = list(dict.fromkeys(rows["attribute_set"]))
    scored = {a: c for a in sets if (c := _candidate(rows, a, criteria)) is not None}
    singles = {a: c for a, c in scored.items() if INTERSECTION not in a}
    if not singles:
        return FairnessReview(None, f"No attribute has two groups of {criteria.min_subgroup_n} or more patients, "
                                    f"with patients who developed {outcome}, to compare: too few patients to judge.",
                              None)
    chosen = max(singles, key=lambda a: singles[a][0])
    pairs = {a: c for a, c in scored.items() if INTERSECTION in a and _clearly_worse(c[1], singles[chosen][1])}
    if pairs:
        chosen = min(pairs, key=lambda a: float(pairs[a][1]["sensitivity"]))
    severity, worst_row, best_row, others = scored[chosen]
    worst, best = _group(worst_row), _group(best_row)
    exceeds = criteria.max_sensitivity_gap is not None and worst_row is not best_row and \
        best.sensitivity - worst.sensitivity > criteria.max_sensitivity_gap
    finding = Finding(chosen, worst, best, others, severity[0], exceeds,
                      _headline(worst, best, outcome, criteria, severity[0]), _calibration(table, worst, outcome),
                      documented_cause(card or {}, chosen, worst.group))
    also = tuple(sorted((_group(c[1]) for a, c in singles.items() if a != chosen and c[0][0]),
                        key=lambda g: g.sensitivity))
    if not finding.clinically_relevant:
        headline = (f"No group stands out: sensitivity is within the use case's limits in every group of "
                    f"{criteria.min_subgroup_n} or more patients (lowest: {worst.who}, {per100(worst.sensitivity)}).")
        return FairnessReview(finding, headline, chosen)
    return FairnessReview(finding, finding.headline, chosen, also_below=also)


def outcome_words(outcome: str) -> str:
    """'Sepsis within 48 hours' → 'sepsis within 48 hours', to sit inside a sentence."""
    return outcome[:1].lower() + outcome[1:] if outcome else "the outcome"


def evaluation_review(store: Store, viewer: User, evaluation_id: str) -> FairnessReview:
    """The finding of one stored evaluation, judged by the use case version it was evaluated against, with the
    model card field that documents a known cause."""
    require(viewer, Permission.VIEW_REGISTRY)
    evaluation = load_evaluation(store, viewer, evaluation_id)
    return _review_of(store, viewer, evaluation)


def _review_of(store: Store, viewer: User, evaluation: StoredEvaluation) -> FairnessReview:
    require(viewer, Permission.VIEW_REGISTRY)
    result = evaluation.result
    stored = result.get("use_case") or {}
    try:
        use_case = get_use_case(store, viewer, stored["name"], stored.get("version")) if stored.get("name") \
            else use_case_for_model(store, viewer, evaluation.model)
        criteria = use_case.criteria
    except NotFound:
        criteria = PerformanceCriteria(min_subgroup_n=int(result.get("min_n", 100)))
    table = pd.DataFrame(result.get("subgroup_table", []))
    if table.empty:
        return FairnessReview(None, "This evaluation stored no subgroup results.", None)
    return replace(find_gap(table, criteria, outcome=outcome_words(str(result.get("outcome", ""))),
                            card=narratives(store, evaluation.model, evaluation.version)),
                   basis=f"the evaluation of v{evaluation.version}")


def monitoring_review(store: Store, viewer: User, model: str, version: int) -> FairnessReview:
    """Where Monitoring's fairness over time opens: the version's own evaluation finding, else the attribute with
    the largest gap over the monitored windows (each group's windows pooled, judged by the use case's criteria)."""
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    evaluation = latest_evaluation(store, viewer, model, version)
    if evaluation is not None:
        review = _review_of(store, viewer, evaluation)
        if review.attribute is not None:
            return review
    try:
        use_case = use_case_for_model(store, viewer, model)
        criteria, outcome = use_case.criteria, outcome_words(use_case.outcome)
    except NotFound:
        criteria, outcome = PerformanceCriteria(), "the outcome"
    pooled = [pooled_windows(monitoring.subgroup_series(store, viewer, model, version, a), a)
              for a in monitoring.subgroup_attributes(store, viewer, model, version)]
    if not pooled:
        return FairnessReview(None, "No window has subgroup results yet.", None)
    return replace(find_gap(pd.concat(pooled, ignore_index=True), criteria, outcome=outcome),
                   basis="the monitored windows")


def pooled_windows(series: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """Each group's windows added up (patients, with the outcome, caught), as one subgroup table."""
    frame = series.assign(caught=np.round(series["sensitivity"].fillna(0) * series["positives"].fillna(0)))
    pooled = frame.groupby("subgroup", sort=True)[["n", "positives", "caught"]].sum().reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = np.where(pooled["positives"] > 0, pooled["caught"] / pooled["positives"], np.nan)
    return pd.DataFrame({"attribute_set": attribute, "group": pooled["subgroup"].astype(str), "n": pooled["n"],
                         "positives": pooled["positives"], "tp": pooled["caught"], "sensitivity": sensitivity})
