"""Champion–challenger: a candidate against the model in production, on the same patients.

Differences come with 95 % intervals from a paired percentile bootstrap (both
models scored on the same resampled patients, fixed seed), and every patient
whose decision flips is counted by what the flip means clinically.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from core.metrics.binary import auroc_by_group
from core.metrics.subgroups import subgroup_metrics

SEED = 20261124
METRICS = ("auroc", "sensitivity", "specificity", "ppv", "alerts_per_1000")


def _point(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    flagged = score >= threshold
    tp = float(np.sum(flagged & (y == 1)))
    fp = float(np.sum(flagged & (y == 0)))
    positives, negatives = float(np.sum(y == 1)), float(np.sum(y == 0))
    zeros = np.zeros(len(y), dtype=np.int64)
    return {"auroc": float(auroc_by_group(y, score, zeros, 1).auroc[0]),
            "sensitivity": tp / positives if positives else np.nan,
            "specificity": (negatives - fp) / negatives if negatives else np.nan,
            "ppv": tp / (tp + fp) if tp + fp else np.nan,
            "alerts_per_1000": 1000 * (tp + fp) / len(y)}


def metric_deltas(y: np.ndarray, candidate: np.ndarray, reference: np.ndarray, threshold: float,
                  *, n_bootstrap: int = 200, seed: int = SEED) -> pd.DataFrame:
    """Candidate minus reference for each headline metric, with a paired bootstrap interval."""
    cand, ref = _point(y, candidate, threshold), _point(y, reference, threshold)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(y), len(y))
        a, b = _point(y[idx], candidate[idx], threshold), _point(y[idx], reference[idx], threshold)
        for m in METRICS:
            draws[m].append(a[m] - b[m])
    rows = []
    for m in METRICS:
        values = np.asarray(draws[m])
        values = values[~np.isnan(values)]
        lo, hi = np.percentile(values, [2.5, 97.5]) if len(values) else (np.nan, np.nan)
        rows.append({"metric": m, "candidate": cand[m], "production": ref[m], "difference": cand[m] - ref[m],
                     "lo": float(lo), "hi": float(hi)})
    return pd.DataFrame(rows)


def decision_flips(y: np.ndarray, candidate: np.ndarray, reference: np.ndarray, threshold: float) -> dict[str, int]:
    """How many patients' decisions change, and what each change means."""
    a, b = candidate >= threshold, reference >= threshold
    return {"newly_caught": int(np.sum(a & ~b & (y == 1))), "newly_missed": int(np.sum(~a & b & (y == 1))),
            "new_false_alarms": int(np.sum(a & ~b & (y == 0))), "false_alarms_removed": int(np.sum(~a & b & (y == 0))),
            "unchanged": int(np.sum(a == b))}


