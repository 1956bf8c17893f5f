"""`monitor` over the demo's 90 days of production, and evidently's Report on the same windows.

Runs on the demo `bench/run.sh` just built (MODELBOARD_HOME). Monitoring state is wiped first so every
window is computed; the reference (scored once per version by the worker process) is rebuilt and timed
on its own. Then the same log with daily windows. evidently gets the same reference and the
same window rows (read by ModelBoard's own window reader) and only its `Report.run` is timed; its
per-column decisions are compared with the ones monitoring stored. Measured, never asserted.
"""

from __future__ import annotations

import re
import time
import warnings
from datetime import datetime

import pandas as pd

from core.config import load_settings
from core.domain.access import command_line_operator
from core.services.installation import open_registry, open_store
from core.services.monitoring import run_monitor, window_comparison
from core.services.monitoring_reference import reference_for
from core.services.usecases import export_yaml, import_use_case

OPERATOR = command_line_operator("bench")
TABLES = ("monitoring_windows", "monitoring_feature_drift", "monitoring_subgroups", "monitoring_runs",
          "monitoring_references", "alerts")


def wipe(store) -> None:  # type: ignore[no-untyped-def]
    for table in TABLES:
        store.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names; a throwaway bench demo


def evidently_windows(store, registry, granularity: str) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    """(seconds in Report.run over all windows, windows whose decisions equal ours, windows)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from core.services.drift_report import _column_results

    windows = store.query("SELECT window_start, window_end FROM monitoring_windows WHERE granularity = ? "
                          "ORDER BY 1", [granularity])
    total, equal = 0.0, 0
    for w in windows:
        c = window_comparison(store, registry, OPERATOR, "sepsis-icu", 1, w["window_start"], w["window_end"])
        definition = DataDefinition(numerical_columns=c.numerical, categorical_columns=c.categorical)
        started = time.perf_counter()
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            Dataset.from_pandas(c.current, data_definition=definition),
            Dataset.from_pandas(c.reference, data_definition=definition))
        total += time.perf_counter() - started
        theirs = _column_results(snapshot.dict())[1]
        ours = {r["column_name"] for r in store.query(
            "SELECT column_name FROM monitoring_feature_drift WHERE granularity = ? AND window_start = ? AND drifted",
            [granularity, w["window_start"]])}
        equal += theirs == ours
    return total, equal, len(windows)


def main() -> None:
    warnings.filterwarnings("ignore")
    settings = load_settings()
    store, registry = open_store(settings), open_registry(settings)
    rows: list[dict[str, object]] = []
    for granularity in ("weekly", "daily"):
        text = re.sub(r"window: \w+", f"window: {granularity}", export_yaml(store, OPERATOR, "sepsis-icu-adult"))
        import_use_case(store, OPERATOR, text)
        wipe(store)
        started = time.perf_counter()
        reference_for(settings, store, registry, OPERATOR, "sepsis-icu", 1)
        reference = time.perf_counter() - started
        started = time.perf_counter()
        run = run_monitor(settings, store, registry, OPERATOR)
        first = time.perf_counter() - started
        started = time.perf_counter()
        run_monitor(settings, store, registry, OPERATOR)
        again = time.perf_counter() - started
        ev_seconds, equal, n = evidently_windows(store, registry, granularity)
        rows.append({"windows": f"{granularity} ({len(run.windows)})",
                     "reference, worker (s)": round(reference, 1),
                     "ModelBoard monitor, all windows (s)": round(first, 1),
                     "rerun, nothing new (s)": round(again, 2),
                     "evidently Report.run, same windows (s)": round(ev_seconds, 1),
                     "decisions equal": f"{equal}/{n}",
                     "first alert": min((b.window_start[:10] for b in run.alerts if b.new), default="none")})
    print(pd.DataFrame(rows).to_string(index=False))
    print("ModelBoard's time includes reading each window from DuckDB, drift, score PSI, CBPE, realised metrics "
          "with intervals, subgroups, rules and writes. The reference (the version's logged evaluation set scored "
          "by the worker process, done once per version) is timed apart. evidently: Report.run only, per window. "
          f"Demo shift starts {datetime(2026, 7, 31):%Y-%m-%d} (day 60).")


if __name__ == "__main__":
    main()
