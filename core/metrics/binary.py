"""Per-group confusion counts and AUROC for many groups at once.

Conventions (shared with scikit-learn and fairlearn, and checked by the tests):
a patient is flagged when score >= threshold; AUROC is the Mann–Whitney
statistic with tied scores counted as half (average ranks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.metrics.rank_kernel import mann_whitney_sums


@dataclass(frozen=True)
class GroupCounts:
    """Confusion-matrix cells per group (arrays indexed by group code)."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return np.asarray(self.tp + self.fp + self.fn + self.tn)

    @property
    def positives(self) -> np.ndarray:
        return np.asarray(self.tp + self.fn)

    @property
    def negatives(self) -> np.ndarray:
        return np.asarray(self.fp + self.tn)


def confusion_by_group(y_true: np.ndarray, flagged: np.ndarray, codes: np.ndarray, n_groups: int) -> GroupCounts:
    """Four bincounts: the confusion matrix of every group in one pass over the rows."""
    cell = 2 * y_true.astype(np.int64) + flagged.astype(np.int64)  # 0=tn 1=fp 2=fn 3=tp
    counts = np.bincount(codes.astype(np.int64) * 4 + cell, minlength=4 * n_groups).reshape(n_groups, 4)
    return GroupCounts(tp=counts[:, 3], fp=counts[:, 1], fn=counts[:, 2], tn=counts[:, 0])


@dataclass(frozen=True)
class GroupAuroc:
    """AUROC per group and its DeLong variance (NaN where a group lacks a class)."""

    auroc: np.ndarray
    variance: np.ndarray


def auroc_by_group(y_true: np.ndarray, y_score: np.ndarray, codes: np.ndarray, n_groups: int,
                   *, score_order: np.ndarray | None = None) -> GroupAuroc:
    """Mann–Whitney AUROC of every group, and its DeLong (1988) variance, from one sort.

    `score_order` (a stable argsort of the scores) can be shared across attribute
    sets: patients are walked once in score order with running counts per group
    (core/metrics/rank_kernel.py), which gives each positive's share of its group's
    negatives outranked (DeLong's V10, ties half) and the mirror image for negatives.
    """
    order = np.argsort(y_score, kind="stable") if score_order is None else score_order
    return auroc_from_sorted(np.asarray(y_true)[order].astype(np.int64), np.asarray(y_score, dtype=float)[order],
                             np.asarray(codes)[order].astype(np.int64), n_groups)


def auroc_from_sorted(y_sorted: np.ndarray, s_sorted: np.ndarray, g_sorted: np.ndarray,
                      n_groups: int) -> GroupAuroc:
    """As auroc_by_group, for labels, scores and group codes already in score order."""
    n1, n0, v10, v10_sq, v01, v01_sq = mann_whitney_sums(y_sorted, s_sorted, g_sorted, n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = v10 / n1
        variance = _sample_variance(v10, v10_sq, n1) / n1 + _sample_variance(v01, v01_sq, n0) / n0
    undefined = (n1 == 0) | (n0 == 0)
    return GroupAuroc(np.where(undefined, np.nan, auc), np.where(undefined, np.nan, variance))


def _sample_variance(total: np.ndarray, squares: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Variance with ddof=1 from a sum and a sum of squares: NaN from a single value, never negative."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
        return np.asarray(np.maximum(squares - count * mean * mean, 0.0) / (count - 1))
