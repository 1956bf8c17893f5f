"""Checking a use case's minimum criteria against ModelBoard's own evaluation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.domain.usecase import UseCase


@dataclass(frozen=True)
class CriterionResult:
    criterion: str
    passed: bool
    observed: str
    required: str
    value: float | None = None  # the number behind `observed` (None when undefined), for machine readers

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "passed": self.passed, "observed": self.observed,
                "required": self.required, "value": self.value}


def _minimum(name: str, value: float, limit: float) -> CriterionResult:
    ok = not math.isnan(value) and value >= limit
    undefined = math.isnan(value)
    return CriterionResult(name, ok, "undefined" if undefined else f"{value:.3f}", f"≥ {limit:.2f}",
                           None if undefined else value)


def assess(use_case: UseCase, overall: dict[str, float], groups: list[dict[str, Any]]) -> list[CriterionResult]:
    """One result per criterion; subgroup criteria count only groups with enough patients.

    `groups` are subgroup rows (attribute_set, group, n, sensitivity, enough_patients, …).
    """
    c = use_case.criteria
    results = []
    for key, limit in (("auroc", c.min_auroc), ("sensitivity", c.min_sensitivity),
                       ("specificity", c.min_specificity), ("ppv", c.min_ppv)):
        if limit is not None:
            results.append(_minimum(f"{key} overall", float(overall[key]), limit))
    judged = [g for g in groups if g["enough_patients"] and g["attribute_set"] != "overall"]
    if c.min_sensitivity is not None:
        below = [g for g in judged if not float(g["sensitivity"]) >= c.min_sensitivity]
        worst = min(judged, key=lambda g: _or_inf(g["sensitivity"]), default=None)
        observed = f"lowest {float(worst['sensitivity']):.3f} ({worst['attribute_set']}: {worst['group']})" \
            if worst else "no group large enough"
        results.append(CriterionResult(f"sensitivity in every group of ≥ {c.min_subgroup_n} patients",
                                       not below, observed + (f"; {len(below)} groups below" if below else ""),
                                       f"≥ {c.min_sensitivity:.2f}", float(worst["sensitivity"]) if worst else None))
    if c.max_sensitivity_gap is not None:
        results.append(_gap(judged, c.max_sensitivity_gap))
    return results


def _or_inf(value: Any) -> float:
    v = float(value)
    return math.inf if math.isnan(v) else v


def _gap(judged: list[dict[str, Any]], limit: float) -> CriterionResult:
    widest, where = 0.0, "—"
    by_set: dict[str, list[float]] = {}
    for g in judged:
        if not math.isnan(float(g["sensitivity"])):
            by_set.setdefault(g["attribute_set"], []).append(float(g["sensitivity"]))
    for attribute_set, values in by_set.items():
        if len(values) > 1 and max(values) - min(values) > widest:
            widest, where = max(values) - min(values), attribute_set
    return CriterionResult("sensitivity gap between groups", widest <= limit, f"{widest:.3f} ({where})",
                           f"≤ {limit:.2f}", widest)
