"""What monitoring watches for a use case: the window and the alert rules (YAML section `monitoring`).

Rules compare one window's figures with a limit. The performance rules act
only when the whole 95 % interval is past the limit: a day of 200 admissions
holds a dozen septic patients, and a point estimate alone would alert on noise
every week — clinicians stop reading alerts that cry wolf.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

Window = Literal["daily", "weekly"]
WINDOWS: tuple[Window, ...] = ("daily", "weekly")
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class AlertRule:
    """One rule: `name` is also the alert's de-duplication key."""

    name: str
    threshold: float | None  # None: taken from the use case (subgroup sensitivity ← criteria.min_sensitivity)
    severity: str

    def sentence(self) -> str:
        t = self.threshold
        return {
            "drifted_feature_share": f"More than {_pct(t)} of the model's inputs drifted from the reference data.",
            "input_drift": (f"One input shifted strongly: its drift distance is above {t:g} (evidently flags a "
                            "column from 0.1; a lab that changes its assay moves one input far)."),
            "score_psi": f"The distribution of risk scores moved: population stability index above {t:g}.",
            "auroc_drop": f"AUROC fell more than {t:g} below its value at sign-off (whole 95 % interval below).",
            "subgroup_sensitivity": (f"Sensitivity in some patient group fell below {_pct(t)} (whole 99 % interval "
                                     "below; a group already below it at sign-off must fall 5 points further)."),
            "input_missing": (f"One input is missing more often than at sign-off: its missing share rose by more "
                              f"than {_points(t)} percentage points (whole 95 % interval above; a changed EHR build "
                              "or order set leaves the model without it)."),
        }[self.name] + f" Severity: {self.severity}."


def _points(value: float | None) -> str:
    return "the limit's" if value is None else f"{value * 100:g}"


def _pct(value: float | None) -> str:
    return "the use case's minimum" if value is None else f"{value * 100:g} %"


DEFAULT_RULES = (
    AlertRule("drifted_feature_share", 0.30, "warning"),
    AlertRule("input_drift", 0.25, "warning"),
    AlertRule("score_psi", 0.20, "critical"),
    AlertRule("auroc_drop", 0.05, "critical"),
    AlertRule("subgroup_sensitivity", None, "critical"),
    AlertRule("input_missing", 0.10, "warning"),
)
RULE_NAMES = tuple(r.name for r in DEFAULT_RULES)
# What an alert of each rule is called (its title, before the model and the window).
RULE_TITLES: dict[str, str] = {
    "drifted_feature_share": "Many of the model's inputs drifted",
    "input_drift": "One of the model's inputs shifted strongly",
    "score_psi": "The model's risk scores shifted", "auroc_drop": "The model discriminates worse",
    "subgroup_sensitivity": "The model misses patients in a subgroup",
    "input_missing": "One of the model's inputs is missing more often"}


@dataclass(frozen=True)
class MonitoringPolicy:
    window: Window = "daily"
    rules: tuple[AlertRule, ...] = DEFAULT_RULES
    min_window_predictions: int = 50  # fewer predictions: the window is shown but no rule judges it
    min_subgroup_positives: int = 20

    def rule(self, name: str) -> AlertRule | None:
        return next((r for r in self.rules if r.name == name), None)

    def with_minimum_sensitivity(self, minimum: float | None) -> MonitoringPolicy:
        """Fill the subgroup rule's limit from the use case's criteria when the YAML left it out."""
        rules = tuple(replace(r, threshold=minimum) if r.name == "subgroup_sensitivity" and r.threshold is None
                      else r for r in self.rules)
        return replace(self, rules=tuple(r for r in rules if r.threshold is not None))


KNOWN_KEYS = {"window", "rules", "min_window_predictions", "min_subgroup_positives"}


