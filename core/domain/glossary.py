"""One vocabulary: every metric, column, input, attribute, statistic and event kind in the words a clinician reads.

Pages never show a raw name (`sensitivity_lo`, `race_ethnicity`, `spo2`) or a raw number (0.70123 with an
interval 0.64–0.76): they ask this module. Inputs take their names and units from the use case (`inputs:` in
its YAML), then from the common clinical names below, then from the raw name put into words, so a hospital's
own model with inputs nobody here named still reads as words. The raw name stays available (`Term.raw`) for the
tooltip data scientists use to match a screen to their code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Term:
    """What to call a thing on screen, its unit (blank when it has none) and the raw name behind it."""

    name: str
    unit: str = ""
    raw: str = ""
    meaning: str = ""

    def with_unit(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


# Common clinical inputs, for models whose use case does not name them (raw name → (name, unit)).
COMMON_INPUTS: dict[str, tuple[str, str]] = {
    "age": ("Age", "years"), "female": ("Female sex", ""), "sex": ("Sex", ""),
    "heart_rate": ("Heart rate", "beats/min"), "hr": ("Heart rate", "beats/min"),
    "resp_rate": ("Respiratory rate", "breaths/min"), "rr": ("Respiratory rate", "breaths/min"),
    "temperature": ("Temperature", "°C"), "temp": ("Temperature", "°C"),
    "sbp": ("Systolic blood pressure", "mmHg"), "dbp": ("Diastolic blood pressure", "mmHg"),
    "map": ("Mean arterial pressure", "mmHg"), "spo2": ("Oxygen saturation by pulse oximetry (SpO2)", "%"),
    "sao2": ("Arterial oxygen saturation (SaO2)", "%"), "wbc": ("White cell count", "10⁹/L"),
    "lactate": ("Lactate", "mmol/L"), "creatinine": ("Creatinine", "mg/dL"), "sodium": ("Sodium", "mmol/L"),
    "potassium": ("Potassium", "mmol/L"), "hemoglobin": ("Haemoglobin", "g/dL"),
    "haemoglobin": ("Haemoglobin", "g/dL"), "platelets": ("Platelet count", "10⁹/L"),
    "bilirubin": ("Bilirubin", "mg/dL"), "gcs": ("Glasgow coma scale", "points"),
}

ATTRIBUTES: dict[str, str] = {
    "sex": "Sex", "age_band": "Age band", "race_ethnicity": "Race and ethnicity", "race": "Race",
    "ethnicity": "Ethnicity", "payer": "Payer", "insurance": "Insurance", "language": "Preferred language",
}

# Per-group and per-window measures (the columns of the tables pages show), with what each means.
MEASURES: dict[str, Term] = {t.raw: t for t in (
    Term("Patients", raw="n"),
    Term("With the outcome", raw="positives", meaning="patients who developed the outcome"),
    Term("How common", raw="prevalence", meaning="share of patients who developed the outcome"),
    Term("Sensitivity", raw="sensitivity", meaning="of 100 patients who developed it, how many were flagged"),
    Term("Specificity", raw="specificity", meaning="of 100 patients who did not, how many were left alone"),
    Term("PPV", raw="ppv", meaning="of 100 flagged patients, how many developed it"),
    Term("NPV", raw="npv", meaning="of 100 patients left alone, how many did not develop it"),
    Term("AUROC", raw="auroc", meaning="how well the risk ranks patients who developed it above those who did not"),
    Term("AUPRC", raw="auprc", meaning="average PPV over all thresholds"),
    Term("Brier score", raw="brier", meaning="mean squared error of the predicted risk; lower is better"),
    Term("Flagged", raw="selection_rate", meaning="share of patients the model flags"),
    Term("Flagged", raw="flagged_share", meaning="share of patients the model flagged"),
    Term("Alerts per 100 patients", raw="alerts_per_100"),
    Term("Alerts per 1,000 patients", raw="alerts_per_1000"),
    Term("Predicted risk (mean)", raw="mean_predicted"), Term("Predicted risk (mean)", raw="mean_score"),
    Term("Observed rate", raw="observed_rate", meaning="share who developed the outcome"),
    Term("Observed rate", raw="outcome_rate", meaning="share who developed the outcome"),
    Term("Observed / predicted", raw="observed_expected",
         meaning="1 means as many developed it as predicted; below 1, fewer (the model over-predicts)"),
    Term("Calibration error", raw="ece",
         meaning="how far, on average, the predicted risk is from the observed rate"),
    Term("Calibration slope", raw="calibration_slope", meaning="ideal 1; below 1, risks too extreme"),
    Term("Calibration intercept", raw="calibration_intercept", meaning="ideal 0; below 0, over-predicts"),
    Term("Missing", raw="missing_share", meaning="share of patients for whom the input was not recorded"),
    Term("Missing at sign-off", raw="reference_missing_share"),
    Term("Caught", raw="tp", meaning="flagged and developed the outcome (true positives)"),
    Term("False alarms", raw="fp", meaning="flagged and did not develop it (false positives)"),
    Term("Missed", raw="fn", meaning="not flagged but developed it (false negatives)"),
    Term("Left alone", raw="tn", meaning="not flagged and did not develop it (true negatives)"),
    Term("Group", raw="group"), Term("Grouped by", raw="attribute_set"), Term("Input", raw="feature"),
    Term("Judged", raw="judgement"), Term("Enough patients to judge", raw="enough_patients"),
)}

# Drift statistics by the names evidently and ModelBoard store them: what a clinician reads, with the name the
# data scientist knows kept behind the toggle.
STATISTICS: dict[str, Term] = {t.raw: t for t in (
    Term("Shift in the distribution", raw="psi", meaning="population stability index; above 0.2 is a large shift"),
    Term("Shift in the distribution", raw="population stability index"),
    Term("Distance between distributions", raw="wasserstein",
         meaning="Wasserstein distance (normed): how far values moved, in standard deviations"),
    Term("Distance between distributions", raw="Wasserstein distance (normed)"),
    Term("Difference in the mix of values", raw="jensenshannon", meaning="Jensen–Shannon distance: 0 same, 1 disjoint"),
    Term("Difference in the mix of values", raw="Jensen-Shannon distance"),
    Term("Difference in the mix of categories", raw="chisquare", meaning="chi-square test p-value"),
    Term("Difference in distribution (K–S test)", raw="ks", meaning="Kolmogorov–Smirnov test p-value"),
)}


@dataclass(frozen=True)
class Glossary:
    """The vocabulary of one use case: its inputs' names and units on top of the common ones."""

    inputs: dict[str, tuple[str, str]] = field(default_factory=dict)

    def input(self, raw: str) -> Term:
        """An input (feature) by its clinical name; a one-hot column `admission_source_transfer` reads as
        'Admitted from: transfer' when its input is named."""
        name, unit = self.inputs.get(raw) or COMMON_INPUTS.get(raw.lower()) or self._one_hot(raw) or (words(raw), "")
        return Term(name, unit, raw)

    def _one_hot(self, raw: str) -> tuple[str, str] | None:
        for known, (name, _unit) in sorted(self.inputs.items(), key=lambda kv: -len(kv[0])):
            if raw.startswith(known + "_") and len(raw) > len(known) + 1:
                return f"{name}: {raw[len(known) + 1:].replace('_', ' ')}", ""
        return None

    def input_name(self, raw: str) -> str:
        return self.input(raw).name


