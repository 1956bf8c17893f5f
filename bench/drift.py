"""ModelBoard's drift engine against evidently's Report([DataDriftPreset()]) on the same data.

23 columns (13 continuous numeric with ~1 % missing, 2 numeric with few values, 8 categorical
strings), reference and current window of the same size, seeded; the current window shifts 3
columns (two numeric means by 0.3 SD, one categorical's shares) and nudges one by 0.02 SD, which
must stay undetected. Each engine runs in its own fresh subprocess per size: the same data is
generated there, both engines get a small warm-up call (imports, registries, loading the compiled
Wasserstein kernel) outside the timing, and neither inherits the other's heap. evidently's time
includes wrapping the frames with Dataset.from_pandas (it needs that to run), not reading the
snapshot back.

Peak memory growth is the process's resident-set high-water mark (VmHWM) during the call minus
its resident set just before: the kernel's peak counter is reset right before the call
(writing 5 to /proc/self/clear_refs). Why not tracemalloc: it slows evidently's many small Python
allocations severalfold and misses memory that C libraries allocate outside Python's allocator;
why not ru_maxrss alone: it cannot be reset, so the data generation's own peak would hide the
call's. Where clear_refs is unavailable, ru_maxrss minus the resident set before is printed instead
and marked as a lower bound. Measured, never asserted.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = [f"num_{i:02d}" for i in range(13)]
FEW_VALUED = ["count_0_3", "flag_0_1"]
CATEGORICAL = [f"cat_{i}" for i in range(8)]
SIZES = (10_000, 100_000, 1_000_000)


def make_data(n: int, *, current: bool) -> pd.DataFrame:
    rng = np.random.default_rng(1 if current else 0)
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(NUMERIC):
        shift = {0: 0.3, 1: 0.3, 2: 0.02}.get(i, 0.0) if current else 0.0
        values = rng.normal(10.0 * i + shift * (1 + i), 1 + i, n)
        values[rng.random(n) < 0.01] = np.nan
        columns[name] = values
    columns["count_0_3"] = rng.integers(0, 4, n).astype(float)
    columns["flag_0_1"] = (rng.random(n) < 0.3).astype(float)
    for i, name in enumerate(CATEGORICAL):
        levels = np.array([f"level_{k}" for k in range(2 + i)])
        shares = np.full(len(levels), 1 / len(levels))
        if current and i == 3:
            shares = np.linspace(2, 0.5, len(levels))
            shares /= shares.sum()
        columns[name] = rng.choice(levels, n, p=shares).astype(object)
    return pd.DataFrame(columns)


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def run_modelboard(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    from core.metrics.drift import data_drift

    result = data_drift(reference, current, NUMERIC + FEW_VALUED, CATEGORICAL)
    per_column = {row.column: [row.method, float(row.score), bool(row.drifted)] for row in result.columns.itertuples()}
    return {"columns": per_column, "dataset_drift": result.dataset_drift}


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC + FEW_VALUED, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition))
    return {"snapshot": snapshot}


def evidently_decisions(snapshot: Any) -> dict[str, Any]:
    """Per column (method, score, drifted) and the dataset decision, read from evidently's own snapshot."""
    as_dict = snapshot.dict()
    by_id = {m["id"]: m for m in as_dict["metrics"]}
    per_column: dict[str, list[Any]] = {}
    dataset_drift = False
    for test in as_dict["tests"]:
        metric = by_id[test["metric_config"]["metric_id"]]
        if metric["config"]["type"].endswith("ValueDrift"):
            per_column[metric["config"]["column"]] = [metric["config"]["method"], float(metric["value"]),
                                                      test["status"] == "FAIL"]
        elif metric["config"]["type"].endswith("DriftedColumnsCount"):
            dataset_drift = test["status"] == "FAIL"
    return {"columns": per_column, "dataset_drift": dataset_drift}


def worker(engine: str, n: int) -> None:
    warnings.simplefilter("ignore")
    run = run_modelboard if engine == "modelboard" else run_evidently
    run(make_data(2_000, current=False), make_data(2_000, current=True))  # warm-up, not timed
    reference, current = make_data(n, current=False), make_data(n, current=True)
    gc.collect()
    exact = _reset_peak()
    before = _rss_kb("VmRSS")
    start = time.perf_counter()
    out = run(reference, current)
    seconds = time.perf_counter() - start
    peak = _rss_kb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if engine == "evidently":
        out = evidently_decisions(out["snapshot"])
    print(json.dumps({"seconds": seconds, "peak_mb": (peak - before) / 1024, "exact_peak": exact, **out}))


def measure(engine: str, n: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--worker", engine, str(n)], check=True,
                          capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[bool, float, int]:
    """Decisions equal (every column's method and flag, and the dataset's), worst relative score gap."""
    same = ours["dataset_drift"] == theirs["dataset_drift"] and ours["columns"].keys() == theirs["columns"].keys()
    worst = 0.0
    for column, (method, score, drifted) in theirs["columns"].items():
        mine = ours["columns"].get(column, [None, np.nan, None])
        same = same and mine[0] == method and mine[2] == drifted
        worst = max(worst, abs(mine[1] - score) / max(abs(score), 1e-300))
    return same, worst, sum(1 for *_, drifted in ours["columns"].values() if drifted)


def main() -> None:
    print(f"{'rows':>10} | {'ModelBoard s':>12} | {'MB peak +MB':>11} | {'evidently s':>11} | {'ev peak +MB':>11} | "
          f"{'speed-up':>8} | {'drifted':>7} | {'max rel diff':>12} | decisions equal")
    for n in SIZES:
        ours, theirs = measure("modelboard", n), measure("evidently", n)
        same, worst, drifted = compare(ours, theirs)
        bound = "" if ours["exact_peak"] and theirs["exact_peak"] else " (peak: ru_maxrss lower bound)"
        print(f"{n:>10,} | {ours['seconds']:>12.3f} | {ours['peak_mb']:>11.0f} | {theirs['seconds']:>11.2f} | "
              f"{theirs['peak_mb']:>11.0f} | {theirs['seconds'] / ours['seconds']:>7.0f}× | "
              f"{drifted:>3} / 23 | {worst:>12.1e} | {'yes' if same else 'no'}{bound}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]))
    else:
        main()
