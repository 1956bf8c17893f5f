"""Checking a use case's minimum criteria against ModelBoard's own evaluation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.domain.usecase import UseCase


@dataclass(frozen=True)
class CriterionResult:
    """One criterion's verdict. A criterion the evaluation cannot assess (no group large enough, no outcomes
    to count) is `judged=False`: never passed, so it blocks sign-off like a failure until a clinical lead
    records a signed exception — but it says so, rather than "failed"."""

    criterion: str
    passed: bool
    observed: str
    required: str
    value: float | None = None  # the number behind `observed` (None when undefined), for machine readers
    judged: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "passed": self.passed, "observed": self.observed,
                "required": self.required, "value": self.value, "judged": self.judged}


def verdict_word(criterion: dict[str, Any]) -> str:
    """PASS, FAIL or CANNOT BE JUDGED, for a stored criterion (older evaluations have no `judged`: judged)."""
    if criterion["passed"]:
        return "PASS"
    return "FAIL" if criterion.get("judged", True) else "CANNOT BE JUDGED"


def _unjudged(name: str, why: str, required: str) -> CriterionResult:
    return CriterionResult(name, False, f"cannot be judged: {why}", required, None, judged=False)


def _minimum(name: str, value: float, limit: float) -> CriterionResult:
    if math.isnan(value):
        return _unjudged(name, "undefined on this evaluation set (no patients with or without the outcome)",
                         f"≥ {limit:.2f}")
    return CriterionResult(name, value >= limit, f"{value:.3f}", f"≥ {limit:.2f}", value)


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
        results.append(_every_group(judged, c.min_sensitivity, c.min_subgroup_n))
    if c.max_sensitivity_gap is not None:
        results.append(_gap(judged, c.max_sensitivity_gap))
    return results


def _every_group(judged: list[dict[str, Any]], limit: float, min_n: int) -> CriterionResult:
    """Fails on any group below the limit; cannot be judged when no group is large enough, or a large group has
    no patient with the outcome (its sensitivity is undefined) and none fails."""
    name, required = f"sensitivity in every group of ≥ {min_n} patients", f"≥ {limit:.2f}"
    defined = [g for g in judged if not math.isnan(float(g["sensitivity"]))]
    below = [g for g in defined if float(g["sensitivity"]) < limit]
    worst = min(defined, key=lambda g: float(g["sensitivity"]), default=None)
    if not below:
        if not judged:
            return _unjudged(name, f"no group has {min_n} or more patients", required)
        if len(defined) < len(judged):
            empty = next(g for g in judged if g not in defined)
            return _unjudged(name, f"{len(judged) - len(defined)} large group(s) had no patient with the outcome "
                                   f"(e.g. {empty['attribute_set']}: {empty['group']})", required)
    assert worst is not None  # there are defined groups: below is non-empty, or every judged group is defined
    observed = f"lowest {float(worst['sensitivity']):.3f} ({worst['attribute_set']}: {worst['group']})"
    return CriterionResult(name, not below, observed + (f"; {len(below)} groups below" if below else ""), required,
                           float(worst["sensitivity"]))


def _gap(judged: list[dict[str, Any]], limit: float) -> CriterionResult:
    widest, where = 0.0, "—"
    by_set: dict[str, list[float]] = {}
    for g in judged:
        if not math.isnan(float(g["sensitivity"])):
            by_set.setdefault(g["attribute_set"], []).append(float(g["sensitivity"]))
    for attribute_set, values in by_set.items():
        if len(values) > 1 and max(values) - min(values) > widest:
            widest, where = max(values) - min(values), attribute_set
    if not any(len(values) > 1 for values in by_set.values()):
        return _unjudged("sensitivity gap between groups", "no attribute has two groups large enough, with "
                         "patients who had the outcome, to compare", f"≤ {limit:.2f}")
    return CriterionResult("sensitivity gap between groups", widest <= limit, f"{widest:.3f} ({where})",
                           f"≤ {limit:.2f}", widest)