def glossary_for(inputs: dict[str, tuple[str, str]] | None = None) -> Glossary:
    return Glossary(dict(inputs or {}))


def words(raw: str) -> str:
    """A raw name put into words, for names nobody here has named: `length_of_stay_days` → 'Length of stay days'."""
    text = re.sub(r"[_\s]+", " ", str(raw)).strip()
    return text[:1].upper() + text[1:] if text else "(unnamed)"


def attribute(raw: str) -> str:
    """A sensitive attribute, or an intersection 'age_band × race_ethnicity', in words."""
    parts = [p.strip() for p in str(raw).split("×")]
    named = [ATTRIBUTES.get(p, words(p)) for p in parts]
    return " × ".join([named[0], *(n[:1].lower() + n[1:] for n in named[1:])])


def measure(raw: str) -> Term:
    """A per-group or per-window measure; `sensitivity_lo` and the like are parts of an interval, never columns."""
    return MEASURES.get(raw) or Term(words(raw), raw=raw)


def statistic(raw: str) -> Term:
    return STATISTICS.get(raw) or STATISTICS.get(str(raw).lower()) or Term(words(raw), raw=raw)


def event(raw: str) -> str:
    """An audit event kind (`alert_raised`) in words ('Alert raised')."""
    return words(raw)


# ---- numbers ---------------------------------------------------------------------------------------------------

def _defined(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def decimals_for(lo: float | None, hi: float | None, *, most: int = 3) -> int:
    """As many decimals as the interval supports: two significant figures of its width, at least 1, at most
    `most`. An interval 0.64–0.76 (width 0.12) supports 2 decimals; 0.801–0.812 (width 0.011) supports 3."""
    if lo is None or hi is None or not (_defined(lo) and _defined(hi)) or hi == lo:
        return 2
    width = abs(float(hi) - float(lo))
    return max(1, min(most, 1 - math.floor(math.log10(width)) if width > 0 else most))


def interval(value: float | None, lo: float | None, hi: float | None, *, undefined: str = "—") -> str:
    """'0.70 (0.64–0.76)'; a missing interval shows the value alone, a missing value the `undefined` mark."""
    if not _defined(value):
        return undefined
    places = decimals_for(lo, hi)
    if not (_defined(lo) and _defined(hi)):
        return f"{value:.{places}f}"
    return f"{value:.{places}f} ({lo:.{places}f}–{hi:.{places}f})"


def per100(value: float | None, *, undefined: str = "—") -> str:
    """A proportion as a natural frequency: 0.70 → '70 of 100'."""
    return f"{round(float(value) * 100):.0f} of 100" if _defined(value) else undefined  # type: ignore[arg-type]


def percent(value: float | None, *, places: int = 0, undefined: str = "—") -> str:
    """0.314 → '31 %'."""
    return f"{float(value) * 100:.{places}f} %" if _defined(value) else undefined  # type: ignore[arg-type]


def number(value: float | None, *, places: int = 2, undefined: str = "—") -> str:
    """A plain number with a fixed number of decimals; the undefined mark, never 'nan' or 'None'."""
    if not _defined(value):
        return undefined
    return f"{float(value):,.{places}f}"  # type: ignore[arg-type]


def significant(value: float | None, *, digits: int = 3, undefined: str = "—") -> str:
    """A measured value with `digits` significant figures (1.3812 → '1.38', 142.7 → '143')."""
    if not _defined(value):
        return undefined
    v = float(value)  # type: ignore[arg-type]
    if v == 0:
        return "0"
    places = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    return f"{v:,.{places}f}"


def with_unit(value: str, unit: str) -> str:
    return f"{value} {unit}" if unit and unit != "%" else f"{value}{unit}" if unit else value
