"""Bootstrap intervals for the subgroup grid, without touching the rows again.

Resampling patients within a group only changes how many land in each
confusion-matrix cell, and those counts are multinomial with the observed cell
shares. So B resamples of every group are B multinomial draws per group — the
cost does not grow with the number of patients. (AUROC needs the scores; its
interval stays DeLong.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.metrics.binary import GroupCounts

SEED = 20261124
RATES = {
    # metric: (numerator cells, denominator cells) over the cell order tp, fp, fn, tn
    "sensitivity": ((0,), (0, 2)),
    "specificity": ((3,), (1, 3)),
    "ppv": ((0,), (0, 1)),
    "npv": ((3,), (2, 3)),
    "selection_rate": ((0, 1), (0, 1, 2, 3)),
}


def bootstrap_rates(counts: GroupCounts, *, n_bootstrap: int = 200, seed: int = SEED) -> pd.DataFrame:
    """Percentile 95 % intervals per group for each rate (NaN where the group cannot define it)."""
    cells = np.stack([counts.tp, counts.fp, counts.fn, counts.tn], axis=1).astype(float)
    n = cells.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(n[:, None] > 0, cells / n[:, None], 0.25)
    draws = np.random.default_rng(seed).multinomial(n.astype(np.int64), shares, size=(n_bootstrap, len(n)))
    out = {}
    for metric, (num, den) in RATES.items():
        top = draws[:, :, list(num)].sum(axis=2).astype(float)
        bottom = draws[:, :, list(den)].sum(axis=2).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(bottom > 0, top / bottom, np.nan)
        undefined = cells[:, list(den)].sum(axis=1) == 0
        lo, hi = nan_percentiles(rate, (2.5, 97.5))
        out[f"{metric}_boot_lo"] = np.where(undefined, np.nan, lo)
        out[f"{metric}_boot_hi"] = np.where(undefined, np.nan, hi)
    return pd.DataFrame(out)


def nan_percentiles(values: np.ndarray, percents: tuple[float, ...]) -> list[np.ndarray]:
    """np.nanpercentile(values, percents, axis=0) with numpy's linear method, from one sort.

    numpy's nanpercentile falls back to a Python loop over columns when NaNs are
    present (a group whose resample had no one in the denominator); sorting once
    puts the NaNs last, and each column's percentile is read at its own count.
    """
    ordered = np.sort(values, axis=0)
    valid = np.sum(~np.isnan(values), axis=0)
    columns = np.arange(values.shape[1])
    out = []
    for percent in percents:
        position = percent / 100 * np.maximum(valid - 1, 0)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, np.maximum(valid - 1, 0))
        low, high = ordered[below, columns], ordered[above, columns]
        out.append(np.where(valid > 0, low + (high - low) * (position - below), np.nan))
    return out
