"""Plain clinical words for metrics, shared by pages (no Streamlit here)."""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from core.domain import glossary

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
CALIBRATION_INTERVALS = {"expected_calibration_error": "ece_interval", "slope": "slope_interval",
                         "intercept": "intercept_interval"}


def signed_interval(value: float | None, lo: float | None, hi: float | None) -> str:
    """The house interval '0.92 (0.85–0.98)', with 'to' and true minus signs when a bound is negative
    ('−0.16 (−0.30 to −0.01)'), to the decimals the interval supports; '—' when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if lo is None or hi is None or min(lo, hi) >= 0:
        return glossary.interval(value, lo, hi)
    d = glossary.decimals_for(lo, hi)
    low, v, high = (f"{x:.{d}f}".replace("-", "−") for x in (lo, value, hi))
    return f"{v} ({low} to {high})"


def calibration_lines(calibration: dict[str, Any], outcome: str = "the outcome") -> list[str]:
    """One markdown line per stored calibration measure: value with its 95 % interval, then what it means
    (the interval's method is in `calibration_methods`, for the data scientists' toggle)."""
    lines = []
    for key, (name, meaning) in CALIBRATION_WORDS.items():
        value = calibration.get(key)
        detail = calibration.get(CALIBRATION_INTERVALS[key]) or {}
        shown = signed_interval(value, detail.get("lo"), detail.get("hi"))
        if value is not None and not detail:
            shown += " (no interval stored: evaluated before calibration intervals existed)"
        pp = "?" if value is None else f"{value * 100:.1f}"
        lines.append(f"**{name}** {shown}  \n{meaning.format(o=outcome, pp=pp)}")
    return lines


def calibration_methods(calibration: dict[str, Any]) -> str:
    return "\n".join(f"{name}: {(calibration.get(CALIBRATION_INTERVALS[key]) or {}).get('method', 'no interval')}"
                     for key, (name, _) in CALIBRATION_WORDS.items())


PERFORMANCE_WORDS: dict[str, tuple[str, str]] = {
    "auroc": ("AUROC", "Chance that a patient who developed {o} scores higher than one who did not."),
    "auprc": ("AUPRC", "Average precision across thresholds; most useful when {o} is rare."),
    "sensitivity": ("Sensitivity", "Of 100 patients who developed {o}, the model flagged {p}."),
    "specificity": ("Specificity", "Of 100 patients who did not develop {o}, the model left {p} alone."),
    "ppv": ("PPV", "Of 100 flagged patients, {p} developed {o} (depends on how common it is)."),
    "npv": ("NPV", "Of 100 patients not flagged, {p} did not develop {o}."),
    "f1": ("F1", "Balance of sensitivity and PPV."),
    "brier": ("Brier score", "Mean squared error of the predicted risk (0 is perfect)."),
}


RATES = ("sensitivity", "specificity", "ppv", "npv")


def performance_rows(detail: dict[str, Any], outcome: str, *, methods: bool = False) -> pd.DataFrame:
    """The Performance table: each measure with its 95 % interval in the house format and a plain sentence;
    the interval's method only when asked (the data scientists' toggle)."""
    rows = []
    for key, (name, sentence) in PERFORMANCE_WORDS.items():
        m = detail[key]
        value = m["value"]
        per100 = "?" if value is None else f"{value * 100:.0f}"
        if value is not None and m["lo"] is not None and key in RATES:
            per100 += f" (95 % interval {m['lo'] * 100:.0f} to {m['hi'] * 100:.0f})"
        row = {"Measure": name, "Value (95 % interval)": signed_interval(value, m["lo"], m["hi"]),
               "In plain words": sentence.format(o=outcome, p=per100)}
        rows.append(row | ({"Method": str(m["method"])} if methods else {}))
    return pd.DataFrame(rows)


def scoring_words(scoring: dict[str, Any], outcome: str) -> str:
    """How the risks were produced, in a sentence without the API's names (those are in scoring['sentence'])."""
    if not scoring:
        return ""
    if scoring.get("how") == "predict_proba":
        text = f"Risk = the model's own estimate of the probability that the patient develops {outcome}"
        return text + ("; ModelBoard asked the model for it, because the model's standard prediction gives only a "
                       "yes/no decision." if scoring.get("pyfunc_output") else ".")
    return f"Risk = the probability of {outcome} that the model's standard prediction returns."


def inputs_in_words(table: pd.DataFrame, words: glossary.Glossary) -> pd.DataFrame:
    """The inputs table with each input by its clinical name and unit."""
    return table.assign(Input=[words.input(str(raw)).with_unit() for raw in table["Input"]])


ROBUSTNESS_CASES = {"missing": "Set to a missing value", "out_of_range": "Set to an absurd value or an unseen category"}


def _probe_effect(case: str, probe: dict[str, Any] | None) -> str:
    if probe is None:
        return "not probed"
    if probe.get("error"):
        if case == "missing":
            return "the model cannot take a missing value for this input (it stops with an error)"
        if "categor" in str(probe["error"]).lower():
            return "the model cannot take a category it never saw (it stops with an error)"
        return f"the model stops with an error when given {probe['probe']}"
    moved = float(probe["mean_abs_score_change"]) * 100
    most = float(probe.get("max_abs_score_change", 0.0)) * 100
    size = "less than 0.1 percentage points" if moved < 0.05 else f"{moved:.1f} percentage points"
    lead = "" if case == "missing" else f"{probe['probe']}: "
    return f"{lead}risk moves {size} on average (at most {most:.0f})"


def robustness_rows(robustness: list[dict[str, Any]], words: glossary.Glossary) -> tuple[pd.DataFrame, list[str]]:
    """One row per input: what the probes did to the risk, in a sentence; and the raw errors the model raised
    (input, case, message), for an expander."""
    rows, errors = [], []
    for r in robustness:
        term = words.input(str(r["feature"]))
        rows.append({"Input": term.name} | {title: _probe_effect(case, r.get(case))
                                            for case, title in ROBUSTNESS_CASES.items()})
        errors += [f"{r['feature']} · {case}: {r[case]['error']}" for case in ROBUSTNESS_CASES
                   if (r.get(case) or {}).get("error")]
    return pd.DataFrame(rows, columns=["Input", *ROBUSTNESS_CASES.values()]), errors


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&])")  # = setext headings, & entities


def plain(text: str) -> str:
    """User-written text (a rationale, a meaning, a note) escaped for st.markdown: shown as typed, never as
    links, images, headings or icons."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
