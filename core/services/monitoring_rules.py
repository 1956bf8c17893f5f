"""Judging one window by the use case's rules, and saying what was found in words a clinician reads.

A window with fewer predictions than the policy's minimum is shown but never
judged. Each breach carries its evidence (the window, the value, the limit, the
drifted inputs and how the scores moved), which the alert keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.domain.monitoring_policy import (
    RULE_TITLES,
    AlertRule,
    MonitoringPolicy,
    auroc_floor,
    subgroup_floor,
    window_span,
)
from core.metrics.intervals import wilson
from core.services.alerts import Severity
from core.services.monitoring_reference import Reference
from core.services.monitoring_window import WindowFigures


@dataclass(frozen=True)
class Breach:
    rule: str
    severity: str
    model: str
    version: int
    window_start: str
    window_end: str
    value: float
    threshold: float
    title: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    limit: float | None = None  # the one limit the value was judged against (see Finding); None: the threshold
    alert_id: str | None = None
    new: bool = False  # False: an alert for this rule was already open, so nothing new was raised

    @property
    def severity_level(self) -> Severity:
        return "critical" if self.severity == "critical" else "warning" if self.severity == "warning" else "info"

    def with_alert(self, alert_id: str | None, *, new: bool) -> Breach:
        return replace(self, alert_id=alert_id, new=new)

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "model": self.model, "version": self.version, "window_start": self.window_start,
                "window_end": self.window_end, "severity": self.severity, "value": round(self.value, 6),
                "threshold": self.threshold, "limit": self.threshold if self.limit is None else self.limit,
                "alert_id": self.alert_id, "new": self.new}


DISTANCES = ("wasserstein", "jensenshannon")
Z99 = 2.5758293035489


@dataclass(frozen=True)
class Finding:
    """What broke a rule: the value measured, the ONE limit it was judged against (in the value's own units: an
    AUROC floor, not the allowed drop), the input or group concerned, and a sentence about it."""

    value: float
    limit: float
    detail: str
    subject: str = ""  # the raw input, or 'attribute = group'; blank when the rule is about the whole model
    facts: dict[str, Any] = field(default_factory=dict)  # what the Alerts page needs to say it again in words


def judge(policy: MonitoringPolicy, reference: Reference, f: WindowFigures, *, model: str,
          version: int) -> list[Breach]:
    """Every rule the window breaks (none when the window is too small to judge)."""
    if f.predictions < policy.min_window_predictions:
        return []
    found = []
    for rule in policy.rules:
        finding = _measure(rule, policy, reference, f)
        if finding is not None:
            found.append(_breach(rule, reference, f, model, version, finding))
    return found


def _measure(rule: AlertRule, policy: MonitoringPolicy, reference: Reference, f: WindowFigures) -> Finding | None:
    """What broke the rule, or None when the rule holds or cannot be judged."""
    limit = float(rule.threshold or 0.0)
    if rule.name == "drifted_feature_share" and f.drifted_share > limit:
        return Finding(f.drifted_share, limit, f"{f.n_drifted} of the model's {f.n_inputs} inputs drifted "
                                               f"({f.drifted_share:.0%}, limit {limit:.0%}).",
                       facts={"drifted": f.n_drifted, "inputs": f.n_inputs})
    if rule.name == "input_drift":
        return _strongest_input(f, limit)
    if rule.name == "score_psi" and f.score_psi > limit:
        return Finding(f.score_psi, limit, f"The population stability index of the risk scores is "
                                           f"{f.score_psi:.2f} (limit {limit:g}).")
    if rule.name == "auroc_drop" and f.realised is not None and not math.isnan(reference.auroc):
        floor = auroc_floor(reference.auroc, limit)
        if f.realised.auroc.hi < floor:
            a = f.realised.auroc
            return Finding(a.value, floor, (
                f"AUROC was {a.value:.2f} (95 % CI {a.lo:.2f}–{a.hi:.2f}) on {f.realised.labelled} patients with "
                f"outcomes, against {reference.auroc:.2f} at sign-off (limit {floor:.2f}: {limit:g} below it)."),
                facts={"lo": a.lo, "hi": a.hi, "at_signoff": reference.auroc, "drop": limit,
                       "labelled": f.realised.labelled})
    if rule.name == "subgroup_sensitivity":
        return _worst_subgroup(f, limit, policy.min_subgroup_positives)
    if rule.name == "input_missing":
        return _missing_rise(f, limit)
    return None


def _missing_rise(f: WindowFigures, limit: float) -> Finding | None:
    """The input whose missing share rose most, when the rise passes the limit with its whole 95 % interval:
    a window of a few hundred patients moves a share by a few points by chance."""
    rises = f.missing_rises()
    if rises.empty:
        return None
    missing = np.round(rises["missing_share"].to_numpy(float) * f.predictions)
    lo, _ = wilson(missing, np.full(len(rises), float(f.predictions)))
    beyond = rises[lo - rises["reference_missing_share"].to_numpy(float) > limit]
    if beyond.empty:
        return None
    top = beyond.iloc[0]
    return Finding(float(top["rise"]), limit, (
        f"{top['column']} is missing for {top['missing_share']:.0%} of this window's patients, against "
        f"{top['reference_missing_share']:.0%} at sign-off (limit: a rise of {limit * 100:g} points). The model "
        f"sees these patients without {top['column']}; check the EHR build, interfaces and order sets."),
        subject=str(top["column"]),
        facts={"missing_share": float(top["missing_share"]),
               "reference_missing_share": float(top["reference_missing_share"])})


def _strongest_input(f: WindowFigures, limit: float) -> Finding | None:
    """Distances only (normed Wasserstein, Jensen–Shannon): a p-value says nothing about how far a column moved."""
    inputs = f.drift[(f.drift["role"] == "input") & f.drift["stattest"].isin(DISTANCES) & (f.drift["score"] > limit)]
    if inputs.empty:
        return None
    top = inputs.sort_values("score", ascending=False).iloc[0]
    known = not math.isnan(top["reference_mean"])
    moved = (f" Its mean moved from {top['reference_mean']:.3g} at sign-off to {top['current_mean']:.3g}."
             if known else "")
    return Finding(float(top["score"]), limit, (f"{top['column']} shifted strongly (drift distance "
                                                f"{top['score']:.2f}, limit {limit:g}).{moved}"),
                   subject=str(top["column"]),
                   facts={"stattest": str(top["stattest"]),
                          **({"reference_mean": float(top["reference_mean"]),
                              "current_mean": float(top["current_mean"])} if known else {})})


def _worst_subgroup(f: WindowFigures, limit: float, min_positives: int) -> Finding | None:
    """Judged on a 99 % interval: a window tests every subgroup at once, and one of fifteen would cross a 95 %
    interval by chance every few weeks. A group already below the minimum at sign-off (accepted in a signed
    exception) is held to its own sign-off value minus 5 points instead (`subgroup_floor`), and that floor is
    the limit the alert shows."""
    g = f.subgroups[f.subgroups["positives"] >= min_positives]
    if g.empty:
        return None
    caught = np.round(g["sensitivity"].to_numpy(float) * g["positives"].to_numpy(float))
    _, hi99 = wilson(caught, g["positives"].to_numpy(float), z=Z99)
    floor = np.array([subgroup_floor(limit, float(s)) for s in g["reference_sensitivity"].to_numpy(float)])
    below = g.assign(floor=floor)[hi99 < floor]
    if below.empty:
        return None
    worst = below.sort_values("sensitivity").iloc[0]
    caught_100 = round(float(worst["sensitivity"]) * 100)
    own = float(worst["floor"]) != limit
    at_signoff = float(worst["reference_sensitivity"])
    return Finding(float(worst["sensitivity"]), float(worst["floor"]), (
        f"Among {worst['attribute']} = {worst['subgroup']}, of 100 patients who developed the outcome the model "
        f"flagged about {caught_100} ({int(worst['positives'])} patients with the outcome; 95 % CI "
        f"{worst['sensitivity_lo']:.0%}–{worst['sensitivity_hi']:.0%}); the limit is {float(worst['floor']):.0%}"
        + (f" (this group's {at_signoff:.0%} at sign-off minus 5 points; the use case requires {limit:.0%})."
           if own else " (the use case's minimum)"
           + (f", and at sign-off this group's was {at_signoff:.0%}." if not math.isnan(at_signoff) else "."))),
        subject=f"{worst['attribute']} = {worst['subgroup']}",
        facts={"attribute": str(worst["attribute"]), "group": str(worst["subgroup"]),
               "positives": int(worst["positives"]), "lo": float(worst["sensitivity_lo"]),
               "hi": float(worst["sensitivity_hi"]), "minimum": limit,
               "at_signoff": None if math.isnan(at_signoff) else at_signoff})


def _records(frame: Any) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts: an untested column's score is null, not NaN."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def _breach(rule: AlertRule, reference: Reference, f: WindowFigures, model: str, version: int,
            finding: Finding) -> Breach:
    drifted = f.drifted_inputs()
    shifted = ("Inputs that shifted: " + ", ".join(drifted) + ".") if drifted else "No single input drifted."
    scores = (f"The model's scores moved: mean predicted risk {f.mean_score:.1%} (at sign-off "
              f"{f.reference_mean_score:.1%}); flagged {f.flagged_share * 100:.0f} of every 100 patients "
              f"(at sign-off {f.reference_flagged_share * 100:.0f}).")
    evidence = {"window_start": f.start.isoformat(), "window_end": f.end.isoformat(), "value": finding.value,
                "limit": finding.limit, "subject": finding.subject, "facts": finding.facts,
                "threshold": rule.threshold, "predictions": f.predictions, "labelled": f.labelled,
                "drifted_inputs": drifted, "score_psi": f.score_psi, "mean_score": f.mean_score,
                "reference_mean_score": f.reference_mean_score, "flagged_share": f.flagged_share,
                "reference_flagged_share": f.reference_flagged_share, "reference": reference.source,
                "drift": _records(f.drift[["column", "role", "stattest", "score", "threshold", "drifted",
                                           "reference_mean", "current_mean", "reference_missing_share",
                                           "missing_share"]])}
    return Breach(rule.name, rule.severity, model, version, f.start.isoformat(), f.end.isoformat(),
                  float(finding.value), float(rule.threshold or 0.0),
                  f"{RULE_TITLES[rule.name]} ({model} v{version}, {window_span(f.start, f.end)})",
                  f"{finding.detail} {shifted} {scores}", evidence, limit=finding.limit)
