"""The hospital profile end to end: the governance store on PostgreSQL and a real `mlflow server` (PostgreSQL
backend store, artifact proxy) reached over HTTP only.

A data scientist logs and registers a model with the plain MLflow API against the server; ModelBoard's CLI
submits it (the worker loads the model through the server), two clinicians sign with the CLI and the second
signature moves `production` on the server; an alias moved outside ModelBoard with a plain `MlflowClient` is
found by `reconcile` and `verify`; the audit trail verifies with its anchor tags read from the server. Nothing
of the model is ever written under MODELBOARD_HOME: the server keeps every artifact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from core.config import Settings, load_settings
from core.domain.access import command_line_operator
from core.domain.audit_chain import ANCHOR_TAG_PREFIX
from core.services.auth import add_user
from core.services.installation import open_store
from core.services.usecases import import_use_case
from tests.conftest import environment
from tests.hospital import LABEL, MIXED, as_extract, log_ward_pipeline, use_case, ward_cohort
from tests.mlflow_server import MlflowServer

REPO = Path(__file__).resolve().parents[2]
MODEL = "ward-server"
PASSWORD = "a long signing password"
CLINICIANS = ("ng", "okafor")


@dataclass(frozen=True)
class Hospital:
    settings: Settings
    server: MlflowServer
    pipeline: Any
    evaluation: pd.DataFrame
    eval_path: Path
    demo: subprocess.CompletedProcess[str]  # `core.cli demo --database-url … --tracking-uri …` on the empty server
    demo_settings: Settings


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory, postgres: Any) -> Iterator[Hospital]:
    server = MlflowServer(postgres.new_database("mlflow")).start()
    try:
        folder = tmp_path_factory.mktemp("hospital-profile")
        demo_settings = load_settings(env={"MODELBOARD_DATABASE_URL": postgres.new_database(),
                                           "MLFLOW_TRACKING_URI": server.url}, home=folder / "demo-home")
        only_home = {k: v for k, v in environment(demo_settings).items()  # the flags say where, not the environment
                     if k not in ("MODELBOARD_DATABASE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        demo = subprocess.run([sys.executable, "-m", "core.cli", "demo", "--json", "--database-url",
                               str(demo_settings.database_url), "--tracking-uri", server.url], capture_output=True,
                              text=True, cwd=REPO, timeout=900, env=only_home)
        settings = load_settings(env={"MODELBOARD_DATABASE_URL": postgres.new_database(),
                                      "MLFLOW_TRACKING_URI": server.url}, home=folder / "home")
        store = open_store(settings)
        admin = command_line_operator("pytest")
        for username, role in (("ng", "clinician"), ("okafor", "clinician"), ("lee", "data_scientist")):
            add_user(store, admin, username=username, full_name=username.title(), role=role, password=PASSWORD)
        import_use_case(store, admin, use_case("ward-deterioration", [MODEL], extra=(
            "criteria: {min_auroc: 0.6}\npromotion: {signers: {clinician: 2}, require_complete_card: false}\n")))
        train = as_extract(ward_cohort(2_000, seed=1), folder / "train.csv")
        eval_path = folder / "evaluation.csv"
        evaluation = as_extract(ward_cohort(1_500, seed=2), eval_path)
        pipeline = log_ward_pipeline(server.url, None, MODEL, train, max_iter=30)  # the plain MLflow API, over HTTP
        yield Hospital(settings, server, pipeline, evaluation, eval_path, demo, demo_settings)
    finally:
        server.stop()


def cli(h: Hospital, *args: str, stdin: str = "", settings: Settings | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=600, env=environment(settings or h.settings))


def server_client(h: Hospital) -> MlflowClient:
    """What the hospital's ML team (or its scoring system) sees: the server, through MLflow's own client."""
    return MlflowClient(h.server.url, registry_uri=h.server.url)  # not whatever registry the process set last


def test_the_demo_builds_into_postgresql_and_the_server_from_the_command_line_flags(hospital: Hospital) -> None:
    assert hospital.demo.returncode == 0, hospital.demo.stderr
    built = json.loads(hospital.demo.stdout)
    assert built["versions"] == ["sepsis-icu v1", "sepsis-icu v2", "sepsis-icu v3", "readmission-30d v1",
                                 "sepsis-icu-charted v1"]
    store = open_store(hospital.demo_settings)
    assert store.query_one("SELECT count(*) AS n FROM prediction_log") == {"n": built["prediction_rows"]}
    assert server_client(hospital).get_model_version_by_alias("sepsis-icu", "production").version == "1"
    assert not (hospital.demo_settings.home / "governance.duckdb").exists()
    assert not (hospital.demo_settings.home / "mlflow.db").exists()
    verified = cli(hospital, "audit", "verify", "--json", settings=hospital.demo_settings)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stdout + verified.stderr


def test_the_server_keeps_every_artifact_and_nothing_is_written_under_home(hospital: Hospital) -> None:
    version = server_client(hospital).get_model_version(MODEL, "1")
    assert version.source.startswith(("models:/", "mlflow-artifacts:")), version.source
    stored = list((hospital.server.folder / "artifacts").rglob("MLmodel"))
    assert stored, "the model's files are in the server's artifact store"
    assert not hospital.settings.artifact_root.exists()


def test_a_submission_through_the_server_scores_the_models_own_risks(hospital: Hospital) -> None:
    done = cli(hospital, "submit", "--model", MODEL, "--version", "1", "--eval-data", str(hospital.eval_path),
               "--json")
    assert done.returncode in (0, 3), done.stderr
    evaluation_id = json.loads(done.stdout)["evaluation_id"]
    rows = open_store(hospital.settings).query_df(
        "SELECT score FROM evaluation_rows WHERE evaluation_id = ? ORDER BY row_index", [evaluation_id])
    expected = hospital.pipeline.predict_proba(hospital.evaluation[MIXED])[:, 1]
    assert len(rows) == len(hospital.evaluation) and set(hospital.evaluation[LABEL]) == {0, 1}
    np.testing.assert_allclose(rows["score"].to_numpy(float), expected, rtol=0, atol=1e-9)


def test_two_signatures_move_production_on_the_server_and_anchor_the_trail_there(hospital: Hospital) -> None:
    for username in CLINICIANS:
        signed = cli(hospital, "sign", "--model", MODEL, "--version", "1", "--username", username, "--decision",
                     "approve", "--rationale", "Reviewed the card and the subgroup results.", stdin=PASSWORD + "\n")
        assert signed.returncode == 0, signed.stderr
    client = server_client(hospital)
    assert client.get_model_version_by_alias(MODEL, "production").version == "1"
    tags = client.get_registered_model(MODEL).tags
    assert [k for k in tags if k.startswith(ANCHOR_TAG_PREFIX)], tags
    verified = cli(hospital, "audit", "verify", "--json")
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["ok"] and report["anchors"] >= 1, verified.stdout + verified.stderr


@pytest.mark.xfail(strict=False, reason="open bug (issue 15): in a full two-worker run the production alias the "
                   "previous test saw on the server is gone when this test starts; passes when the module runs alone")
def test_an_alias_moved_on_the_server_outside_modelboard_is_a_finding(hospital: Hospital) -> None:
    client = server_client(hospital)
    assert client.get_model_version_by_alias(MODEL, "production").version == "1"
    newer = log_ward_pipeline(hospital.server.url, None, MODEL, hospital.evaluation, max_iter=10)
    assert newer is not None
    client.set_registered_model_alias(MODEL, "production", "2")  # a plain client, no ModelBoard
    reconciled = cli(hospital, "reconcile", "--json")
    assert reconciled.returncode == 1, reconciled.stdout + reconciled.stderr
    problems = [f for f in json.loads(reconciled.stdout)["findings"] if f["problem"]]
    assert any(f["model"] == MODEL and f.get("new_version") == 2 for f in problems), problems
    assert cli(hospital, "verify", "--json").returncode == 1


def test_the_demo_refuses_a_server_that_holds_a_hospitals_models(hospital: Hospital) -> None:
    before = open_store(hospital.settings).query("SELECT username FROM users ORDER BY username")
    refused = cli(hospital, "demo")
    assert refused.returncode != 0 and MODEL in refused.stderr and "will not delete" in refused.stderr
    assert open_store(hospital.settings).query("SELECT username FROM users ORDER BY username") == before
    assert server_client(hospital).get_registered_model(MODEL).name == MODEL
