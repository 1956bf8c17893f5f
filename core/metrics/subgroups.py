"""Subgroup fairness: every metric for every group of every attribute set, with CIs.

Vocabulary follows fairlearn: `by_group`, and per attribute set the
`difference` (largest minus smallest group value) and `ratio` (smallest over
largest). Groups smaller than `min_n` are kept and marked, never hidden; a
metric a group cannot define (no positives, one class only) is NaN, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.metrics.binary import GroupCounts, auroc_by_group, confusion_by_group
from core.metrics.bootstrap import bootstrap_rates
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


def _rows(attribute_set: str, labels: tuple[str, ...], y: np.ndarray, score: np.ndarray, flagged: np.ndarray,
          codes: np.ndarray, order: np.ndarray, min_n: int, n_bootstrap: int = 0) -> pd.DataFrame:
    counts = confusion_by_group(y, flagged, codes, len(labels))
    cells = _cells(counts)
    frame = pd.DataFrame({"attribute_set": attribute_set, "group": list(labels)})
    for key in ("n", "positives", "tp", "fp", "fn", "tn"):
        frame[key] = cells[key]
    for metric, (num, den) in RATE_METRICS.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            frame[metric] = np.where(cells[den] > 0, cells[num] / cells[den], np.nan)
        frame[f"{metric}_lo"], frame[f"{metric}_hi"] = wilson(cells[num], cells[den])
    auc = auroc_by_group(y, score, codes, len(labels), score_order=order)
    frame["auroc"] = auc.auroc
    frame["auroc_lo"], frame["auroc_hi"] = auroc_interval(auc.auroc, auc.variance)
    frame["enough_patients"] = frame["n"] >= min_n
    if n_bootstrap:
        frame = pd.concat([frame, bootstrap_rates(counts, n_bootstrap=n_bootstrap)], axis=1)
    return frame


def subgroup_metrics(y_true: np.ndarray, y_score: np.ndarray, *, sensitive_features: pd.DataFrame,
                     threshold: float, min_n: int = 100, pairwise: bool = True,
                     n_bootstrap: int = 0) -> SubgroupReport:
    """Metrics overall, per sensitive attribute and per pairwise intersection.

    CIs: Wilson score for proportions, DeLong for AUROC (95 %, analytic); with
    `n_bootstrap`, also percentile bootstrap intervals for the rates (`*_boot_lo/hi`).
    """
    y = np.asarray(y_true).astype(np.int64)
    score = np.asarray(y_score, dtype=float)
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("y_true must hold only 0 and 1")
    flagged = score >= threshold
    order = np.argsort(score, kind="stable")  # shared by every attribute set
    frames = [_rows("overall", ("all patients",), y, score, flagged, np.zeros(len(y), dtype=np.int64),
                    order, min_n, n_bootstrap)]
    sets = attribute_sets(list(sensitive_features.columns), pairwise=pairwise)
    for grouped in encode_all(sensitive_features, sets):
        frames.append(_rows(grouped.attribute_set, grouped.labels, y, score, flagged, grouped.codes, order,
                            min_n, n_bootstrap))
    by_group = pd.concat(frames, ignore_index=True)
    return SubgroupReport(threshold, min_n, by_group, _gaps(by_group))


def _gaps(by_group: pd.DataFrame) -> pd.DataFrame:
    """Best-to-worst difference and ratio per attribute set, over groups with enough patients."""
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
                         "difference": high - low, "ratio": low / high if high > 0 else np.nan})
    return pd.DataFrame(rows)