def subgroup_deltas(y: np.ndarray, candidate: np.ndarray, reference: np.ndarray, threshold: float,
                    sensitive: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Per group of each single attribute: sensitivity of each model and the change."""
    kwargs = {"sensitive_features": sensitive, "threshold": threshold, "min_n": min_n, "pairwise": False}
    a = subgroup_metrics(y, candidate, **kwargs).by_group  # type: ignore[arg-type]
    b = subgroup_metrics(y, reference, **kwargs).by_group  # type: ignore[arg-type]
    merged = a[["attribute_set", "group", "n", "enough_patients", "sensitivity", "specificity"]].merge(
        b[["attribute_set", "group", "sensitivity", "specificity"]], on=["attribute_set", "group"],
        suffixes=("_candidate", "_production"))
    merged["sensitivity_change"] = merged["sensitivity_candidate"] - merged["sensitivity_production"]
    return merged


def gap_changes(deltas: pd.DataFrame) -> pd.DataFrame:
    """Best-to-worst sensitivity gap per attribute, for each model, over groups with enough patients."""
    judged = deltas[deltas["enough_patients"] & (deltas["attribute_set"] != "overall")]
    rows = []
    for attribute_set, groups in judged.groupby("attribute_set", sort=False):
        cand, prod = groups["sensitivity_candidate"].dropna(), groups["sensitivity_production"].dropna()
        if len(cand) > 1 and len(prod) > 1:
            rows.append({"attribute_set": attribute_set, "gap_candidate": float(cand.max() - cand.min()),
                         "gap_production": float(prod.max() - prod.min())})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["gap_change"] = frame["gap_candidate"] - frame["gap_production"]
    return frame


# ---- for display: the stored comparison in a clinician's words -----------------------------------------------

# metric → (name, scale shown on screen, unit after a change) ; rates are shown per 100 and changed in points
SHOWN: dict[str, tuple[str, float, str]] = {
    "auroc": ("AUROC", 1.0, ""), "sensitivity": ("Sensitivity", 100.0, " points"),
    "specificity": ("Specificity", 100.0, " points"), "ppv": ("PPV", 100.0, " points"),
    "alerts_per_1000": ("Alerts per 1,000 admissions", 1.0, "")}
TOO_FEW = "too few patients to judge"


def places(lo: float, hi: float) -> int:
    """Decimals a difference's interval supports: two significant figures of its width (0–3)."""
    width = abs(hi - lo)
    if not np.isfinite(width) or width == 0:
        return 1
    return int(min(3, max(0, 1 - np.floor(np.log10(width)))))


def _signed(value: float, digits: int) -> str:
    text = f"{value:+.{digits}f}".replace("-", "−")
    return "0" if float(text.replace("−", "-")) == 0 else text


def change_text(difference: float, lo: float, hi: float, *, scale: float = 1.0, unit: str = "") -> str:
    """'−1.5 points (−2.8 to 0.0)': a change with its 95 % interval, to the decimals the interval supports."""
    if not np.isfinite(difference):
        return "—"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{_signed(difference * scale, 2)}{unit} (no interval)"
    d = places(lo * scale, hi * scale)
    low, high = (f"{v * scale:.{d}f}".replace("-", "−") for v in (lo, hi))
    return f"{_signed(difference * scale, d)}{unit} ({low} to {high})"


def _points(value: float) -> str:
    """A change in whole percentage points: '+2 points', '−1 point', '0 points'."""
    text = _signed(value, 0)
    return f"{text} point" if text in ("+1", "−1") else f"{text} points"


def _value_text(metric: str, value: float, digits: int) -> str:
    if not np.isfinite(value):
        return "—"
    if metric in ("sensitivity", "specificity", "ppv"):
        return f"{round(value * 100):.0f} of 100"
    return f"{value:,.{digits}f}"


def metrics_in_words(metrics: pd.DataFrame) -> pd.DataFrame:
    """The headline table: each measure for production and the candidate, the change with its interval, and
    whether the interval rules out 'no change'."""
    rows = []
    for m in metrics.to_dict("records"):
        name, scale, unit = SHOWN[m["metric"]]
        digits = places(m["lo"] * scale, m["hi"] * scale) if m["metric"] == "auroc" else 0
        clear = m["lo"] > 0 or m["hi"] < 0
        rows.append({"Measure": name, "Production": _value_text(m["metric"], m["production"], digits),
                     "Candidate": _value_text(m["metric"], m["candidate"], digits),
                     "Change (95 % interval)": change_text(m["difference"], m["lo"], m["hi"], scale=scale, unit=unit),
                     "Verdict": "a clear change (the interval does not include zero)" if clear else
                     "no clear change (the interval includes zero)"})
    return pd.DataFrame(rows, columns=["Measure", "Production", "Candidate", "Change (95 % interval)", "Verdict"])


def metric_sentences(metrics: pd.DataFrame, outcome: str) -> list[str]:
    """Natural-frequency sentences, one per measure: production's figure, the candidate's, and the change."""
    texts = {"sensitivity": "Of 100 patients who developed {o}, production flagged {p} and the candidate {c}",
             "specificity": "Of 100 patients who did not develop {o}, production left {p} alone and the candidate {c}",
             "ppv": "Of 100 patients flagged, {p} developed {o} with production and {c} with the candidate",
             "auroc": "AUROC (how well the risk ranks patients who developed {o} above those who did not): "
                      "{p} with production, {c} with the candidate",
             "alerts_per_1000": "Alerts per 1,000 admissions: {p} with production, {c} with the candidate"}
    table = metrics_in_words(metrics)
    out = []
    for m, shown in zip(metrics.to_dict("records"), table.to_dict("records"), strict=True):
        plain = {k: str(shown[k]).removesuffix(" of 100") for k in ("Production", "Candidate")}
        lead = texts[m["metric"]].format(o=outcome, p=plain["Production"], c=plain["Candidate"])
        out.append(f"{lead}; change {shown['Change (95 % interval)']}: {shown['Verdict']}.")
    return out


def groups_in_words(subgroups: pd.DataFrame, attribute_words: Callable[[str], str]) -> pd.DataFrame:
    """Per group: sensitivity and specificity of each model and the change in sensitivity, in words; a group
    with too few patients says so instead of a change."""
    frame = subgroups[subgroups["attribute_set"] != "overall"]
    rows = []
    for g in frame.to_dict("records"):
        judged = bool(g["enough_patients"])
        change = g["sensitivity_change"] * 100
        rows.append({"Grouped by": attribute_words(str(g["attribute_set"])), "Group": str(g["group"]),
                     "Patients": f"{int(g['n']):,}",
                     "Sensitivity — production": _value_text("sensitivity", g["sensitivity_production"], 0),
                     "Sensitivity — candidate": _value_text("sensitivity", g["sensitivity_candidate"], 0),
                     "Change": (_points(change) if np.isfinite(change) else "—") if judged else TOO_FEW,
                     "Specificity — production": _value_text("specificity", g["specificity_production"], 0),
                     "Specificity — candidate": _value_text("specificity", g["specificity_candidate"], 0)})
    return pd.DataFrame(rows)


def gaps_in_words(gaps: pd.DataFrame, attribute_words: Callable[[str], str]) -> pd.DataFrame:
    """Best-to-worst sensitivity gap per attribute for each model, in percentage points."""
    return pd.DataFrame([{"Grouped by": attribute_words(str(g["attribute_set"])),
                          "Sensitivity gap — production": _points(g["gap_production"] * 100).lstrip("+"),
                          "Sensitivity gap — candidate": _points(g["gap_candidate"] * 100).lstrip("+"),
                          "Change": _points(g["gap_change"] * 100)}
                         for g in gaps.to_dict("records")])
