"""python -m core.cli as a person or a cron job runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Settings, as_environment

REPO = Path(__file__).resolve().parents[2]


def cli(home: Path | Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, on a folder (an embedded installation) or on settings (either store engine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELBOARD_"))}
    env |= ({"MODELBOARD_HOME": str(home)} if isinstance(home, Path) else as_environment(home))
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([sys.executable, "-m", "core.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_users_add_reads_password_from_stdin(tmp_path: Path) -> None:
    added = cli(tmp_path, "users", "add", "--username", "ng", "--full-name", "Dr. Alice Ng", "--role", "clinician",
                "--json", stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["role"] == "clinician"
    listed = cli(tmp_path, "users", "list", "--json")
    assert [u["username"] for u in json.loads(listed.stdout)] == ["ng"]


@pytest.mark.parametrize("args,stdin,code,fragment", [
    (["users", "add", "--username", "x1", "--full-name", "X", "--role", "surgeon"], "p" * 20, 2, "invalid choice"),
    (["users", "add", "--username", "x1", "--role", "clinician"], "p" * 20, 2, "needs --full-name"),
    (["users", "add", "--username", "x1", "--full-name", "X", "--role", "auditor"], "", 1, "no password"),
    (["users", "add", "--username", "x1", "--full-name", "X", "--role", "auditor"], "short\n", 1, "at least 12"),
    (["users", "unlock"], "", 2, "needs a USERNAME"),
    (["users", "unlock", "ghost"], "", 1, "no account named 'ghost'"),
    (["demo", "--seed", "-3"], "", 1, "--seed must be zero or positive"),
    (["nonsense"], "", 2, "invalid choice"),
])
def test_bad_input_exits_non_zero_with_one_line(tmp_path: Path, args: list[str], stdin: str, code: int,
                                                fragment: str) -> None:
    result = cli(tmp_path, *args, stdin=stdin)
    assert result.returncode == code
    assert fragment in one_line_error(result)


def test_demo_refuses_to_wipe_a_real_store(tmp_path: Path) -> None:
    assert cli(tmp_path, "users", "add", "--username", "ng", "--full-name", "Dr. Ng", "--role", "clinician",
               stdin="a long enough password\n").returncode == 0
    result = cli(tmp_path, "demo")
    assert result.returncode == 1
    assert "will not overwrite it" in one_line_error(result)
    assert (tmp_path / "governance.duckdb").exists()


def test_corrupt_store_is_reported_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "governance.duckdb").write_bytes(b"garbage" * 1000)
    result = cli(tmp_path, "users", "list")
    assert result.returncode == 1
    assert "cannot be opened" in one_line_error(result)
    assert (tmp_path / "governance.duckdb").read_bytes() == b"garbage" * 1000
