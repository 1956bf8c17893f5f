"""Plain clinical words for metrics, shared by pages (no Streamlit here)."""

from __future__ import annotations

import re
from typing import Any

METRIC_NAMES: dict[str, str] = {
    "val_auroc": "AUROC",
    "val_auprc": "AUPRC",
    "val_sensitivity": "Sensitivity",
    "val_specificity": "Specificity",
    "val_ppv": "PPV",
    "val_brier": "Brier score",
}


def explain(metric: str, value: float, outcome: str = "the outcome") -> str:
    """One sentence a clinician can read, with natural frequencies where they fit."""
    per100 = round(value * 100)
    sentences = {
        "val_auroc": f"Given one patient who developed {outcome} and one who did not, the model ranks the "
                     f"first higher about {per100} times in 100 (50 is a coin toss, 100 is perfect).",
        "val_auprc": "Average share of flagged patients who truly developed it, across all thresholds; "
                     "most useful when the outcome is rare.",
        "val_sensitivity": f"Of 100 patients who developed {outcome}, the model flagged {per100}.",
        "val_specificity": f"Of 100 patients who did not develop {outcome}, the model left {per100} alone.",
        "val_ppv": f"Of 100 patients the model flagged, {per100} truly developed {outcome} "
                   "(depends on how common it is).",
        "val_brier": f"Mean squared error of the predicted risk: {value:.3f} (lower is better; 0 is perfect).",
    }
    return sentences.get(metric, "")


def verdict(passed: bool) -> str:
    """Pass/fail in words and an icon, never by colour alone."""
    return ":material/check_circle: **Pass**" if passed else ":material/cancel: **Fail**"


def criterion_verdict(criterion: dict[str, object]) -> str:
    """A use-case criterion's verdict; one the evaluation could not assess says so (and blocks like a failure)."""
    if not criterion["passed"] and criterion.get("judged", True) is False:
        return ":material/help: **Cannot be judged**"
    return verdict(bool(criterion["passed"]))


CALIBRATION_WORDS: dict[str, tuple[str, str]] = {
    "expected_calibration_error": (
        "Expected calibration error",
        "On average the predicted risk is {pp} percentage points away from the share of patients who developed "
        "{o} (risk bands 10 points wide, weighted by patients); 0 is perfect."),
    "slope": (
        "Calibration slope",
        "Ideal 1. Below 1: predicted risks are too extreme (high risks too high, low risks too low); above 1: "
        "too timid, bunched towards the middle."),
    "intercept": (
        "Calibration intercept",
        "Ideal 0. Where the model predicts 50 %, below 0 means fewer than half developed {o} (it over-predicts "
        "there), above 0 more than half."),
}


def _interval(detail: dict[str, Any] | None) -> str:
    if not detail:
        return "no interval stored: evaluated before calibration intervals existed"
    if detail.get("lo") is None:
        return "interval undefined"
    return f"95 % CI {detail['lo']:.3f} to {detail['hi']:.3f}; {detail['method']}"


def calibration_lines(calibration: dict[str, Any], outcome: str = "the outcome") -> list[str]:
    """One markdown line per stored calibration measure: value, interval and method, then what it means."""
    intervals = {"expected_calibration_error": "ece_interval", "slope": "slope_interval",
                 "intercept": "intercept_interval"}
    lines = []
    for key, (name, meaning) in CALIBRATION_WORDS.items():
        value = calibration.get(key)
        shown = "undefined" if value is None else f"{value:.3f}"
        pp = "?" if value is None else f"{value * 100:.1f}"
        lines.append(f"**{name}** {shown} ({_interval(calibration.get(intervals[key]))})  \n"
                     f"{meaning.format(o=outcome, pp=pp)}")
    return lines


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&])")  # = setext headings, & entities


def plain(text: str) -> str:
    """User-written text (a rationale, a meaning, a note) escaped for st.markdown: shown as typed, never as
    links, images, headings or icons."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
