"""Ingesting production predictions and delayed outcomes: idempotent, quarantined with reasons, all or nothing.

Runs the real CLI against a demo of its own (the session demo's production log is what other tests read)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import Settings
from core.services.installation import open_store
from tests.conftest import demo_copy, environment

REPO = Path(__file__).resolve().parents[2]
MODEL = "sepsis-icu"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings, demo_backend: str,
         request: pytest.FixtureRequest) -> Settings:
    return demo_copy(tmp_path_factory, reviewed_demo, "ingest", demo_backend, request)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core.cli", *args, "--home", str(settings.home), "--json"],
                          capture_output=True, text=True, cwd=REPO, timeout=120, env=environment(settings))


def predictions(n: int, seed: int, prefix: str) -> pd.DataFrame:
    from data.cohort import FEATURES, generate_icu_cohort

    cohort = generate_icu_cohort(n, seed=seed, start=date(2026, 9, 1), days=5)
    rng = np.random.default_rng(seed)
    frame = cohort[["encounter_id", *FEATURES, "sex", "race_ethnicity"]].copy()
    frame["encounter_id"] = prefix + frame["encounter_id"]
    frame["predicted_at"] = cohort["admitted_at"].astype(str)
    frame["score"] = rng.uniform(0, 1, n).round(4)
    frame["decision"] = frame["score"] >= 0.06
    return frame


def count(settings: Settings, sql: str, params: list[object] | None = None) -> int:
    row = open_store(settings).query_one(sql, params or [])
    return int(next(iter(row.values()))) if row else 0


def test_reingesting_the_same_file_adds_nothing(home: Settings, tmp_path: Path) -> None:
    path = tmp_path / "day1.parquet"
    predictions(200, 1, "IDEM-").to_parquet(path)
    before = count(home, "SELECT count(*) FROM prediction_log")
    first = cli(home, "ingest", str(path), "--model", MODEL, "--version", "1")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 200
    again = json.loads(cli(home, "ingest", str(path), "--model", MODEL, "--version", "1").stdout)
    assert (again["added"], again["already_present"], again["quarantined"]) == (0, 200, 0)
    assert count(home, "SELECT count(*) FROM prediction_log") == before + 200
    stored = open_store(home).query_one("SELECT features, attributes FROM prediction_log WHERE encounter_id = ?",
                                        ["IDEM-ENC-000001"])
    assert stored is not None and set(json.loads(stored["attributes"])) == {"sex", "race_ethnicity"}


def test_bad_rows_are_quarantined_with_their_reason_and_counted(home: Settings, tmp_path: Path) -> None:
    frame = predictions(30, 2, "BAD-")
    frame[["score", "decision"]] = frame[["score", "decision"]].astype(object)
    frame.loc[0, "score"] = 1.7
    frame.loc[1, "lactate"] = np.nan
    frame.loc[2, "predicted_at"] = "yesterday-ish"
    frame.loc[3, "decision"] = "maybe"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    report = json.loads(cli(home, "ingest", str(path), "--model", MODEL, "--version", "1").stdout)
    assert (report["rows"], report["quarantined"], report["added"]) == (30, 4, 26)
    assert report["reasons"] == {"score is not a probability between 0 and 1": 1,
                                 "input 'lactate' is empty, but the model's signature requires it": 1,
                                 "timestamp is not a date and time": 1, "decision is not true/false (1/0)": 1}
    held = open_store(home).query("SELECT row_number, reason FROM quarantine WHERE kind = 'predictions' "
                                  "AND file_sha256 = ? ORDER BY row_number", [report["sha256"]])
    assert [r["row_number"] for r in held] == [1, 2, 3, 4]
    assert count(home, "SELECT count(*) FROM prediction_log WHERE encounter_id LIKE 'BAD-%'") == 26


def test_duplicates_within_a_file_are_quarantined(home: Settings, tmp_path: Path) -> None:
    frame = predictions(10, 3, "DUP-")
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    path = tmp_path / "dup.csv"
    frame.to_csv(path, index=False)
    report = json.loads(cli(home, "ingest", str(path), "--model", MODEL, "--version", "1").stdout)
    assert report["reasons"] == {"encounter appears more than once in this file": 1}
    assert report["added"] == 10


def test_a_file_missing_an_input_or_holding_identifiers_is_refused_whole(home: Settings, tmp_path: Path) -> None:
    before = count(home, "SELECT count(*) FROM prediction_log")
    missing = predictions(5, 4, "MISS-").drop(columns=["spo2"])
    missing.to_csv(tmp_path / "missing.csv", index=False)
    refused = cli(home, "ingest", str(tmp_path / "missing.csv"), "--model", MODEL, "--version", "1")
    assert refused.returncode == 1 and "spo2" in refused.stderr and "nothing was ingested" in refused.stderr
    named = predictions(5, 5, "MRN-").assign(mrn=[f"MRN{1000 + i}" for i in range(5)])
    named.to_csv(tmp_path / "named.csv", index=False)
    refused = cli(home, "ingest", str(tmp_path / "named.csv"), "--model", MODEL, "--version", "1")
    assert refused.returncode == 1 and "medical record number" in refused.stderr
    unknown = cli(home, "ingest", str(tmp_path / "missing.csv"), "--model", MODEL, "--version", "99")
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr
    assert count(home, "SELECT count(*) FROM prediction_log") == before


def test_delayed_labels_fill_in_and_conflicts_are_quarantined(home: Settings, tmp_path: Path) -> None:
    frame = predictions(40, 6, "LAB-")
    frame.to_parquet(tmp_path / "p.parquet")
    assert cli(home, "ingest", str(tmp_path / "p.parquet"), "--model", MODEL, "--version", "1").returncode == 0
    labels = pd.DataFrame({"encounter_id": frame["encounter_id"][:20], "outcome": [0, 1] * 10})
    labels.to_csv(tmp_path / "l.csv", index=False)
    first = json.loads(cli(home, "ingest-labels", str(tmp_path / "l.csv")).stdout)
    assert (first["added"], first["quarantined"]) == (20, 0)
    again = json.loads(cli(home, "ingest-labels", str(tmp_path / "l.csv")).stdout)
    assert (again["added"], again["already_present"]) == (0, 20)
    later = pd.DataFrame({"encounter_id": [*frame["encounter_id"][18:25], "NOPE-1"],
                          "outcome": [1, 1, 0, 0, 0, 0, 2, 0]})
    later.to_csv(tmp_path / "later.csv", index=False)
    report = json.loads(cli(home, "ingest-labels", str(tmp_path / "later.csv")).stdout)
    # rows 18, 19 known (18 had 0 → conflict; 19 had 1 → already); 20–23 new; 24 outcome 2; NOPE-1 unknown
    assert report["reasons"] == {"outcome differs from the one already recorded": 1,
                                 "outcome is not 0/1, true/false, or the use case's two named classes": 1,
                                 "no prediction with this encounter key": 1}
    assert (report["added"], report["already_present"]) == (4, 1)
    assert count(home, "SELECT count(*) FROM outcome_labels WHERE encounter_id LIKE 'LAB-%'") == 24
    audited = open_store(home).query("SELECT action FROM audit_events WHERE action LIKE '%_ingested'")
    assert {"predictions_ingested", "labels_ingested"} <= {r["action"] for r in audited}


def test_a_corrected_score_for_a_stored_encounter_is_quarantined_with_both_values(home: Settings,
                                                                                  tmp_path: Path) -> None:
    frame = predictions(50, 7, "FIX-")
    frame.to_parquet(tmp_path / "first.parquet")
    assert cli(home, "ingest", str(tmp_path / "first.parquet"), "--model", MODEL, "--version", "1").returncode == 0
    corrected = frame.copy()
    corrected.loc[[3, 4, 5], "score"] = [0.99, 0.98, 0.97]
    corrected.to_parquet(tmp_path / "corrected.parquet")
    result = cli(home, "ingest", str(tmp_path / "corrected.parquet"), "--model", MODEL, "--version", "1")
    report = json.loads(result.stdout)
    assert (report["added"], report["already_present"], report["quarantined"]) == (0, 47, 3), report
    [reason] = report["reasons"]
    assert reason.startswith("conflicts with the stored row")
    quarantined = open_store(home).query("SELECT row_number, raw FROM quarantine WHERE reason = ? AND raw LIKE "
                                         "'%FIX-%' ORDER BY row_number", [reason])
    assert [q["row_number"] for q in quarantined] == [4, 5, 6]
    raw = [json.loads(q["raw"]) for q in quarantined]
    assert [(r["score"], r["stored"]["score"]) for r in raw] == list(zip([0.99, 0.98, 0.97],
                                                                          frame.loc[[3, 4, 5], "score"], strict=True))
    kept = open_store(home).query("SELECT score FROM prediction_log WHERE encounter_id IN (?, ?, ?) ORDER BY 1",
                                  list(frame.loc[[3, 4, 5], "encounter_id"]))
    assert [k["score"] for k in kept] == sorted(frame.loc[[3, 4, 5], "score"])  # the stored values stand
    plain = subprocess.run([sys.executable, "-m", "core.cli", "ingest", str(tmp_path / "corrected.parquet"),
                            "--model", MODEL, "--version", "1", "--home", str(home.home)],
                           capture_output=True, text=True, cwd=REPO, timeout=120, env=environment(home))
    assert "3 conflicts with the stored row" in plain.stdout, plain.stdout


def test_the_same_encounters_scored_by_another_version_are_kept_for_each(home: Settings, tmp_path: Path) -> None:
    frame = predictions(30, 8, "BOTH-")
    frame.to_parquet(tmp_path / "both.parquet")
    for version in ("1", "2"):
        report = json.loads(cli(home, "ingest", str(tmp_path / "both.parquet"), "--model", MODEL, "--version",
                                version).stdout)
        assert (report["added"], report["already_present"], report["quarantined"]) == (30, 0, 0), report
    assert count(home, "SELECT count(*) FROM prediction_log WHERE encounter_id LIKE 'BOTH-%'") == 60
    labels = pd.DataFrame({"encounter_id": frame["encounter_id"], "outcome": [0, 1] * 15})
    labels.to_csv(tmp_path / "both-labels.csv", index=False)
    report = json.loads(cli(home, "ingest-labels", str(tmp_path / "both-labels.csv")).stdout)
    assert (report["added"], report["quarantined"]) == (30, 0), report  # one outcome per patient and model
    assert count(home, "SELECT count(*) FROM outcome_labels WHERE encounter_id LIKE 'BOTH-%'") == 30


def test_a_timestamp_in_the_future_is_quarantined_beyond_the_clock_skew(home: Settings, tmp_path: Path) -> None:
    from core.domain.clock import utc_now

    frame = predictions(10, 9, "SOON-")
    now = utc_now()
    frame.loc[0, "predicted_at"] = str(now + pd.Timedelta(days=5 * 365))
    frame.loc[1, "predicted_at"] = str(now + pd.Timedelta(hours=2))
    frame.loc[2, "predicted_at"] = str(now + pd.Timedelta(minutes=2))  # a scoring clock slightly ahead: accepted
    frame.to_parquet(tmp_path / "soon.parquet")
    report = json.loads(cli(home, "ingest", str(tmp_path / "soon.parquet"), "--model", MODEL, "--version",
                            "1").stdout)
    assert (report["added"], report["quarantined"]) == (8, 2), report
    assert report["reasons"] == {"timestamp is in the future (more than 5 minutes after ingest)": 2}


def test_a_prediction_file_without_the_sensitive_attribute_columns_is_ingested(home: Settings,
                                                                               tmp_path: Path) -> None:
    frame = predictions(12, 10, "NOATTR-").drop(columns=["sex", "race_ethnicity"])
    frame.to_csv(tmp_path / "no-attributes.csv", index=False)
    result = cli(home, "ingest", str(tmp_path / "no-attributes.csv"), "--model", MODEL, "--version", "1")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (json.loads(result.stdout)["added"]) == 12
    assert count(home, "SELECT count(*) FROM prediction_log WHERE encounter_id LIKE 'NOATTR-%' "
                       "AND attributes IS NULL") == 12


def test_monitoring_a_window_whose_files_lacked_some_attributes_lists_them_untested(home: Settings,
                                                                                   tmp_path: Path) -> None:
    """A file may leave out sensitive-attribute columns (the test above); the window's drift then cannot test
    the patient mix on them, and says so, instead of stopping `monitor` for every model after this one."""
    frame = predictions(300, 11, "PARTIAL-")
    assert {"sex", "race_ethnicity"} <= set(frame.columns) and "payer" not in frame.columns
    path = tmp_path / "partial.parquet"
    frame.to_parquet(path)
    assert cli(home, "ingest", str(path), "--model", MODEL, "--version", "1").returncode == 0
    result = cli(home, "monitor")
    assert result.returncode == 0, result.stderr
    windows = json.loads(result.stdout)["windows"]
    assert any(w["model"] == MODEL and w["start"][:10] <= "2026-09-01" < w["end"][:10] for w in windows), windows
    rows = open_store(home).query(
        "SELECT column_name, stattest FROM monitoring_feature_drift WHERE model_name = ? AND model_version = 1 "
        "AND window_start = (SELECT max(window_start) FROM monitoring_windows WHERE model_name = ? "
        "AND model_version = 1 AND window_start <= ?)", [MODEL, MODEL, date(2026, 9, 2)])
    untested = {r["column_name"] for r in rows if r["stattest"] == "none"}
    tested = {r["column_name"] for r in rows if r["stattest"] != "none"}
    assert "payer" in untested and "sex" in tested, rows