def parse_monitoring(raw: Any, problems: list[str]) -> MonitoringPolicy:
    """Read the `monitoring` section; what is left out takes the defaults; problems are appended."""
    if raw is None:
        return MonitoringPolicy()
    if not isinstance(raw, dict):
        problems.append("monitoring must be a mapping, e.g. {window: daily, rules: {score_psi: {threshold: 0.2}}}")
        return MonitoringPolicy()
    problems += [f"monitoring.{k} is not a known setting (known: {', '.join(sorted(KNOWN_KEYS))})"
                 for k in raw if k not in KNOWN_KEYS]
    window = raw.get("window", "daily")
    if window not in WINDOWS:
        problems.append(f"monitoring.window must be daily or weekly, not {window!r}")
        window = "daily"
    counts = [_count(raw, key, default, problems) for key, default in
              (("min_window_predictions", 50), ("min_subgroup_positives", 20))]
    return MonitoringPolicy(window, _rules(raw.get("rules"), problems), counts[0], counts[1])


def _count(raw: dict[str, Any], key: str, default: int, problems: list[str]) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        problems.append(f"monitoring.{key} must be a whole number from 1 to 1,000,000, not {value!r}")
        return default
    return value


def _rules(raw: Any, problems: list[str]) -> tuple[AlertRule, ...]:
    """Rules named in the YAML replace the defaults of the same name; `off: true` switches one off."""
    if raw is None:
        return DEFAULT_RULES
    if not isinstance(raw, dict):
        problems.append("monitoring.rules must map a rule name to {threshold, severity}, e.g. "
                        "{score_psi: {threshold: 0.2, severity: critical}}")
        return DEFAULT_RULES
    out = {r.name: r for r in DEFAULT_RULES}
    for name, spec in raw.items():
        if name not in out:
            problems.append(f"monitoring.rules.{name} is not a rule (known: {', '.join(RULE_NAMES)})")
            continue
        if not isinstance(spec, dict):
            problems.append(f"monitoring.rules.{name} must be a mapping such as {{threshold: 0.2}}")
            continue
        if spec.get("off") is True:
            out.pop(name)
            continue
        out[name] = _rule(name, spec, out[name], problems)
    return tuple(out.values())


