"""Plain clinical words for metrics, shared by pages (no Streamlit here)."""

from __future__ import annotations

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
