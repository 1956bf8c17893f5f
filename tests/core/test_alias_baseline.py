"""Aliases are recorded when ModelBoard first connects to a model, so a move made in MLflow right after the demo
is built is out of band on the very first check; and a production version no sign-off approved stays a finding
on every check (`verify`, `reconcile` exit 1), never a silent adoption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from core.config import Settings
from core.services.installation import open_store
from tests.conftest import copy_demo
from tests.core.test_cli import cli

MODEL = "sepsis-icu"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, demo_settings: Settings) -> Settings:
    """A freshly built demo nobody has looked at yet (no page load, no reconcile)."""
    return copy_demo(demo_settings, tmp_path_factory.mktemp("aliases") / "home")


def run(settings: Settings, command: str) -> tuple[int, list[dict[str, object]]]:
    result = cli(Path(settings.home), command, "--home", str(settings.home), "--json")
    return result.returncode, json.loads(result.stdout)["findings"]


def test_the_demo_build_recorded_every_models_aliases(fresh: Settings) -> None:
    store = open_store(fresh)
    recorded = store.query("SELECT DISTINCT model_name FROM alias_history WHERE kind = 'adopted'")
    client = MlflowClient(fresh.tracking_uri, registry_uri=fresh.registry_uri)
    assert {r["model_name"] for r in recorded} == {m.name for m in client.search_registered_models()}


def test_a_production_version_without_sign_off_is_a_finding_on_every_check(fresh: Settings) -> None:
    for command in ("verify", "verify"):
        code, findings = run(fresh, command)
        unsigned = [f for f in findings if f["kind"] == "production_without_signoff"]
        # the demo's two models in clinical use were there before ModelBoard: neither was ever signed off
        assert code == 1 and sorted((f["model"], f["new_version"]) for f in unsigned) == [
            ("readmission-30d", 1), (MODEL, 1)], findings
        assert all("no ModelBoard sign-off approved it" in str(f["message"]) for f in unsigned)
        assert [f["kind"] for f in findings if f["problem"] and f not in unsigned] == [], findings


def test_a_move_in_mlflow_right_after_the_build_is_out_of_band_not_adopted(fresh: Settings) -> None:
    client = MlflowClient(fresh.tracking_uri, registry_uri=fresh.registry_uri)
    client.set_registered_model_alias(MODEL, "production", "2")
    try:
        code, findings = run(fresh, "reconcile")
        moved = [f for f in findings if f["kind"] == "alias_moved_out_of_band" and f["model"] == MODEL]
        assert code == 1 and [(f["old_version"], f["new_version"]) for f in moved] == [(1, 2)], findings
        assert not [f for f in findings if f["kind"] == "alias_adopted"], findings
        history = open_store(fresh).query("SELECT kind, version FROM alias_history WHERE model_name = ? AND "
                                          "alias = 'production' ORDER BY id", [MODEL])
        assert [(h["kind"], h["version"]) for h in history] == [("adopted", 1), ("out_of_band", 2)]
    finally:
        client.set_registered_model_alias(MODEL, "production", "1")
    code, findings = run(fresh, "reconcile")  # put back: recorded as restored, only the unsigned finding stays
    assert {f["kind"] for f in findings if f["problem"]} == {"production_without_signoff"}, findings
