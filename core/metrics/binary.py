"""Per-group confusion counts and AUROC for many groups at once.

Conventions (shared with scikit-learn and fairlearn, and checked by the tests):
a patient is flagged when score >= threshold; AUROC is the Mann–Whitney
statistic with tied scores counted as half (average ranks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    sets: a stable sort by group code keeps scores ordered within each group.
    Everything after that works on blocks of tied (group, score) rows: for each
    block, how many negatives of the same group score lower (ties count half)
    gives each positive's share of negatives outranked (DeLong's V10), and the
    mirror image gives each negative's V01.
    """
    order = np.argsort(y_score, kind="stable") if score_order is None else score_order
    order = order[np.argsort(codes[order], kind="stable")]
    g, s, y = codes[order].astype(np.int64), y_score[order], y_true[order].astype(np.int64)
    new_block = np.ones(len(s), dtype=bool)
    new_block[1:] = (s[1:] != s[:-1]) | (g[1:] != g[:-1])
    block = np.cumsum(new_block) - 1
    block_group = g[new_block]
    pos_b = np.bincount(block, weights=y).astype(float)
    neg_b = np.bincount(block).astype(float) - pos_b
    n1 = np.bincount(block_group, weights=pos_b, minlength=n_groups)
    n0 = np.bincount(block_group, weights=neg_b, minlength=n_groups)
    neg_below = _cumulative_within(neg_b, block_group) - neg_b
    pos_below = _cumulative_within(pos_b, block_group) - pos_b
    with np.errstate(divide="ignore", invalid="ignore"):
        v10 = (neg_below + 0.5 * neg_b) / n0[block_group]
        v01 = (n1[block_group] - pos_below - pos_b + 0.5 * pos_b) / n1[block_group]
        auc = np.bincount(block_group, weights=pos_b * np.nan_to_num(v10), minlength=n_groups) / n1
        variance = (_weighted_var(v10, pos_b, block_group, n1, n_groups) / n1
                    + _weighted_var(v01, neg_b, block_group, n0, n_groups) / n0)
    undefined = (n1 == 0) | (n0 == 0)
    return GroupAuroc(np.where(undefined, np.nan, auc), np.where(undefined, np.nan, variance))


def _cumulative_within(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Running total of `values` that restarts where `keys` (sorted) changes."""
    total = np.cumsum(values)
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = keys[1:] != keys[:-1]
    offset = np.where(starts, total - values, 0.0)
    return np.asarray(total - np.maximum.accumulate(np.where(starts, offset, -np.inf))) if len(keys) else total


def _weighted_var(values: np.ndarray, weights: np.ndarray, keys: np.ndarray, count: np.ndarray,
                  n_groups: int) -> np.ndarray:
    """Sample variance (ddof=1) per group of values repeated `weights` times."""
    v = np.nan_to_num(values)
    total = np.bincount(keys, weights=weights * v, minlength=n_groups)
    squares = np.bincount(keys, weights=weights * v * v, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
        return np.asarray(np.maximum(squares - count * mean * mean, 0.0) / (count - 1))
