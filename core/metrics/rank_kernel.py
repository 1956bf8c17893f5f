"""A compiled loop (the drift engine has the other): per-group Mann–Whitney sums in one pass over sorted scores.

Why compiled: AUROC with its DeLong variance for every group of every attribute set
is the hot spot of the subgroup grid (15 sets × 2M patients in `make bench`). In
numpy it needs a second sort by group and a dozen full-length temporaries per set;
walking the score-sorted patients once with per-group running counts needs none.
numba (already installed for shap) compiles it; `cache=True` keeps the machine
code in __pycache__ so only the first run on a machine pays the compilation.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def mann_whitney_sums(y: np.ndarray, s: np.ndarray, g: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    """For rows sorted by score `s`: per group n1, n0, Σ V10, Σ V10², Σ V01, Σ V01² (DeLong 1988).

    A positive's V10 is the share of its group's negatives scoring lower (ties
    count half); a negative's V01 is the share of its group's positives scoring
    higher (ties half). Tied scores form blocks that are counted before use.
    """
    n = len(y)
    n1 = np.zeros(n_groups)
    n0 = np.zeros(n_groups)
    for k in range(n):
        if y[k]:
            n1[g[k]] += 1.0
        else:
            n0[g[k]] += 1.0
    pos_seen, neg_seen = np.zeros(n_groups), np.zeros(n_groups)
    pos_tie, neg_tie = np.zeros(n_groups), np.zeros(n_groups)
    v10, v10_sq, v01, v01_sq = np.zeros(n_groups), np.zeros(n_groups), np.zeros(n_groups), np.zeros(n_groups)
    start = 0
    while start < n:
        end = start + 1
        while end < n and s[end] == s[start]:
            end += 1
        for k in range(start, end):
            if y[k]:
                pos_tie[g[k]] += 1.0
            else:
                neg_tie[g[k]] += 1.0
        for k in range(start, end):
            grp = g[k]
            if y[k] and n0[grp] > 0:
                value = (neg_seen[grp] + 0.5 * neg_tie[grp]) / n0[grp]
                v10[grp] += value
                v10_sq[grp] += value * value
            elif not y[k] and n1[grp] > 0:
                value = (n1[grp] - pos_seen[grp] - 0.5 * pos_tie[grp]) / n1[grp]
                v01[grp] += value
                v01_sq[grp] += value * value
        for k in range(start, end):
            grp = g[k]
            pos_tie[grp] = 0.0
            neg_tie[grp] = 0.0
            if y[k]:
                pos_seen[grp] += 1.0
            else:
                neg_seen[grp] += 1.0
        start = end
    return n1, n0, v10, v10_sq, v01, v01_sq
