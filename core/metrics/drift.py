"""Data drift of a production window against the sign-off's reference data, by evidently's rules.

Decisions must equal evidently 0.7's `Report([DataDriftPreset()])` on the same data; this engine
exists because that report takes ~30 s on a 1M-row window and this one about a second (see
`make bench` and docs/decisions/0010-drift-engine.md). The rules replicated, per column
(evidently/legacy/calculations/stattests/registry.py `_get_default_stattest`, and
evidently/legacy/calculations/data_drift.py `get_one_column_drift`):

- NaN and ±inf are dropped from each side first; an empty side is an error. "Reference size"
  and "distinct values" are counted after that, distinct values over both sides together.
- reference > 1,000 rows: numerical with more than 5 distinct values → normed Wasserstein
  (`wasserstein_distance / max(std(reference), 0.001)`, population std); otherwise (categorical,
  or numerical with at most 5 values) → Jensen–Shannon distance (natural log) of the two
  category shares, a category missing on one side counting 0. Threshold 0.1; drift if ≥ 0.1.
- reference ≤ 1,000 rows: numerical with more than 5 distinct values → two-sample K-S p-value,
  drift if p ≤ 0.05; more than 2 values → chi-square p-value (expected = reference counts scaled
  to the current size), drift if p < 0.05; at most 2 → two-proportion Z-test p-value
  (`2·(1 − Φ(|z|))`, the smallest value the "first" category), drift if p < 0.05; a column constant
  at the same value on both sides gets p = 1.
- Dataset drift when the share of drifted columns is ≥ `drift_share` (default 0.5).

Numerical columns are sorted once per side; distinct values, counts and the Wasserstein integral
all come from the sorted arrays (the integral by one compiled merge walk, numba like rank_kernel.py),
so no step is per-row Python and nothing is sorted twice. Categories are counted by factorize +
bincount. Scores equal evidently's to ~1e-12 relative (summation order only), decisions exactly:
tests/core/test_drift.py runs evidently's report on the same data.

Not replicated: evidently's dataset-level count (DriftedColumnsCount) keeps ±inf in a column with no
NaN (it cleans only columns where `isna()` finds something), while its per-column ValueDrift drops
them; we always drop them. Custom methods, per-column thresholds and text columns are not offered.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numba import njit
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, ks_2samp, norm

Kind = Literal["numerical", "categorical"]
StatTest = Literal["wasserstein", "jensenshannon", "ks", "chisquare", "z"]

# evidently's StatTest display names (what its report shows as `method`) and default thresholds
METHOD_NAMES: dict[StatTest, str] = {
    "wasserstein": "Wasserstein distance (normed)",
    "jensenshannon": "Jensen-Shannon distance",
    "ks": "K-S p_value",
    "chisquare": "chi-square p_value",
    "z": "Z-test p_value",
}
THRESHOLDS: dict[StatTest, float] = {"wasserstein": 0.1, "jensenshannon": 0.1, "ks": 0.05, "chisquare": 0.05,
                                     "z": 0.05}
LARGE_REFERENCE = 1_000  # evidently switches from p-value tests to distances above this many reference rows
FEW_VALUES = 5  # numerical columns with at most this many distinct values are treated as categories
BINARY = 2


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift: `score` is a distance (higher = drift) or a p-value (lower = drift)."""

    column: str
    kind: Kind
    stattest: StatTest
    method: str
    score: float
    threshold: float
    drifted: bool
    reference_n: int
    current_n: int


@dataclass(frozen=True)
class DataDriftResult:
    """`columns`: one row per column, in the order given (numerical first, then categorical)."""

    columns: pd.DataFrame
    n_columns: int
    n_drifted: int
    share_drifted: float
    drift_share: float
    dataset_drift: bool


@dataclass(frozen=True)
class _Counts:
    """Category counts of both sides over the union of their categories, in the order of `keys`."""

    keys: list[Any]
    reference: np.ndarray
    current: np.ndarray

    @property
    def n_values(self) -> int:
        return int(self.reference.size)


def column_drift(reference: np.ndarray | pd.Series, current: np.ndarray | pd.Series, *, kind: Kind,
                 column: str = "") -> ColumnDrift:
    """Drift of one column by the method and threshold evidently would choose for it.

    Numerical input must be numeric (NaN/±inf allowed, dropped); categorical input may be anything
    pandas can count (NaN dropped).
    """
    if kind == "numerical":
        ref, cur = _sorted_finite(reference, column, "reference"), _sorted_finite(current, column, "current")
        return _numerical_drift(ref, cur, column)
    counts = _category_counts(pd.Series(reference), pd.Series(current), column)
    return _categorical_drift(counts, column, "categorical")


