"""Sensitivity and workload of every group at every threshold of a grid, from one pass over the patients.

A patient is flagged at threshold t when score >= t (the convention of
binary.py). Each patient's count of grid thresholds at or below their score is
binned per group; a reversed cumulative sum then gives, for every threshold,
how many patients — and how many with the outcome — are flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.metrics.grouping import encode

DEFAULT_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


def flagged_by_threshold(y_true: np.ndarray, y_score: np.ndarray, codes: np.ndarray, n_groups: int,
                         thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flagged, flagged with the outcome): arrays of shape (groups, thresholds); thresholds ascending."""
    k = len(thresholds)
    passed = np.searchsorted(thresholds, y_score, side="right")  # thresholds t with t <= score
    key = codes.astype(np.intp) * (k + 1) + passed
    size = n_groups * (k + 1)
    everyone = np.bincount(key, minlength=size).reshape(n_groups, k + 1)
    with_outcome = np.bincount(key, weights=y_true, minlength=size).reshape(n_groups, k + 1)
    # flagged at threshold j: patients who passed more than j thresholds
    flagged = np.cumsum(everyone[:, ::-1], axis=1)[:, ::-1][:, 1:]
    caught = np.cumsum(with_outcome[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return flagged, caught


def sweep_thresholds(y_true: np.ndarray, y_score: np.ndarray, *, sensitive_features: pd.DataFrame,
                     attribute_set: tuple[str, ...], thresholds: np.ndarray = DEFAULT_GRID) -> pd.DataFrame:
    """Long table (group, threshold, n, positives, flagged, caught, sensitivity, alerts_per_100), all
    patients first. Sensitivity is NaN in a group where no one developed the outcome."""
    y = np.asarray(y_true, dtype=float)
    score = np.asarray(y_score, dtype=float)
    t = np.sort(np.asarray(thresholds, dtype=float))
    grouped = encode(sensitive_features, attribute_set)
    labels = ("all patients", *grouped.labels)
    codes = np.concatenate([np.zeros(len(y), dtype=np.intp), grouped.codes.astype(np.intp) + 1])
    flagged, caught = flagged_by_threshold(np.tile(y, 2), np.tile(score, 2), codes, len(labels), t)
    n = np.bincount(codes, minlength=len(labels))
    positives = np.bincount(codes, weights=np.tile(y, 2), minlength=len(labels))
    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = np.where(positives[:, None] > 0, caught / positives[:, None], np.nan)
        alerts = np.where(n[:, None] > 0, 100 * flagged / n[:, None], np.nan)
    return pd.DataFrame({"group": np.repeat(labels, len(t)), "threshold": np.tile(t, len(labels)),
                         "n": np.repeat(n, len(t)), "positives": np.repeat(positives, len(t)).astype(np.int64),
                         "flagged": flagged.ravel(), "caught": caught.ravel().astype(np.int64),
                         "sensitivity": sensitivity.ravel(), "alerts_per_100": alerts.ravel()})
