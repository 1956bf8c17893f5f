"""Production monitoring of a hospital's model with missing values, a text category and a flag.

A fresh installation (not the demo): the hospital's pipeline is logged with plain MLflow, evaluated through
the worker (the sign-off reference), and three weeks of its production predictions are ingested. Rows with
missing or text inputs are stored, not quarantined; each window records every input's missing share (checked
against pandas); drift on the text input equals evidently's report on the same rows; and the week in which
the extract lost its lactate column (an optional input, stored as missing) raises the default "input
missing more often" alert.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.config import Settings, load_settings
from core.domain.access import command_line_operator
from core.services.ingest import ingest_labels, ingest_predictions
from core.services.installation import open_registry, open_store
from core.services.monitoring import MonitorRun, run_monitor, window_comparison
from core.services.submission import SubmissionRequest, submit_version
from core.services.usecases import import_use_case
from tests.core.test_drift import evidently_report
from tests.hospital import (
    LABEL,
    MIXED,
    NAMED_LABEL,
    POSITIVE,
    SOURCES,
    as_extract,
    log_ward_pipeline,
    use_case,
    ward_cohort,
)

OPERATOR = command_line_operator("pytest")
MODEL = "ward-monitored"
FIRST_WEEK = datetime(2026, 10, 5)  # a Monday


def production_week(model: Any, week: int, *, lactate_gone: float, transfers: float) -> pd.DataFrame:
    """One week of ward admissions scored by the model, as the scoring system would log them."""
    frame = ward_cohort(700, seed=100 + week)
    rng = np.random.default_rng(week)
    frame.loc[rng.random(len(frame)) < lactate_gone, "lactate"] = np.nan
    moved = rng.random(len(frame)) < transfers
    frame.loc[moved, "admission_source"] = "transfer"
    frame["encounter_id"] = [f"P{week}-{i:05d}" for i in range(len(frame))]
    frame["predicted_at"] = [FIRST_WEEK + timedelta(days=7 * week, minutes=int(m))
                             for m in rng.integers(0, 7 * 24 * 60 - 1, len(frame))]
    frame["score"] = model.predict_proba(frame[MIXED])[:, 1]
    frame["decision"] = frame["score"] >= 0.2
    return frame


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, MonitorRun, list[pd.DataFrame],
                                                                    list[Any]]:
    folder = tmp_path_factory.mktemp("ward")
    settings = load_settings(env={}, home=folder / "home")
    store, registry = open_store(settings), open_registry(settings)
    import_use_case(store, OPERATOR, use_case("ward-monitoring", [MODEL], label=NAMED_LABEL,
                                              extra=f"positive_class: {POSITIVE}\nmonitoring: {{window: weekly}}\n"))
    train = as_extract(ward_cohort(3_000, seed=11), folder / "train.csv")
    model = log_ward_pipeline(settings.tracking_uri, settings.artifact_root, MODEL, train)
    evaluation = folder / "evaluation.csv"
    as_extract(ward_cohort(2_000, seed=12), evaluation)
    submit_version(settings, store, registry, OPERATOR, SubmissionRequest(MODEL, 1, eval_data=evaluation))
    weeks = [production_week(model, 0, lactate_gone=0.0, transfers=0.0),
             production_week(model, 1, lactate_gone=0.0, transfers=0.3),
             production_week(model, 2, lactate_gone=1.0, transfers=0.0)]
    reports = []
    for i, week in enumerate(weeks):
        path = folder / f"week{i}.csv"
        # week 2's extract lost lactate altogether (an optional input may be left out): stored as missing
        dropped = [LABEL, NAMED_LABEL] + (["lactate"] if i == 2 else [])
        week.drop(columns=dropped).to_csv(path, index=False)
        # October's weeks precede the version registered a moment ago: declared history from before ModelBoard
        reports.append(ingest_predictions(settings, store, registry, OPERATOR, model=MODEL, version=1, path=path,
                                          backfill=True))
    outcomes = folder / "outcomes.csv"  # the outcomes as the EHR codes them: 'deteriorated' or 'stable'
    weeks[0][["encounter_id", NAMED_LABEL]].to_csv(outcomes, index=False)
    reports.append(ingest_labels(settings, store, OPERATOR, path=outcomes))
    run = run_monitor(settings, store, registry, OPERATOR, now=FIRST_WEEK + timedelta(days=28))
    return settings, run, weeks, reports


def test_rows_with_missing_and_text_inputs_are_stored_not_quarantined(monitored: tuple[Any, ...]) -> None:
    settings, _, weeks, reports = monitored
    assert [(r.added, r.quarantined) for r in reports] == [(len(w), 0) for w in weeks] + [(len(weeks[0]), 0)]
    stored = open_store(settings).query_df("SELECT encounter_id, features FROM prediction_log WHERE encounter_id "
                                           "LIKE 'P2-%' ORDER BY encounter_id")
    features = pd.DataFrame([json.loads(f) for f in stored["features"]])
    week = weeks[2].set_index("encounter_id").loc[stored["encounter_id"]]
    assert features["lactate"].isna().sum() == week["lactate"].isna().sum() > 0  # JSON null, not a quarantine
    assert features["admission_source"].tolist() == [None if pd.isna(v) else v for v in week["admission_source"]]
    assert features["on_oxygen"].tolist() == week["on_oxygen"].tolist()  # true/false, not 1.0/0.0


def test_each_window_records_missing_shares_equal_to_pandas(monitored: tuple[Any, ...]) -> None:
    settings, run, weeks, _ = monitored
    assert len(run.windows) == 3 and not run.skipped
    rows = open_store(settings).query_df("SELECT window_start, column_name, missing_share, reference_missing_share "
                                         "FROM monitoring_feature_drift WHERE role = 'input' ORDER BY window_start")
    for i, week in enumerate(weeks):
        mine = rows[rows["window_start"] == FIRST_WEEK + timedelta(days=7 * i)].set_index("column_name")
        for column in MIXED:
            assert mine.loc[column, "missing_share"] == pytest.approx(week[column].isna().mean(), abs=1e-12)
    evaluation = pd.read_csv(Path(settings.home).parent / "evaluation.csv")
    assert rows["reference_missing_share"][rows["column_name"] == "lactate"].iloc[0] == pytest.approx(
        evaluation["lactate"].isna().mean(), abs=1e-12)


def test_drift_on_the_text_input_equals_evidentlys_report(monitored: tuple[Any, ...]) -> None:
    settings, *_ = monitored
    start = FIRST_WEEK + timedelta(days=7)
    comparison = window_comparison(open_store(settings), open_registry(settings), OPERATOR, MODEL, 1, start,
                                   start + timedelta(days=7))
    assert "admission_source" in comparison.categorical and "on_oxygen" in comparison.categorical
    theirs = evidently_report(comparison.reference, comparison.current, comparison.numerical, comparison.categorical)
    stored = open_store(settings).query_df("SELECT column_name, score, drifted FROM monitoring_feature_drift "
                                           "WHERE window_start = ?", [start]).set_index("column_name")
    for column in ("admission_source", "on_oxygen", "lactate"):
        method, score, drifted = theirs.columns[column]
        assert stored.loc[column, "score"] == pytest.approx(score, rel=1e-9), column
        assert bool(stored.loc[column, "drifted"]) == drifted, column
    assert theirs.columns["admission_source"][2]  # three in ten patients now come as transfers: it drifted
    assert set(comparison.current["admission_source"].dropna()) <= set(SOURCES)


def test_the_week_lactate_went_missing_raises_the_default_alert(monitored: tuple[Any, ...]) -> None:
    _, run, weeks, _ = monitored
    alerts = [b for b in run.alerts if b.rule == "input_missing"]
    assert [b.window_start for b in alerts] == [(FIRST_WEEK + timedelta(days=14)).isoformat()]
    assert alerts[0].message.startswith(f"lactate is missing for {weeks[2]['lactate'].isna().mean():.0%} of this "
                                        "window's patients")
    assert alerts[0].severity == "warning" and alerts[0].new


def test_named_outcomes_are_read_with_the_use_cases_positive_class(monitored: tuple[Any, ...]) -> None:
    """The evaluation's label and the outcomes file say 'deteriorated'/'stable'; the model was fitted on 0/1."""
    settings, run, weeks, _ = monitored
    stored = open_store(settings).query_df("SELECT encounter_id, outcome FROM outcome_labels ORDER BY encounter_id")
    expected = weeks[0].set_index("encounter_id").loc[stored["encounter_id"], LABEL]
    assert stored["outcome"].tolist() == expected.tolist()
    first = next(w for w in run.windows if w.start == FIRST_WEEK)
    assert first.labelled == len(weeks[0])
