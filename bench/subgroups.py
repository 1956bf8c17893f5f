"""ModelBoard's subgroup engine against fairlearn MetricFrame (and statsmodels) on the same data, same run.

5 sensitive attributes and their 10 pairwise intersections (15 attribute sets);
metrics: n, sensitivity, specificity, PPV, selection rate and AUROC per group.
ModelBoard's timings also include per-group calibration (mean predicted risk,
observed/expected with CI, ECE), which the fairlearn side does not compute.
The last table times the optional per-group calibration slope and intercept
(`calibration_fit=True`, what the evaluation uses) against statsmodels Logit
fitted group by group. References are run where they finish in reasonable time
and extrapolated linearly from the largest size they ran beyond that (marked
"extrapolated"). Single runs on whatever else the machine is doing: measured,
never asserted.
"""

from __future__ import annotations

import time
import tracemalloc
import warnings
from itertools import combinations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from fairlearn.metrics import MetricFrame, count, selection_rate, true_negative_rate
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from core.metrics.calibration import clipped_logit
from core.metrics.subgroups import subgroup_metrics

ATTRIBUTES = {"sex": 2, "age_band": 4, "race_ethnicity": 5, "payer": 4, "site": 3}
THRESHOLD = 0.3
FAIRLEARN_MAX_ROWS = 200_000


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame({a: rng.integers(0, k, n).astype(str) for a, k in ATTRIBUTES.items()})
    y = (rng.random(n) < 0.12).astype(np.int64)
    score = np.clip(0.15 + 0.25 * y + rng.normal(0, 0.18, n), 0, 1).round(3)
    return y, score, sensitive


def _auroc(t: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(t, s)) if len(np.unique(t)) == 2 else float("nan")


