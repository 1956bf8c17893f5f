"""Backup and restore drill on a demo of its own, through the real CLI: the restored installation's audit trail
verifies against the signed checkpoints (with the key, which is not in the backup), and bad restores are refused
with nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.config import Settings
from core.services.installation import open_store
from tests.conftest import copy_demo
from tests.core.test_cli import cli


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, demo_settings: Settings) -> Settings:
    return copy_demo(demo_settings, tmp_path_factory.mktemp("backup") / "home")


def run(settings: Settings, *args: str) -> tuple[int, dict[str, object], str]:
    result = cli(settings, *args, "--home", str(settings.home), "--json")
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}, result.stderr


def test_a_backup_restored_after_losing_the_installation_verifies(home: Settings, tmp_path: Path) -> None:
    code, made, err = run(home, "backup", "--out", str(tmp_path / "b1"))
    assert code == 0, err
    assert {"governance.duckdb", "checkpoints.jsonl", "mlflow.db"} <= set(made["files"])  # type: ignore[arg-type]
    assert not any(name.endswith(".key") for name in made["files"])  # type: ignore[union-attr]
    rows = open_store(home).query_one("SELECT count(*) AS n FROM audit_events")
    assert made["audit_rows"] == rows["n"]  # type: ignore[index]  # the backup's own record included
    shutil.rmtree(home.home)  # the disk is lost; the key (kept apart) is not
    home.audit_log_path.unlink()
    code, restored, err = run(home, "restore", "--from", str(tmp_path / "b1"))
    assert code == 0, err
    assert restored["ok"] is True and restored["anchored"] is True and restored["rows"] == rows["n"]  # type: ignore[index]
    code, report, _ = run(home, "audit", "verify")
    assert code == 0 and report["anchored"] is True
    with open_store(home).transaction():  # and ModelBoard writes on after it
        pass


def test_a_backup_inside_the_home_or_into_a_used_folder_is_refused(home: Settings, tmp_path: Path) -> None:
    code, _out, err = run(home, "backup", "--out", str(home.home / "backups"))
    assert code == 1 and "inside MODELBOARD_HOME" in err
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    code, _out, err = run(home, "backup", "--out", str(tmp_path / "used"))
    assert code == 1 and "not an empty folder" in err


def test_restore_refuses_an_occupied_home_a_changed_backup_and_another_path(home: Settings, tmp_path: Path) -> None:
    assert run(home, "backup", "--out", str(tmp_path / "b2"))[0] == 0
    code, _out, err = run(home, "restore", "--from", str(tmp_path / "b2"))
    assert code == 1 and "already exist" in err
    moved = tmp_path / "elsewhere" / "home"
    code, _out, err = run(Settings(**{**home.__dict__, "home": moved}), "restore", "--from", str(tmp_path / "b2"))
    assert code == 1 and "restore it to the same path" in err and not moved.exists()
    log = tmp_path / "b2" / "checkpoints.jsonl"
    log.write_text(log.read_text().replace('"stage":"commit"', '"stage":"intent"', 1))
    shutil.rmtree(home.home)
    home.audit_log_path.unlink()
    code, _out, err = run(home, "restore", "--from", str(tmp_path / "b2"))
    assert code == 1 and "no longer matches its manifest" in err and not home.home.exists()
    assert run(home, "restore", "--from", str(tmp_path / "b1-missing"))[0] == 1