def data_drift(reference: pd.DataFrame, current: pd.DataFrame, numerical: Sequence[str],
               categorical: Sequence[str], *, drift_share: float = 0.5) -> DataDriftResult:
    """Per-column drift for every listed column, then the dataset decision evidently makes.

    A column listed but missing from either frame is reported by name, all at once.
    """
    missing = [c for c in (*numerical, *categorical) if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"columns {missing} missing from the reference or current data: drift needs both sides")
    # Sorting and the compiled walk release the GIL, counting Python strings holds it: numerical
    # columns in one helper thread overlap the categorical ones here (~25 % less time at 1M rows on
    # two cores), and memory stays at one column of each kind at a time.
    with ThreadPoolExecutor(max_workers=1) as helper:
        numeric = helper.submit(_numerical_columns, reference, current, numerical)
        categoric = [column_drift(reference[c], current[c], kind="categorical", column=c) for c in categorical]
        results = numeric.result() + categoric
    frame = pd.DataFrame([r.__dict__ for r in results],
                         columns=["column", "kind", "stattest", "method", "score", "threshold", "drifted",
                                  "reference_n", "current_n"])
    n_drifted = int(frame["drifted"].sum())
    share = n_drifted / len(results) if results else 0.0
    return DataDriftResult(frame, len(results), n_drifted, share, drift_share, bool(results) and share >= drift_share)


def _numerical_columns(reference: pd.DataFrame, current: pd.DataFrame, numerical: Sequence[str]) -> list[ColumnDrift]:
    return [column_drift(_as_float(reference[c]), _as_float(current[c]), kind="numerical", column=c)
            for c in numerical]


def _as_float(values: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"column '{values.name}' should contain numerical values only: declare it categorical")
    return values.to_numpy(dtype=float, na_value=np.nan)


def _sorted_finite(values: np.ndarray | pd.Series, column: str, side: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    finite = np.isfinite(arr)
    out = np.sort(arr) if finite.all() else np.sort(arr[finite])
    if out.size == 0:
        raise ValueError(f"column '{column}' is empty in the {side} data after dropping missing values")
    return out


def _n_distinct_sorted(values: np.ndarray) -> int:
    return 1 + int(np.count_nonzero(values[1:] != values[:-1]))


def _numerical_drift(ref: np.ndarray, cur: np.ndarray, column: str) -> ColumnDrift:
    # the union has more than FEW_VALUES values as soon as either side has: only small sides are merged
    few = _n_distinct_sorted(ref) <= FEW_VALUES and _n_distinct_sorted(cur) <= FEW_VALUES
    if few:
        keys = np.union1d(np.unique(ref), np.unique(cur))
        if keys.size <= FEW_VALUES:
            counts = _Counts(keys.tolist(), _sorted_counts(ref, keys), _sorted_counts(cur, keys))
            return _categorical_drift(counts, column, "numerical")
    if ref.size > LARGE_REFERENCE:
        norm_by = max(float(np.std(ref)), 0.001)
        return _result(column, "numerical", "wasserstein", float(_wasserstein_sorted(ref, cur)) / norm_by, ref, cur)
    return _result(column, "numerical", "ks", float(ks_2samp(ref, cur)[1]), ref, cur)


def _sorted_counts(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    return np.searchsorted(values, keys, side="right") - np.searchsorted(values, keys, side="left")


@njit(cache=True, nogil=True)
def _wasserstein_sorted(ref: np.ndarray, cur: np.ndarray) -> float:  # pragma: no cover - compiled
    """scipy's `wasserstein_distance`, ∫|F_ref − F_cur|, by one merge walk over the two sorted samples.

    Why compiled: scipy re-sorts both samples, merges them with a third sort and builds five
    full-length temporaries (~75 ms and ~100 MB per column at 1M + 1M rows); the walk needs none.
    Between consecutive distinct values x_k < x_k+1 both CDFs are constant (counts ≤ x_k over
    the sample size, as scipy's searchsorted(..., "right")), so the integral is a sum of rectangles.
    """
    n, m = ref.size, cur.size
    i = j = 0
    total = 0.0
    previous = min(ref[0], cur[0])
    while i < n or j < m:
        value = ref[i] if j >= m or (i < n and ref[i] <= cur[j]) else cur[j]
        total += abs(i / n - j / m) * (value - previous)
        while i < n and ref[i] == value:
            i += 1
        while j < m and cur[j] == value:
            j += 1
        previous = value
    return total


def _category_counts(reference: pd.Series, current: pd.Series, column: str) -> _Counts:
    ref, cur = _value_counts(reference), _value_counts(current)
    for side, counts in (("reference", ref), ("current", cur)):
        if counts.sum() == 0:
            raise ValueError(f"column '{column}' is empty in the {side} data after dropping missing values")
    keys = ref.index.union(cur.index)
    return _Counts(keys.tolist(), ref.reindex(keys, fill_value=0).to_numpy(dtype=np.int64),
                   cur.reindex(keys, fill_value=0).to_numpy(dtype=np.int64))


def _value_counts(values: pd.Series) -> pd.Series:
    # factorize + bincount: about 3x faster than value_counts on object columns of strings
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(uniques)), index=uniques)
    counts = counts[counts > 0]
    if pd.api.types.is_numeric_dtype(counts.index.dtype) and not pd.api.types.is_bool_dtype(counts.index.dtype):
        counts = counts[np.isfinite(counts.index.to_numpy(dtype=float))]  # evidently drops ±inf as missing
    return counts


