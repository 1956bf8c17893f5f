"""Malformed evaluation files through `python -m core.cli submit`: one clear line, and nothing written anywhere.

The cases are in tests/bad_files.py. Every one runs through the CLI's own entry point (`core.cli.main`, which
parses the arguments and turns errors into the line on stderr and the exit code) in this process; a few also run
as real processes, to show what a terminal gets. Accepted variants of the clean file (byte-order mark, CRLF) must
be the very same data: the submission reuses the clean file's evaluation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.cli import main
from core.domain.access import command_line_operator
from core.services.audit_verification import verify_chain
from core.services.evaluation_data import EvaluationData, check_evaluation_data, read_table
from core.services.installation import open_registry, open_store
from core.services.submission import StoredEvaluation
from core.services.usecases import use_case_for_model
from tests.bad_files import ACCEPTED, CASES, MODEL, REFUSED, Case, Installation, install, submit_clean, write, written

REPO = Path(__file__).resolve().parents[2]
BY_NAME = {c.name: c for c in CASES}


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    return install(tmp_path_factory.mktemp("bad-files"))


@pytest.fixture(scope="module")
def clean_evaluation(installation: Installation, tmp_path_factory: pytest.TempPathFactory) -> StoredEvaluation:
    return submit_clean(installation, tmp_path_factory.mktemp("clean"))


def submit_args(installation: Installation, path: Path, *extra: str) -> list[str]:
    return ["submit", "--model", MODEL, "--version", "1", "--eval-data", str(path),
            "--home", str(installation.settings.home), *extra]


def checked(installation: Installation, path: Path) -> EvaluationData:
    """What the submission service checks, done directly (the use case's label and sensitive attributes)."""
    settings = installation.settings
    use_case = use_case_for_model(open_store(settings), command_line_operator("pytest"), MODEL)
    return check_evaluation_data(read_table(path, max_bytes=settings.max_upload_mb * 1_000_000),
                                 inputs=open_registry(settings).model_inputs(MODEL, 1), label=use_case.label,
                                 sensitive=use_case.sensitive_attributes, deidentified=False,
                                 source=f"file {path.name}")


def assert_one_clear_line(case: Case, code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err
    assert code == 1, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and case.file_name in lines[0], lines[0]
    for fragment in case.expect:
        assert fragment in lines[0], lines[0]
    assert not out.strip()


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_refused_with_one_line_naming_the_file_and_nothing_written(
        installation: Installation, case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    path = write(case, installation.clean, tmp_path)
    before = written(installation.settings)
    code = main(submit_args(installation, path))
    out, err = capsys.readouterr()
    assert_one_clear_line(case, code, out, err)
    assert written(installation.settings) == before
    assert verify_chain(open_store(installation.settings)).ok


@pytest.mark.parametrize("name", ["header-only", "nul-byte", "oversize"])
def test_a_terminal_gets_the_same_single_line(installation: Installation, name: str, tmp_path: Path) -> None:
    """As a person runs it: a new process (the header-only file once ended in a traceback; a NUL byte once made
    a group of its own)."""
    case = BY_NAME[name]
    path = write(case, installation.clean, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELBOARD_"))}
    env |= {"MODELBOARD_HOME": str(installation.settings.home), "MLFLOW_DISABLE_TELEMETRY": "true", **case.env}
    before = written(installation.settings)
    result = subprocess.run([sys.executable, "-m", "core.cli", *submit_args(installation, path)], capture_output=True,
                            text=True, cwd=REPO, env=env, timeout=300)
    assert_one_clear_line(case, result.returncode, result.stdout, result.stderr)
    assert written(installation.settings) == before


@pytest.mark.parametrize("case", [c for c in ACCEPTED if c.same_data], ids=lambda c: c.name)
def test_bom_and_crlf_are_the_clean_files_data_and_evaluation(
        installation: Installation, clean_evaluation: StoredEvaluation, case: Case, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    clean_path = tmp_path / "clean.csv"
    clean_path.write_bytes(installation.clean)
    path = write(case, installation.clean, tmp_path)
    clean, variant = checked(installation, clean_path), checked(installation, path)
    assert variant.digest == clean.digest
    pd.testing.assert_frame_equal(variant.frame, clean.frame)
    before = written(installation.settings)
    code = main(submit_args(installation, path, "--json"))
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["evaluation_id"] == clean_evaluation.id and summary["reused"] is True
    assert summary["overall"] == clean_evaluation.result["overall"]
    assert written(installation.settings)["evaluations"] == before["evaluations"]


def test_extra_columns_are_accepted_and_the_model_gets_the_same_inputs(installation: Installation,
                                                                       tmp_path: Path) -> None:
    clean_path = tmp_path / "clean.csv"
    clean_path.write_bytes(installation.clean)
    clean = checked(installation, clean_path)
    extra = checked(installation, write(BY_NAME["extra-columns"], installation.clean, tmp_path))
    assert set(extra.frame.columns) - set(clean.frame.columns) == {"ward", "news2"}
    pd.testing.assert_frame_equal(extra.frame[clean.frame.columns], clean.frame)


def test_the_audit_trail_still_verifies_from_the_command_line(installation: Installation) -> None:
    """After every refusal above (and the accepted submissions), `audit verify` as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELBOARD_"))}
    env |= {"MODELBOARD_HOME": str(installation.settings.home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    result = subprocess.run([sys.executable, "-m", "core.cli", "audit", "verify"], capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
