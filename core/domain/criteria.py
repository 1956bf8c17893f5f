"""Checking a use case's minimum criteria against ModelBoard's own evaluation."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from core.domain.glossary import attribute
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


# ---- in words, for screens (stored results keep their strings: signatures and exports name them) -----------

_AGE = re.compile(r"^age(?:_|$)")
_LOWEST = re.compile(r"^lowest (?P<value>[\d.]+) \((?P<set>[^:]+): (?P<group>.+)\)(?:; (?P<below>\d+) groups below)?$")
_WIDEST = re.compile(r"^(?P<value>[\d.]+) \((?P<set>.+)\)$")
_EXAMPLE = re.compile(r"\(e\.g\. (?P<set>[^:]+): (?P<group>[^)]+)\)")
_REQUIRED = re.compile(r"^(?P<op>[≥≤]) (?P<value>[\d.]+)$")
_GENERIC_GROUPS = {"other", "unknown", "missing", "all patients", "(missing)"}


def who(attribute_set: str, group: str) -> str:
    """A group in words: ('race_ethnicity', 'Black') → 'Black patients'; ('age_band × race_ethnicity',
    '80+ / Black') → 'Black patients aged 80+'; ('sex × payer', 'female / Medicaid') → 'female Medicaid patients'."""
    if group == "all patients" or attribute_set == "overall":
        return "all patients"
    attributes = [a.strip() for a in attribute_set.split("×")]
    values = [v.strip() for v in str(group).split(" / ")]
    if len(values) != len(attributes):
        return f"{group} patients"
    before = [v for a, v in zip(attributes, values, strict=True) if not _AGE.match(a)]
    after = [f"aged {v}" for a, v in zip(attributes, values, strict=True) if _AGE.match(a)]
    return " ".join([*before, "patients", *after])


def group_values(group: str) -> list[str]:
    """The values that name a group (an intersection has one per attribute), without generic ones ('Other')."""
    return [v.strip() for v in str(group).split(" / ") if v.strip().lower() not in _GENERIC_GROUPS]


@dataclass(frozen=True)
class CriterionWords:
    """A stored criterion as a clinician reads it: 'Sensitivity in every group of 100 or more patients' —
    'lowest: Hispanic patients aged 18-44, 40 of 100; 44 groups below the minimum' (required 'at least 80 of 100')."""

    name: str
    observed: str
    required: str


def _per100(value: float) -> str:
    return f"{round(value * 100):.0f} of 100"


def _metric(raw: str) -> tuple[str, bool]:
    """(its name on screen, whether it is a proportion said as 'x of 100')."""
    return {"auroc": ("AUROC", False), "sensitivity": ("Sensitivity", True), "specificity": ("Specificity", True),
            "ppv": ("PPV", True), "npv": ("NPV", True)}.get(raw, (raw.replace("_", " ").capitalize(), False))


def _required(text: str, *, proportion: bool, points: bool = False) -> str:
    m = _REQUIRED.match(text)
    if not m:
        return text
    word = "at least" if m["op"] == "≥" else "at most"
    value = float(m["value"])
    if points:
        return f"{word} {round(value * 100):.0f} percentage points"
    return f"{word} {_per100(value)}" if proportion else f"{word} {value:.2f}"


def _unjudged_words(observed: str) -> str:
    def example(m: re.Match[str]) -> str:
        return f"(e.g. {who(m['set'], m['group'])})"

    text = _EXAMPLE.sub(example, observed)
    return re.sub(r"\b[a-z]+(?:_[a-z0-9]+)+\b", lambda m: attribute(m.group(0)).lower(), text)


def criterion_words(criterion: dict[str, Any]) -> CriterionWords:
    """Any stored criterion (old evaluations included) in words: names and groups from the glossary, rates as
    natural frequencies, the worst group named as patients ('Black patients aged 80+'), never as raw attributes."""
    name, observed, required = str(criterion["criterion"]), str(criterion["observed"]), str(criterion["required"])
    if observed.startswith("cannot be judged"):
        observed = _unjudged_words(observed)
    if name.endswith(" overall"):
        label, proportion = _metric(name.removesuffix(" overall"))
        value = criterion.get("value")
        if value is not None and not observed.startswith("cannot"):
            observed = _per100(float(value)) if proportion else f"{float(value):.2f}"
        return CriterionWords(f"{label}, all patients", observed, _required(required, proportion=proportion))
    if name.startswith("sensitivity in every group"):
        size = re.search(r"(\d+) patients", name)
        label = "Sensitivity in every group" + (f" of {size.group(1)} or more patients" if size else "")
        m = _LOWEST.match(observed)
        if m:
            observed = f"lowest: {who(m['set'], m['group'])}, {_per100(float(m['value']))}" + (
                f"; {m['below']} groups below the minimum" if m["below"] else "")
        return CriterionWords(label, observed, _required(required, proportion=True))
    if name == "sensitivity gap between groups":
        m = _WIDEST.match(observed)
        if m:
            where = attribute(m["set"]) if m["set"] != "—" else "no attribute"
            observed = (f"{round(float(m['value']) * 100):.0f} percentage points, largest by "
                        f"{where[:1].lower()}{where[1:]}")
        return CriterionWords("Gap in sensitivity between groups", observed,
                              _required(required, proportion=True, points=True))
    return CriterionWords(name[:1].upper() + name[1:], observed, required)
