"""Subgroup fairness: every metric for every group of every attribute set, with CIs.

Vocabulary follows fairlearn: `by_group`, and per attribute set and metric the
between-groups `difference` (largest minus smallest group value) and `ratio`
(smallest over largest), and the to-overall `difference_to_overall` (largest
|group − all patients|) and `ratio_to_overall` (smallest of group/overall and
overall/group), as fairlearn's `method="to_overall"`. Gaps count only groups
with at least `min_n` patients. Groups smaller than `min_n` are kept and marked,
never hidden; a metric a group cannot define (no positives, one class only) is
NaN, never 0. Each group also gets its calibration (see calibration.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.metrics.binary import GroupCounts, auroc_from_sorted, confusion_by_group
from core.metrics.bootstrap import bootstrap_rates
from core.metrics.calibration import GroupCalibrationInputs, calibration_by_group
from core.metrics.grouping import attribute_sets, encode_all
from core.metrics.intervals import auroc_interval, wilson

RATE_METRICS: dict[str, tuple[str, str]] = {
    # metric: (numerator cell(s), denominator) as GroupCounts attribute names
    "sensitivity": ("tp", "positives"),
    "specificity": ("tn", "negatives"),
    "ppv": ("tp", "flagged"),
    "npv": ("tn", "unflagged"),
    "selection_rate": ("flagged", "n"),
    "prevalence": ("positives", "n"),
}
GAP_METRICS = ("sensitivity", "specificity", "ppv", "npv", "selection_rate", "auroc")


@dataclass(frozen=True)
class SubgroupReport:
    """`by_group`: one row per (attribute set, group), overall first; `gaps`: per set and metric."""

    threshold: float
    min_n: int
    by_group: pd.DataFrame
    gaps: pd.DataFrame


def _cells(counts: GroupCounts) -> dict[str, np.ndarray]:
    return {"tp": counts.tp, "fp": counts.fp, "fn": counts.fn, "tn": counts.tn, "n": counts.n,
            "positives": counts.positives, "negatives": counts.negatives,
            "flagged": counts.tp + counts.fp, "unflagged": counts.fn + counts.tn}


@dataclass(frozen=True)
class _Cohort:
    """Per-patient arrays and options every attribute set shares, prepared once per report."""

    y: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    order: np.ndarray  # stable argsort of the scores
    y_sorted: np.ndarray  # labels and scores in that order, gathered once for every attribute set
    s_sorted: np.ndarray
    calibration: GroupCalibrationInputs
    min_n: int
    n_bootstrap: int
    calibration_fit: bool


def _rows(attribute_set: str, labels: tuple[str, ...], codes: np.ndarray, cohort: _Cohort,
          start: tuple[float, float] = (0.0, 1.0)) -> pd.DataFrame:
    y, n_groups = cohort.y, len(labels)
    counts = confusion_by_group(y, cohort.flagged, codes, n_groups)
    cells = _cells(counts)
    columns: dict[str, object] = {"attribute_set": attribute_set, "group": list(labels)}
    columns |= {key: cells[key] for key in ("n", "positives", "tp", "fp", "fn", "tn")}
    for metric, (num, den) in RATE_METRICS.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[metric] = np.where(cells[den] > 0, cells[num] / cells[den], np.nan)
        columns[f"{metric}_lo"], columns[f"{metric}_hi"] = wilson(cells[num], cells[den])
    auc = auroc_from_sorted(cohort.y_sorted, cohort.s_sorted, codes[cohort.order].astype(np.int64), n_groups)
    columns["auroc"] = auc.auroc
    columns["auroc_lo"], columns["auroc_hi"] = auroc_interval(auc.auroc, auc.variance)
    columns |= calibration_by_group(codes, cells["n"], cells["positives"], cohort.calibration,
                                    fit=cohort.calibration_fit, start=start)
    columns["enough_patients"] = cells["n"] >= cohort.min_n
    if cohort.n_bootstrap:
        columns |= {str(k): v.to_numpy() for k, v in bootstrap_rates(counts, n_bootstrap=cohort.n_bootstrap).items()}
    return pd.DataFrame(columns)  # one construction: column-by-column inserts cost more than the maths


def subgroup_metrics(y_true: np.ndarray, y_score: np.ndarray, *, sensitive_features: pd.DataFrame,
                     threshold: float, min_n: int = 100, pairwise: bool = True,
                     n_bootstrap: int = 0, calibration_fit: bool = False) -> SubgroupReport:
    """Metrics overall, per sensitive attribute and per pairwise intersection.

    CIs: Wilson score for proportions, DeLong for AUROC (95 %, analytic); with
    `n_bootstrap`, also percentile bootstrap intervals for the rates (`*_boot_lo/hi`).
    Calibration per group: mean predicted risk, observed/expected with a Wilson-based
    CI, ECE; with `calibration_fit`, also calibration slope and intercept with Wald
    CIs (an iterative fit over every patient of every attribute set: see `make bench`).
    """
    y = np.asarray(y_true).astype(np.int64)
    score = np.asarray(y_score, dtype=float)
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("y_true must hold only 0 and 1")
    order = np.argsort(score, kind="stable")
    cohort = _Cohort(y, score, score >= threshold, order, y[order], score[order],
                     GroupCalibrationInputs.of(y, score), min_n, n_bootstrap, calibration_fit)
    overall = _rows("overall", ("all patients",), np.zeros(len(y), dtype=np.int64), cohort)
    start = _fit_start(overall)
    frames = [overall]
    sets = attribute_sets(list(sensitive_features.columns), pairwise=pairwise)
    for grouped in encode_all(sensitive_features, sets):
        frames.append(_rows(grouped.attribute_set, grouped.labels, grouped.codes, cohort, start))
    by_group = pd.concat(frames, ignore_index=True)
    return SubgroupReport(threshold, min_n, by_group, _gaps(by_group))


def _fit_start(overall: pd.DataFrame) -> tuple[float, float]:
    """Groups start their recalibration fit from the overall one: fewer Newton steps."""
    if "calibration_slope" not in overall or np.isnan(overall["calibration_slope"].iloc[0]):
        return 0.0, 1.0
    return float(overall["calibration_intercept"].iloc[0]), float(overall["calibration_slope"].iloc[0])


def _gaps(by_group: pd.DataFrame) -> pd.DataFrame:
    """Between-groups and to-overall gaps per attribute set, over groups with enough patients."""
    overall = by_group[by_group["attribute_set"] == "overall"].iloc[0]
    judged = by_group[(by_group["attribute_set"] != "overall") & by_group["enough_patients"]]
    rows = []
    for attribute_set, groups in judged.groupby("attribute_set", sort=False):
        for metric in GAP_METRICS:
            values = groups[metric].dropna()
            if values.empty:
                continue
            low, high = float(values.min()), float(values.max())
            rows.append({"attribute_set": attribute_set, "metric": metric, "min": low, "max": high,
                         "worst_group": groups.loc[values.idxmin(), "group"],
                         "best_group": groups.loc[values.idxmax(), "group"],
                         "difference": high - low, "ratio": low / high if high > 0 else np.nan}
                        | _to_overall(values, float(overall[metric]), groups["group"]))
    return pd.DataFrame(rows)


def _to_overall(values: pd.Series, overall: float, labels: pd.Series) -> dict[str, object]:
    """fairlearn's method="to_overall": largest |group − overall|, smallest ratio folded below 1."""
    difference = values - overall
    furthest = difference.abs().idxmax() if difference.notna().any() else None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = values.to_numpy(float) / overall
        folded = np.where(ratio > 1, 1 / ratio, ratio)
    return {"overall": overall,
            "difference_to_overall": float(difference.abs().max()),
            "ratio_to_overall": float(np.nanmin(folded)) if (~np.isnan(folded)).any() else np.nan,
            "furthest_group": labels[furthest] if furthest is not None else None,
            "furthest_minus_overall": float(difference[furthest]) if furthest is not None else np.nan}
