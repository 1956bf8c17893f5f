"""Missing inputs, overall and per patient group, and what each input looked like.

Missingness in hospital data is rarely at random: a lab that is ordered less
often for some patients leaves the model with less to go on for exactly those
patients. So ModelBoard never fills or drops missing values silently; it
reports, per input, how often each group is missing it (cross-checked against
pandas in the tests), next to the subgroup metrics it helps explain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

OVERALL = "overall"
TOP_CATEGORIES = 8


def missing_shares(X: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """One row per (attribute, group, input): n, missing, share. Attribute 'overall' covers every patient;
    groups are listed only for inputs that are missing somewhere."""
    missing = X.isna()
    rows = [{"attribute": OVERALL, "group": "all patients", "column": c, "n": len(X), "missing": int(missing[c].sum()),
             "share": float(missing[c].mean()) if len(X) else float("nan")} for c in X.columns]
    gappy = [c for c in X.columns if missing[c].any()]
    for attribute in groups.columns:
        keys = groups[attribute].astype(str).to_numpy()
        counted = missing[gappy].groupby(keys).agg(["sum", "count"]) if gappy else pd.DataFrame()
        for group in counted.index:
            for c in gappy:
                n, k = int(counted.loc[group, (c, "count")]), int(counted.loc[group, (c, "sum")])
                rows.append({"attribute": attribute, "group": str(group), "column": c, "n": n, "missing": k,
                             "share": k / n if n else float("nan")})
    return pd.DataFrame(rows, columns=["attribute", "group", "column", "n", "missing", "share"])


def missing_sentence(shares: pd.DataFrame, column: str, attribute: str, *, min_n: int) -> str | None:
    """'lactate is missing for 31 % of Black patients and 12 % of White patients (15 % of all patients)' — the
    groups (of at least `min_n` patients) with the highest and lowest share; None when nothing is missing or
    every group is too small."""
    rows = shares[(shares["attribute"] == attribute) & (shares["column"] == column) & (shares["n"] >= min_n)]
    if rows.empty or rows["missing"].sum() == 0:
        return None
    ordered = rows.sort_values("share", ascending=False)
    high, low = ordered.iloc[0], ordered.iloc[-1]
    everyone = shares[(shares["attribute"] == OVERALL) & (shares["column"] == column)]["share"]
    of_all = f" ({everyone.iloc[0]:.0%} of all patients)" if len(everyone) else ""
    if len(ordered) == 1 or high["group"] == low["group"]:
        return f"{column} is missing for {high['share']:.0%} of {high['group']} patients{of_all}"
    return (f"{column} is missing for {high['share']:.0%} of {high['group']} patients and {low['share']:.0%} of "
            f"{low['group']} patients{of_all}")


def sensitivity_by_presence(y: np.ndarray, flagged: np.ndarray, X: pd.DataFrame) -> list[dict[str, Any]]:
    """For each input that is sometimes missing: of the patients with the outcome, the share the model
    flagged when the input was missing and when it was present (with Wilson 95 % intervals) — what the
    missingness costs the patients it falls on."""
    from core.metrics.intervals import wilson

    out = []
    positive = np.asarray(y) == 1
    for name in X.columns:
        gone = X[name].isna().to_numpy()
        if not gone.any():
            continue
        entry: dict[str, Any] = {"column": str(name)}
        for key, mask in (("missing", gone), ("present", ~gone)):
            n = int((positive & mask).sum())
            k = int((positive & mask & np.asarray(flagged)).sum())
            lo, hi = wilson(np.array([k]), np.array([n]))
            entry[key] = {"positives": n, "flagged": k, "sensitivity": k / n if n else float("nan"),
                          "lo": float(lo[0]), "hi": float(hi[0])}
        out.append(entry)
    return out


def input_profile(X: pd.DataFrame, types: Sequence[str], required: Sequence[bool]) -> list[dict[str, Any]]:
    """Each input as the model received it: declared type, missing share, distinct values, and its range
    (numbers) or most common values (text, flags) — the data-quality table of the Performance page."""
    out = []
    for (name, values), kind, needed in zip(X.items(), types, required, strict=True):
        present = values.dropna()
        entry: dict[str, Any] = {"column": str(name), "type": kind, "required": bool(needed), "n": len(values),
                                 "missing": int(values.isna().sum()), "distinct": int(present.nunique())}
        if kind in ("double", "float", "long", "integer") and len(present):
            numbers = present.to_numpy(dtype=float)
            entry |= {"min": float(np.min(numbers)), "median": float(np.median(numbers)),
                      "max": float(np.max(numbers))}
        elif kind in ("string", "boolean") and len(present):
            counts = present.astype(str).value_counts()
            entry["top"] = {str(k): int(v) for k, v in counts.head(TOP_CATEGORIES).items()}
        out.append(entry)
    return out