def _rule(name: str, spec: dict[str, Any], default: AlertRule, problems: list[str]) -> AlertRule:
    unknown = [k for k in spec if k not in ("threshold", "severity", "off")]
    if unknown:
        problems.append(f"monitoring.rules.{name} has unknown keys {unknown} (use threshold, severity, off)")
    threshold = spec.get("threshold", default.threshold)
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                  or not 0 < float(threshold) < 1):
        problems.append(f"monitoring.rules.{name}.threshold must be a number between 0 and 1, not {threshold!r}")
        threshold = default.threshold
    severity = spec.get("severity", default.severity)
    if severity not in SEVERITIES:
        problems.append(f"monitoring.rules.{name}.severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        severity = default.severity
    return AlertRule(name, None if threshold is None else float(threshold), str(severity))


def policy_document(policy: MonitoringPolicy) -> dict[str, Any]:
    return {"window": policy.window, "min_window_predictions": policy.min_window_predictions,
            "min_subgroup_positives": policy.min_subgroup_positives,
            "rules": {r.name: {"threshold": r.threshold, "severity": r.severity} for r in policy.rules
                      if r.threshold is not None} | {
                r.name: {"severity": r.severity} for r in policy.rules if r.threshold is None} | {
                # a rule switched off must stay off: left out, it would come back with its default on re-import
                name: {"off": True} for name in RULE_NAMES if policy.rule(name) is None}}


# ---- one limit per rule, one window convention, one next step per rule kind ------------------------------------

SUBGROUP_MARGIN = 0.05  # a group below the minimum at sign-off (a signed exception) must fall this much further


def auroc_floor(reference_auroc: float, drop: float) -> float:
    """The AUROC below which `auroc_drop` alerts: the sign-off AUROC minus the rule's allowed drop. The rule, the
    alert's evidence and the Monitoring chart all take the floor from here, so one number is shown everywhere."""
    return reference_auroc - drop


def subgroup_floor(minimum: float, at_signoff: float | None) -> float:
    """The sensitivity a group is held to by `subgroup_sensitivity`: the use case's minimum, or, for a group
    already below it at sign-off (accepted in a signed exception), its own sign-off value minus 5 points — else
    such a group would alert on every window from the first day."""
    if at_signoff is None or at_signoff != at_signoff or at_signoff >= minimum:  # NaN: no sign-off value
        return minimum
    return at_signoff - SUBGROUP_MARGIN


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def window_span(start: date | datetime, end: date | datetime) -> str:
    """A monitoring window in words, '2–8 Mar 2026'. Windows are stored with an EXCLUSIVE end (the midnight
    after the last day); people read the last day they cover, so the end shown is one day earlier. Dates only:
    a window is whole days. One day reads '2 Mar 2026'; across months '28 Feb–6 Mar 2026'; across years
    '29 Dec 2025–4 Jan 2026' (the same form app/monitoring_charts shows on the Monitoring page)."""
    first = start.date() if isinstance(start, datetime) else start
    last = (end.date() if isinstance(end, datetime) else end) - timedelta(days=1)
    last = max(last, first)

    def day(d: date, *, month: bool = True, year: bool = True) -> str:
        return f"{d.day}" + (f" {_MONTHS[d.month - 1]}" if month else "") + (f" {d.year}" if year else "")

    if first == last:
        return day(first)
    if first.year != last.year:
        return f"{day(first)}–{day(last)}"
    if first.month != last.month:
        return f"{day(first, year=False)}–{day(last)}"
    return f"{first.day}–{day(last)}"


# Laboratory inputs: a drift in one of these most often means the assay, analyser or units changed.
LAB_INPUTS = frozenset({"lactate", "wbc", "creatinine", "sodium", "potassium", "hemoglobin", "haemoglobin",
                        "platelets", "bilirubin", "crp", "procalcitonin", "glucose", "urea", "bun", "albumin"})

NEXT_STEPS: dict[str, str] = {
    "drifted_feature_share": (
        "Find out what changed in the patients or the data feed (a new ward, a new EHR build, a changed admission "
        "pathway); compare the drifted inputs on the Monitoring page and re-evaluate the model on recent patients "
        "before relying on it."),
    "input_drift": (
        "Check with {source} whether the way {subject} is measured or recorded changed (a new assay, device or "
        "unit); consider suspending the model if sensitivity falls."),
    "score_psi": (
        "The model now flags a different share of patients: check whether the patient mix or an input changed "
        "(see the inputs that shifted), and tell the wards that alert volumes may differ until it is explained."),
    "auroc_drop": (
        "The model ranks patients worse than at sign-off: ask the clinical lead to decide whether to suspend it, "
        "and ask the data scientists to re-evaluate or retrain it on recent patients."),
    "subgroup_sensitivity": (
        "The model misses more patients in {subject} than the use case allows: tell the clinical lead, check whether "
        "an input is measured differently for these patients, and consider suspending the model for them."),
    "input_missing": (
        "Check the EHR build, the interface and the order sets that supply {subject}: the model is scoring these "
        "patients without it."),
}


def next_step(rule: str, subject: str = "", *, raw_subject: str = "") -> str:
    """What a person should do first about a broken rule, in the words of the ward: each rule kind has its own
    step so an alert never stops at 'something moved'. `subject` is the input or group in words; `raw_subject`
    the raw input name, which tells a laboratory value (ask the laboratory) from a bedside one."""
    template = NEXT_STEPS.get(rule, "Read the evidence below, decide with the clinical lead whether the model can "
                                    "stay in use, and record what you did when you acknowledge the alert.")
    lab = raw_subject.lower() in LAB_INPUTS
    source = "the laboratory" if lab else "the wards and the EHR team"
    named = _mid_sentence(subject) or ("the input" if rule in ("input_drift", "input_missing") else "one patient group")
    text = template.format(subject=named, source=source)
    if rule == "input_drift" and lab:
        text = (f"Check with the laboratory whether the {named} assay or its units changed; consider suspending "
                "the model if sensitivity falls.")
    return text


def _mid_sentence(name: str) -> str:
    """'Lactate' → 'lactate' inside a sentence; an acronym ('AUROC', 'SpO2') keeps its capitals."""
    if len(name) > 1 and name[0].isupper() and not name[1].isupper():
        return name[0].lower() + name[1:]
    return name