def fairlearn_grid(y: np.ndarray, score: np.ndarray, sensitive: pd.DataFrame) -> dict[tuple[str, str], float]:
    flagged = (score >= THRESHOLD).astype(int)
    metrics = {"n": count, "sensitivity": lambda t, p: recall_score(t, p, zero_division=np.nan),
               "specificity": true_negative_rate, "selection_rate": selection_rate,
               "ppv": lambda t, p: precision_score(t, p, zero_division=np.nan)}
    sets = [[a] for a in ATTRIBUTES] + [list(p) for p in combinations(ATTRIBUTES, 2)]
    out: dict[tuple[str, str], float] = {}
    for columns in sets:
        mf = MetricFrame(metrics=metrics, y_true=y, y_pred=flagged, sensitive_features=sensitive[columns])
        auc = MetricFrame(metrics=_auroc, y_true=y, y_pred=score, sensitive_features=sensitive[columns])
        for key, value in auc.by_group.items():
            label = " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
            out[(" × ".join(columns), label)] = float(value)
        for key, value in mf.by_group["sensitivity"].items():
            label = " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
            out[(" × ".join(columns), label + "#sens")] = float(value)
    return out


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def peak_mb(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def max_difference(ours: pd.DataFrame, ref: dict[tuple[str, str], float]) -> float:
    indexed = ours.set_index(["attribute_set", "group"])
    worst = 0.0
    for (attribute_set, label), value in ref.items():
        metric = "sensitivity" if label.endswith("#sens") else "auroc"
        mine = float(indexed.loc[(attribute_set, label.removesuffix("#sens")), metric])
        if np.isnan(mine) and np.isnan(value):
            continue
        worst = max(worst, abs(mine - value))
    return worst


def fairlearn_bootstrap_pass(y: np.ndarray, score: np.ndarray, sensitive: pd.DataFrame, seed: int) -> None:
    """One bootstrap resample through MetricFrame: what a 200-resample interval costs 200 times."""
    idx = np.random.default_rng(seed).integers(0, len(y), len(y))
    fairlearn_grid(y[idx], score[idx], sensitive.iloc[idx].reset_index(drop=True))


def bootstrap_table(single_pass_per_row: float) -> None:
    print()
    print("Bootstrap intervals, 200 resamples, all 15 attribute sets (rates; AUROC keeps DeLong)")
    print(f"{'rows':>10} | {'ModelBoard s':>12} | {'fairlearn s':>12} | {'speed-up':>9} | note")
    for n in (20_000, 200_000, 2_000_000):
        y, score, sensitive = make_data(n)
        _, ours_s = timed(subgroup_metrics, y, score, sensitive_features=sensitive, threshold=THRESHOLD,
                          n_bootstrap=200)
        if n == 20_000:
            start = time.perf_counter()
            for resample in range(3):
                fairlearn_bootstrap_pass(y, score, sensitive, resample)
            three = time.perf_counter() - start
            ref_s, note = three / 3 * 200, "fairlearn: 3 resamples measured, ×200/3"
        else:
            ref_s, note = single_pass_per_row * n * 200, "fairlearn: one measured pass per row × rows × 200"
        print(f"{n:>10,} | {ours_s:>12.3f} | {ref_s:>12.0f} | {ref_s / ours_s:>8.0f}× | {note}")


def statsmodels_slopes(y: np.ndarray, score: np.ndarray, sensitive: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Calibration slope per group of every attribute set, one statsmodels Logit fit per group."""
    x = clipped_logit(score)
    sets = [[a] for a in ATTRIBUTES] + [list(p) for p in combinations(ATTRIBUTES, 2)]
    out: dict[tuple[str, str], float] = {}
    for columns in sets:
        labels = sensitive[columns].astype(str).agg(" / ".join, axis=1).to_numpy()
        for group in np.unique(labels):
            mask = labels == group
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = sm.Logit(y[mask], sm.add_constant(x[mask])).fit(disp=0)
            out[(" × ".join(columns), group)] = float(fit.params[1])
    return out


def calibration_table() -> None:
    print()
    print("Per-group calibration slope and intercept with Wald CIs (calibration_fit=True), all 15 attribute sets,")
    print("on top of 200-resample rate CIs; reference: statsmodels Logit fitted group by group (slopes only)")
    print(f"{'rows':>10} | {'without fit s':>13} | {'with fit s':>10} | {'fit costs s':>11} | "
          f"{'statsmodels s':>13} | {'speed-up':>9} | {'max |diff|':>10} | note")
    statsmodels_per_row = None
    for n in (20_000, 200_000, 2_000_000):
        y, score, sensitive = make_data(n)
        kwargs = {"sensitive_features": sensitive, "threshold": THRESHOLD, "n_bootstrap": 200}
        _, without = timed(subgroup_metrics, y, score, **kwargs)
        report, with_fit = timed(subgroup_metrics, y, score, calibration_fit=True, **kwargs)
        if n <= FAIRLEARN_MAX_ROWS:
            ref, ref_s = timed(statsmodels_slopes, y, score, sensitive)
            statsmodels_per_row = ref_s / n
            mine = report.by_group.set_index(["attribute_set", "group"])["calibration_slope"]
            diff, note = f"{max(abs(mine[k] - v) for k, v in ref.items()):.1e}", "measured"
        else:
            ref_s = (statsmodels_per_row or 0.0) * n
            diff, note = "—", f"statsmodels extrapolated from {FAIRLEARN_MAX_ROWS:,} rows"
        fit = with_fit - without
        print(f"{n:>10,} | {without:>13.3f} | {with_fit:>10.3f} | {fit:>11.3f} | {ref_s:>13.2f} | "
              f"{ref_s / fit:>8.0f}× | {diff:>10} | {note}")


def main() -> None:
    y, score, sensitive = make_data(1_000)
    _, first = timed(subgroup_metrics, y, score, sensitive_features=sensitive, threshold=THRESHOLD)
    print(f"One-off per process, not in the rows below: first call on 1,000 rows {first:.2f} s (loads the "
          "compiled AUROC kernel; numba compiles it on a machine's very first run and caches it in __pycache__)")
    print(f"{'rows':>10} | {'ModelBoard s':>12} | {'MB peak MB':>10} | {'fairlearn s':>12} | {'speed-up':>9} | "
          f"{'max |diff|':>10} | note")
    fairlearn_per_row = None
    for n in (20_000, 200_000, 2_000_000):
        y, score, sensitive = make_data(n)
        report, ours_s = timed(subgroup_metrics, y, score, sensitive_features=sensitive, threshold=THRESHOLD)
        mem = peak_mb(subgroup_metrics, y, score, sensitive_features=sensitive, threshold=THRESHOLD)
        if n <= FAIRLEARN_MAX_ROWS:
            ref, ref_s = timed(fairlearn_grid, y, score, sensitive)
            fairlearn_per_row = ref_s / n
            diff, note = f"{max_difference(report.by_group, ref):.1e}", "measured"
        else:
            ref_s = (fairlearn_per_row or 0.0) * n
            diff, note = "—", f"fairlearn extrapolated from {FAIRLEARN_MAX_ROWS:,} rows"
        print(f"{n:>10,} | {ours_s:>12.3f} | {mem:>10.0f} | {ref_s:>12.2f} | {ref_s / ours_s:>8.0f}× | {diff:>10} | "
              f"{note}")
    bootstrap_table(fairlearn_per_row or 0.0)
    calibration_table()


if __name__ == "__main__":
    main()
