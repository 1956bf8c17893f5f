"""Bad production files and rows through the real CLI: each refused in one line with nothing written, or its bad rows
quarantined with a reason and counted — never a traceback, never a silently stored row, the audit chain intact.

A small installation of its own (one hospital model, registered at the start of the module), not the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from core.config import Settings, load_settings
from core.domain.access import command_line_operator
from core.domain.clock import utc_now
from core.domain.usecase import parse_use_case
from core.errors import ValidationError
from core.services.installation import open_registry, open_store
from core.services.usecases import import_use_case, parse_yaml
from tests.hospital import MIXED, as_extract, log_run, log_ward_pipeline, use_case, ward_cohort

REPO = Path(__file__).resolve().parents[2]
MODEL = "ward-intake"
RANGES = "plausible_ranges: {heart_rate: [20, 300], lactate: [0, 30], spo2: [30, 100]}\n"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("intake")
    settings = load_settings(env={}, home=folder / "home")
    import_use_case(open_store(settings), command_line_operator("pytest"),
                    use_case("ward-intake", [MODEL], extra=RANGES))
    train = as_extract(ward_cohort(1_500, seed=21), folder / "train.csv")
    log_ward_pipeline(settings.tracking_uri, settings.artifact_root, MODEL, train, max_iter=20)
    return settings


def rows(n: int, prefix: str, seed: int = 1) -> pd.DataFrame:
    """`n` well-formed predictions made just now (after the version was registered)."""
    frame = ward_cohort(n, seed=seed)[["encounter_id", *MIXED, "sex"]]
    frame = frame.assign(encounter_id=[f"{prefix}-{i}" for i in range(n)], predicted_at=str(utc_now()),
                         score=[0.1 + 0.8 * i / max(n, 1) for i in range(n)])
    return frame.assign(decision=frame["score"] >= 0.2).astype(object)


def cli(settings: Settings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core.cli", *args, "--home", str(settings.home)],
                          capture_output=True, text=True, cwd=REPO, timeout=120, env=os.environ | (env or {}))


def ingest(settings: Settings, path: Path, *flags: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return cli(settings, "ingest", str(path), "--model", MODEL, "--version", "1", *flags, env=env)


def logged(settings: Settings) -> int:
    row = open_store(settings).query_one("SELECT count(*) AS n FROM prediction_log")
    return int(row["n"]) if row else 0


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def good_csv(prefix: str, n: int = 3) -> str:
    return rows(n, prefix).to_csv(index=False)


def header() -> str:
    return good_csv("H", 1).splitlines()[0]


# name → (bytes of the file, words the error line must hold); each refused whole with exit 1
REFUSED_FILES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "empty": (lambda: b"", ("empty.csv", "empty")),
    "header-only": (lambda: (header() + "\n").encode(), ("header-only.csv", "no rows")),
    "unterminated-quote": (lambda: (good_csv("Q") + 'Q-9,"unfinished\n').encode(), ("unterminated-quote.csv",)),
    "nul-byte": (lambda: good_csv("NUL").replace("NUL-1", "NUL-\x001", 1).encode(),
                 ("nul-byte.csv", "line 3", "NUL")),
    "wrong-encoding": (lambda: good_csv("ENC").encode("utf-16"), ("wrong-encoding.csv",)),
    "duplicated-columns": (lambda: good_csv("DUPC").replace(",sex,", ",score,", 1).encode(),
                           ("duplicated-columns.csv", "score", "more than once")),
    "missing-columns": (lambda: rows(3, "MISS").drop(columns=["score", "heart_rate"]).to_csv(index=False).encode(),
                        ("missing-columns.csv", "score", "heart_rate", "missing")),
}


@pytest.mark.parametrize("case", list(REFUSED_FILES))
def test_a_malformed_prediction_file_is_refused_in_one_line_with_nothing_written(home: Settings, tmp_path: Path,
                                                                                 case: str) -> None:
    make, words = REFUSED_FILES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(make())
    before = logged(home)
    result = ingest(home, path)
    line = one_clear_line(result)
    assert result.returncode == 1 and all(w in line for w in words), line
    assert logged(home) == before


def test_an_oversize_file_is_refused_before_it_is_read(home: Settings, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(rows(12_000, "BIG").to_csv(index=False), encoding="utf-8")
    assert path.stat().st_size > 1_000_000
    result = ingest(home, path, env={"MODELBOARD_MAX_UPLOAD_MB": "1"})
    assert result.returncode == 1 and "over the 1 MB limit" in one_clear_line(result)


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(home: Settings, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + good_csv("BOM", 5).replace("\n", "\r\n").encode())
    result = ingest(home, path, "--json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout)["added"] == 5


def test_bad_rows_are_quarantined_named_and_counted_and_the_exit_says_so(home: Settings, tmp_path: Path) -> None:
    frame = rows(12, "ROW")
    frame.loc[0, "score"] = "high"
    frame.loc[1, "score"] = 1.5
    frame.loc[2, "decision"] = "perhaps"
    frame.loc[3, "heart_rate"] = "inf"
    frame.loc[4, "creatinine"] = "-inf"
    frame.loc[5, "resp_rate"] = "1e400"  # a CSV reader makes it infinite
    frame.loc[6, "heart_rate"] = 400  # beats/min: beyond the use case's plausible 20–300
    frame.loc[7, "lactate"] = 45.5
    frame.loc[8, "predicted_at"] = "2020-01-01 08:00"  # years before the version was registered
    frame.loc[9, "lactate"] = None  # missing is not out of range: kept, and counted
    frame.to_csv(tmp_path / "rows.csv", index=False)
    before = logged(home)
    result = ingest(home, tmp_path / "rows.csv", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 3 and "9 of 12 rows of rows.csv were quarantined" in one_clear_line(result)
    assert (report["added"], report["quarantined"]) == (3, 9), report
    reasons = report["reasons"]
    assert reasons.pop("score is not a probability between 0 and 1") == 2
    assert reasons.pop("decision is not true/false (1/0)") == 1
    assert {reasons.pop(f"input '{c}' is not a finite number") for c in ("heart_rate", "creatinine")} == {1}
    assert reasons.pop("input 'resp_rate' is not a whole number (the signature declares long)", 0) + reasons.pop(
        "input 'resp_rate' is not a finite number", 0) == 1
    assert reasons.pop("input 'heart_rate' is outside its plausible range 20 to 300 (use case)") == 1
    assert reasons.pop("input 'lactate' is outside its plausible range 0 to 30 (use case)") == 1
    [(before_registration, n)] = reasons.items()
    assert before_registration.startswith("timestamp is before the version was registered") and n == 1
    assert report["missing_inputs"] == {"lactate": 1}
    assert logged(home) == before + 3
    held = {r["row_number"]: r for r in open_store(home).query(
        "SELECT row_number, reason, raw FROM quarantine WHERE file_sha256 = ?", [report["sha256"]])}
    assert held[7]["reason"].endswith("(value 400)") and held[8]["reason"].endswith("(value 45.5)")
    assert json.loads(held[4]["raw"])["heart_rate"] == "inf"


def test_history_from_before_the_registration_is_ingested_when_declared_a_backfill(home: Settings,
                                                                                     tmp_path: Path) -> None:
    frame = rows(4, "OLD").assign(predicted_at="2025-03-01T10:00:00")
    frame.to_csv(tmp_path / "old.csv", index=False)
    refused = json.loads(ingest(home, tmp_path / "old.csv", "--json").stdout)
    assert (refused["added"], refused["quarantined"]) == (0, 4)
    backfill = ingest(home, tmp_path / "old.csv", "--backfill", "--json")
    assert backfill.returncode == 0 and json.loads(backfill.stdout)["added"] == 4
    audited = open_store(home).query_one("SELECT detail FROM audit_events WHERE action = 'predictions_ingested' "
                                         "ORDER BY id DESC LIMIT 1")
    assert audited is not None and json.loads(audited["detail"])["backfill"] is True


def test_bad_label_files_are_refused_or_their_rows_quarantined(home: Settings, tmp_path: Path) -> None:
    rows(3, "LBL").to_csv(tmp_path / "p.csv", index=False)
    assert ingest(home, tmp_path / "p.csv").returncode == 0
    (tmp_path / "header.csv").write_text("encounter_id,outcome\n")
    (tmp_path / "nocol.csv").write_text("encounter_id,result\nLBL-0,1\n")
    for name, words in (("header.csv", "no rows"), ("nocol.csv", "outcome")):
        result = cli(home, "ingest-labels", str(tmp_path / name))
        assert result.returncode == 1 and words in one_clear_line(result)
    pd.DataFrame({"encounter_id": ["LBL-0", "LBL-1", "LBL-2", "NOBODY-1"], "outcome": [1, 2, "maybe", 0]}).to_csv(
        tmp_path / "labels.csv", index=False)
    result = cli(home, "ingest-labels", str(tmp_path / "labels.csv"), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 3 and "3 of 4 rows" in one_clear_line(result)
    assert report["reasons"] == {"outcome is not 0/1, true/false, or the use case's two named classes": 2,
                                 "no prediction with this encounter key": 1}
    assert report["added"] == 1


def test_the_audit_chain_still_verifies_after_every_refusal(home: Settings) -> None:
    result = cli(home, "audit", "verify")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout + result.stderr


def test_plausible_ranges_are_parsed_checked_and_kept_through_a_round_trip() -> None:
    from core.domain.usecase import to_document

    text = use_case("ranges", ["m"], extra=RANGES)
    parsed = parse_yaml(text)
    assert parsed.plausible_ranges == {"heart_rate": (20.0, 300.0), "lactate": (0.0, 30.0), "spo2": (30.0, 100.0)}
    assert parse_use_case(to_document(parsed)).plausible_ranges == parsed.plausible_ranges
    with pytest.raises(ValidationError) as bad:
        parse_yaml(use_case("ranges", ["m"], extra="plausible_ranges: {lactate: [30, 0], sbp: [1, .inf], hr: 5}\n"))
    assert all(f"plausible_ranges.{c} must be [lowest, highest]" in str(bad.value) for c in ("lactate", "sbp", "hr"))


def test_the_demo_registers_its_versions_before_its_production_history(tmp_path: Path) -> None:
    """Uses the demo's own back-dating on a registry of one version (the whole demo is too slow for this)."""
    from core.services.demo import _backdate_registrations

    settings = load_settings(env={}, home=tmp_path / "home")
    log_run(settings.tracking_uri, "tiny", settings.artifact_root, lambda: mlflow.sklearn.log_model(
        HistGradientBoostingClassifier(max_iter=2).fit([[0], [1]] * 5, [0, 1] * 5), name="model",
        serialization_format="cloudpickle", registered_model_name="tiny"))
    from datetime import datetime

    _backdate_registrations(settings, datetime(2026, 5, 18, 9, 0))
    summary = open_registry(settings).get_version("tiny", 1).summary
    assert summary.created_at == datetime(2026, 5, 18, 9, 0)
