"""Use cases: what a model is for, at which threshold, and what it must achieve.

A use case is versioned and moves in and out as YAML, so a clinical lead can
review it like any other document. Criteria are checked against ModelBoard's
own evaluation, never against numbers the model's authors logged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from core.domain.monitoring_policy import MonitoringPolicy, parse_monitoring
from core.domain.monitoring_policy import policy_document as monitoring_document
from core.domain.policy import PromotionPolicy, parse_policy
from core.domain.policy import to_document as policy_document
from core.errors import ValidationError

NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TEXT_FIELDS = ("title", "intended_use", "target_population", "outcome")


@dataclass(frozen=True)
class PerformanceCriteria:
    """Minimums a candidate must meet; None means the use case sets no such limit."""

    min_auroc: float | None = None
    min_sensitivity: float | None = None
    min_specificity: float | None = None
    min_ppv: float | None = None
    max_sensitivity_gap: float | None = None
    min_subgroup_n: int = 100
    min_evaluation_patients: int = 100  # below this an evaluation set is refused: too few patients to judge
    min_evaluation_outcomes: int = 10  # …or too few patients who had the outcome


@dataclass(frozen=True)
class UseCase:
    name: str
    title: str
    intended_use: str
    target_population: str
    outcome: str
    threshold: float
    models: tuple[str, ...]
    label: str
    sensitive_attributes: tuple[str, ...]
    criteria: PerformanceCriteria = field(default_factory=PerformanceCriteria)
    promotion: PromotionPolicy = field(default_factory=PromotionPolicy)
    monitoring: MonitoringPolicy = field(default_factory=MonitoringPolicy)
    positive_class: str | None = None  # the label value meaning "had the outcome", when it is not 1/true
    # Plausibility limits of numeric inputs (input → (lowest, highest), both allowed): a value outside cannot be
    # a real measurement of a living patient (a unit mix-up, a typing error, a device's error code), so ingest
    # quarantines its row. They are not normal ranges: a septic patient's lactate of 15 is abnormal and real.
    plausible_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # How each input is called on screen: input → (clinical name, unit), e.g. spo2 → ("SpO2 (pulse oximetry)", "%").
    # Inputs not named here fall back to core.domain.glossary's common clinical names, then to the raw name in words.
    inputs: dict[str, tuple[str, str]] = field(default_factory=dict)
    version: int = 0  # assigned by the store on import

    def plain_criteria(self) -> list[str]:
        """The criteria as sentences a clinician can check against the evaluation."""
        c, out = self.criteria, []
        if c.min_sensitivity is not None:
            out.append(f"Of 100 patients who develop the outcome, the model flags at least "
                       f"{c.min_sensitivity * 100:.0f} — overall and in every group of {c.min_subgroup_n} or more "
                       f"patients (sensitivity ≥ {c.min_sensitivity:.2f}).")
        if c.max_sensitivity_gap is not None:
            out.append(f"Sensitivity differs between groups by at most {c.max_sensitivity_gap:.2f}.")
        if c.min_auroc is not None:
            out.append(f"AUROC at least {c.min_auroc:.2f}.")
        if c.min_specificity is not None:
            out.append(f"Specificity at least {c.min_specificity:.2f}.")
        if c.min_ppv is not None:
            out.append(f"PPV at least {c.min_ppv:.2f}.")
        return out


def _fraction(raw: dict[str, Any], key: str, problems: list[str]) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= float(value) <= 1:
        problems.append(f"criteria.{key} must be a number between 0 and 1, not {value!r}")
        return None
    return float(value)


def _criteria(raw: Any, problems: list[str]) -> PerformanceCriteria:
    if raw is None:
        return PerformanceCriteria()
    if not isinstance(raw, dict):
        problems.append("criteria must be a mapping, e.g. {min_sensitivity: 0.85}")
        return PerformanceCriteria()
    known = {f for f in PerformanceCriteria.__dataclass_fields__}
    problems += [f"criteria.{k} is not a known criterion (known: {', '.join(sorted(known))})"
                 for k in raw if k not in known]
    counts = {key: _count(raw, key, default, problems) for key, default in COUNT_CRITERIA.items()}
    values = {k: _fraction(raw, k, problems) for k in known if k not in COUNT_CRITERIA}
    return PerformanceCriteria(min_subgroup_n=counts["min_subgroup_n"],
                               min_evaluation_patients=counts["min_evaluation_patients"],
                               min_evaluation_outcomes=counts["min_evaluation_outcomes"], **values)


COUNT_CRITERIA = {"min_subgroup_n": 100, "min_evaluation_patients": 100, "min_evaluation_outcomes": 10}


def _count(raw: dict[str, Any], key: str, default: int, problems: list[str]) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"criteria.{key} must be a whole number of patients ≥ 1, not {value!r}")
        return default
    return value


def _names(raw: Any, key: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v.strip() for v in raw):
        problems.append(f"{key} must be a non-empty list of names")
        return ()
    return tuple(v.strip() for v in raw)


def _plausible_ranges(raw: Any, problems: list[str]) -> dict[str, tuple[float, float]]:
    if raw is None:
        return {}
    example = "e.g. {heart_rate: [20, 300], lactate: [0, 30]}"
    if not isinstance(raw, dict):
        problems.append(f"plausible_ranges must map input names to [lowest, highest], {example}")
        return {}
    ranges = {}
    for name, limits in raw.items():
        numbers = (isinstance(limits, list | tuple) and len(limits) == 2
                   and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                           for v in limits))
        if not isinstance(name, str) or not name.strip() or not numbers or not limits[0] < limits[1]:
            problems.append(f"plausible_ranges.{name} must be [lowest, highest] with two finite numbers, lowest "
                            f"first, not {limits!r} ({example})")
            continue
        ranges[name.strip()] = (float(limits[0]), float(limits[1]))
    return ranges


def parse_use_case(raw: Any) -> UseCase:
    """Check a use-case document (parsed YAML) and list every problem at once."""
    if not isinstance(raw, dict):
        raise ValidationError("a use case must be a YAML mapping with name, title, intended_use, … (see docs)")
    problems: list[str] = []
    name = str(raw.get("name", ""))
    if not NAME_RULE.match(name):
        problems.append(f"name {name!r} must be 2–64 lower-case letters, digits, '.', '_' or '-'")
    for key in TEXT_FIELDS:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            problems.append(f"{key} is required: say it in plain words")
    threshold = raw.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < float(threshold) < 1:
        problems.append(f"threshold must be a probability strictly between 0 and 1, not {threshold!r}")
        threshold = 0.5
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        problems.append("label is required: the column of the evaluation data that holds the outcome (0/1)")
    known = set(TEXT_FIELDS) | {"name", "threshold", "models", "label", "sensitive_attributes", "criteria", "version",
                                   "promotion", "monitoring", "positive_class", "plausible_ranges", "inputs"}
    positive = raw.get("positive_class")
    if positive is not None and (isinstance(positive, bool) or not isinstance(positive, str | int)
                                 or not str(positive).strip()):
        problems.append(f"positive_class must name the label value that means the outcome, e.g. 'sepsis', "
                        f"not {positive!r}")
        positive = None
    problems += [f"{k} is not a known field" for k in raw if k not in known]
    models = _names(raw.get("models"), "models", problems)
    sensitive = _names(raw.get("sensitive_attributes"), "sensitive_attributes", problems)
    criteria = _criteria(raw.get("criteria"), problems)
    promotion = parse_policy(raw.get("promotion"), problems)
    monitoring = parse_monitoring(raw.get("monitoring"), problems)
    ranges = _plausible_ranges(raw.get("plausible_ranges"), problems)
    inputs = _input_names(raw.get("inputs"), problems)
    if problems:
        raise ValidationError("use case not accepted: " + "; ".join(problems))
    return UseCase(name=name, title=raw["title"].strip(), intended_use=raw["intended_use"].strip(),
                   target_population=raw["target_population"].strip(), outcome=raw["outcome"].strip(),
                   threshold=float(threshold), models=models, label=str(label).strip(),
                   sensitive_attributes=sensitive, criteria=criteria, promotion=promotion,
                   monitoring=monitoring, positive_class=None if positive is None else str(positive).strip(),
                   plausible_ranges=ranges, inputs=inputs)


def _input_names(raw: Any, problems: list[str]) -> dict[str, tuple[str, str]]:
    """`inputs: {lactate: {name: Lactate, unit: mmol/L}}`: the words and unit pages show for each input."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("inputs must map each input to its name and unit, e.g. lactate: {name: Lactate, unit: mmol/L}")
        return {}
    out: dict[str, tuple[str, str]] = {}
    for key, value in raw.items():
        entry = value if isinstance(value, dict) else {}
        name, unit = entry.get("name"), entry.get("unit", "")
        if not isinstance(name, str) or not name.strip() or not isinstance(unit, str) or \
                set(entry) - {"name", "unit"}:
            problems.append(f"inputs.{key} must be {{name: <words a clinician reads>, unit: <unit or blank>}}")
            continue
        out[str(key)] = (name.strip(), unit.strip())
    return out


def to_document(use_case: UseCase) -> dict[str, Any]:
    """The YAML-ready form (version included, for the reader's information)."""
    c = use_case.criteria
    criteria = {k: getattr(c, k) for k in PerformanceCriteria.__dataclass_fields__ if getattr(c, k) is not None}
    return {"name": use_case.name, "version": use_case.version, "title": use_case.title,
            "intended_use": use_case.intended_use, "target_population": use_case.target_population,
            "outcome": use_case.outcome, "threshold": use_case.threshold, "label": use_case.label,
            "models": list(use_case.models), "sensitive_attributes": list(use_case.sensitive_attributes),
            "criteria": criteria, "promotion": policy_document(use_case.promotion),
            "monitoring": monitoring_document(use_case.monitoring)} | (
                {"positive_class": use_case.positive_class} if use_case.positive_class is not None else {}) | (
                {"plausible_ranges": {k: list(v) for k, v in use_case.plausible_ranges.items()}}
                if use_case.plausible_ranges else {}) | (
                {"inputs": {k: {"name": n, "unit": u} for k, (n, u) in use_case.inputs.items()}}
                if use_case.inputs else {})