def _categorical_drift(counts: _Counts, column: str, kind: Kind) -> ColumnDrift:
    n_ref, n_cur = int(counts.reference.sum()), int(counts.current.sum())
    sizes = (n_ref, n_cur)
    if n_ref > LARGE_REFERENCE:
        score = float(jensenshannon(counts.reference / n_ref, counts.current / n_cur))
        return _result(column, kind, "jensenshannon", score, *sizes)
    if counts.n_values > BINARY:
        expected = counts.reference * (n_cur / n_ref)
        with np.errstate(divide="ignore", invalid="ignore"):  # a category new in current: expected 0, p = 0
            p_value = float(chisquare(counts.current, expected)[1])
        return _result(column, kind, "chisquare", p_value, *sizes)
    return _result(column, kind, "z", _z_test(counts, n_ref, n_cur), *sizes)


def _z_test(counts: _Counts, n_ref: int, n_cur: int) -> float:
    """evidently's two-proportion Z-test: share of rows not equal to the smallest category, pooled variance."""
    if counts.n_values == 1:
        return 1.0
    first = min(range(counts.n_values), key=lambda i: counts.keys[i])
    p1 = float(n_ref - counts.reference[first]) / n_ref
    p2 = float(n_cur - counts.current[first]) / n_cur
    pooled = float(p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - norm.cdf(np.abs(z))))  # not 2·sf: evidently's form, which rounds tiny p to 0


def _result(column: str, kind: Kind, stattest: StatTest, score: float, ref: np.ndarray | int,
            cur: np.ndarray | int) -> ColumnDrift:
    threshold = THRESHOLDS[stattest]
    if stattest in ("wasserstein", "jensenshannon"):
        drifted = score >= threshold
    elif stattest == "ks":
        drifted = score <= threshold
    else:
        drifted = score < threshold
    n_ref = ref if isinstance(ref, int) else int(ref.size)
    n_cur = cur if isinstance(cur, int) else int(cur.size)
    return ColumnDrift(column, kind, stattest, METHOD_NAMES[stattest], score, threshold, bool(drifted), n_ref, n_cur)


def population_stability_index(reference_scores: np.ndarray, current_scores: np.ndarray, bins: int = 10, *,
                               binning: Literal["quantile", "evidently"] = "quantile") -> float:
    """PSI of the model's scores, Σ (ref − cur) · ln(ref / cur) over bins of the score.

    `quantile` (default, the usual PSI for score drift): `bins` equal-frequency bins cut at the
    reference's quantiles (duplicate cut points merged, outer bins open to ±inf; a value on a cut
    point goes to the bin above). `evidently`: evidently's `psi` stattest exactly (`bins` ignored):
    Sturges-rule equal-width bins over both samples together when the reference has more than 20
    distinct values, else one bin per distinct value. Either way an empty bin's share is 0.0001,
    or a millionth of the smallest non-empty share when that is ≤ 0.0001 (evidently's rule), so the
    logarithm stays finite. NaN and ±inf are dropped.
    """
    ref = np.asarray(reference_scores, dtype=float)
    cur = np.asarray(current_scores, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        raise ValueError("PSI needs at least one finite score on each side")
    if binning == "quantile":
        cuts = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1))[1:-1])
        n_bins = cuts.size + 1
        ref_share = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=n_bins) / ref.size
        cur_share = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=n_bins) / cur.size
    elif np.unique(ref).size > 20:
        edges = np.histogram_bin_edges(np.concatenate((ref, cur)), bins="sturges")
        ref_share = np.histogram(ref, edges)[0] / ref.size
        cur_share = np.histogram(cur, edges)[0] / cur.size
    else:
        keys = np.union1d(ref, cur)
        ref_sorted, cur_sorted = np.sort(ref), np.sort(cur)
        ref_share = _sorted_counts(ref_sorted, keys) / ref.size
        cur_share = _sorted_counts(cur_sorted, keys) / cur.size
    ref_share, cur_share = _fill_empty(ref_share), _fill_empty(cur_share)
    return float(np.sum((ref_share - cur_share) * np.log(ref_share / cur_share)))


def _fill_empty(shares: np.ndarray) -> np.ndarray:
    smallest = float(shares[shares > 0].min())
    return np.where(shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001, shares)
