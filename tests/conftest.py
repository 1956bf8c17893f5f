"""Shared fixtures: real DuckDB files, real PostgreSQL databases and MLflow sqlite stores in temporary folders.

The store and service tests run on both engines of the governance store (issue 15): the `settings` fixture and
the demo copies of the modules that sign, promote, ingest and monitor are parametrised over `BACKENDS`, the
PostgreSQL side on a real server that each test process starts for itself (`tests/postgres_server.py`).
`MODELBOARD_TEST_BACKENDS=duckdb` narrows a local run to the embedded engine."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.adapters.store import Store
from core.config import PICKLE_GUARD, Settings, as_environment, load_settings
from core.domain.access import User, command_line_operator
from core.services.installation import open_store

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
REPO = Path(__file__).resolve().parent.parent
TEST_OUTPUT = REPO / "test-output"
BACKENDS = [b for b in os.environ.get("MODELBOARD_TEST_BACKENDS", "duckdb,postgresql").split(",") if b]
EMBEDDED_ONLY = "embedded_only"  # marker: the test is about the DuckDB file itself (its bytes, locks, copies)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With pytest-xdist (`make test` runs two workers), keep what shares an expensive fixture on one worker, so it
    is built once: the browser tests (their demo and server), the modules on the session's demo (its build and
    its evaluations), and otherwise each module (its own fixtures). The reviewed demo is shared between workers
    on disk (`reviewed_demo`), so the modules that copy it are spread like any other."""
    fixtures: dict[str, set[str]] = {}
    for item in items:
        fixtures.setdefault(item.nodeid.split("::")[0], set()).update(getattr(item, "fixturenames", ()))
    for item in items:
        module = item.nodeid.split("::")[0]
        used = fixtures[module]
        group = "browser" if module.startswith("tests/e2e/") else "session-demo" if "demo_settings" in used else module
        item.add_marker(pytest.mark.xdist_group(name=group))
    # The browser group is the longest (its own demo, a server, real submissions): started first, it runs beside
    # the other modules instead of after them.
    items.sort(key=lambda item: not item.nodeid.startswith("tests/e2e/"))


@pytest.fixture(autouse=True)
def _pickle_guard_as_before() -> object:
    """Page tests run app/main.py in this process, which sets MLflow's pickle guard for the server process; tests
    that load a model in-process (what the worker does) must not inherit it from the test before them."""
    before = os.environ.get(PICKLE_GUARD)
    yield
    if before is None:
        os.environ.pop(PICKLE_GUARD, None)
    else:
        os.environ[PICKLE_GUARD] = before


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL server for this test process (each xdist worker starts its own, in about 2 s)."""
    from tests.postgres_server import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


def on_backend(settings: Settings, backend: str, request: pytest.FixtureRequest) -> Settings:
    """`settings` with its governance store on `backend`: a new, empty PostgreSQL database, or the DuckDB file."""
    if backend == "duckdb":
        return settings
    if request.node.get_closest_marker(EMBEDDED_ONLY):
        pytest.skip("about the embedded DuckDB file itself")
    from dataclasses import replace

    return replace(settings, database_url=request.getfixturevalue("postgres").new_database())


@pytest.fixture(params=BACKENDS)
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for an empty installation in tmp_path, ignoring the caller's environment, on each store engine."""
    return on_backend(load_settings(env={}, home=tmp_path / "home"), request.param, request)


def point_app_at(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the app (which reads the environment) at these settings, on their store engine."""
    from core.config import SETTINGS_VARIABLES

    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in as_environment(settings).items():
        monkeypatch.setenv(name, value)


def settings_token(settings: Settings) -> str:
    """Settings as one string a child process can be handed (an argument), on either store engine."""
    import json

    return json.dumps(as_environment(settings))


def from_token(token: str) -> Settings:
    """The settings `settings_token` gave, in the child."""
    import json

    return load_settings(env=json.loads(token))


def environment(settings: Settings) -> dict[str, str]:
    """This process's environment with these settings in place of any MODELBOARD_ or MLFLOW_ ones: what a child
    process (a CLI command, a script) needs to open the same installation on the same store engine."""
    from core.config import SETTINGS_VARIABLES

    inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES and not k.startswith("MLFLOW_")}
    return inherited | as_environment(settings) | {"MLFLOW_DISABLE_TELEMETRY": "true"}


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings)


@pytest.fixture
def operator() -> User:
    return command_line_operator("pytest")


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One embedded demo, built once per test session with the real builder."""
    from core.services.demo import build_demo

    settings = load_settings(env={}, home=tmp_path_factory.mktemp("demo") / "home")
    build_demo(settings, command_line_operator("pytest"), seed=7)
    return settings


@pytest.fixture
def demo_env(demo_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the app (which reads the environment) at the session's demo."""
    monkeypatch.setenv("MODELBOARD_HOME", str(demo_settings.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return demo_settings


@pytest.fixture(scope="session")
def reviewed_demo(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Settings:
    """A demo as the builder leaves it without its monitoring run, with sepsis-icu v2 evaluated by the real worker:
    the starting point of modules that sign, promote, ingest and monitor. Built once per test run and shared by
    the xdist workers (the first to need it builds it, under a file lock, so the modules that use it can spread
    over both workers); each such module works on its own copy (`copy_demo`), never on this one."""
    from core.services.demo import build_demo
    from core.services.installation import open_registry
    from core.services.submission import SubmissionRequest, submit_version

    run_folder = tmp_path_factory.getbasetemp()
    shared = (run_folder.parent if worker_id != "master" else run_folder) / "reviewed-demo"  # this run's, not older
    shared.mkdir(exist_ok=True)
    settings = load_settings(env={}, home=shared / "home")
    with _exclusive(shared / "copy.lock"):
        if not (shared / "built").exists():
            operator = command_line_operator("pytest")
            build_demo(settings, operator, seed=7, monitor=False)
            submit_version(settings, open_store(settings), open_registry(settings), operator,
                           SubmissionRequest("sepsis-icu", 2))
            open_store(settings).execute("CHECKPOINT")
            (shared / "built").touch()
    return settings


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One process at a time (of every xdist worker): building the shared demo, or copying it."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Where MLflow 3.17's sqlite store and the governance store write absolute paths of MODELBOARD_HOME.
HOME_PATH_COLUMNS = {"experiments": "artifact_location", "runs": "artifact_uri", "logged_models": "artifact_location",
                     "model_versions": "storage_location", "datasets": "dataset_source"}


def copy_demo(source: Settings, home: Path, *, database_url: str | None = None) -> Settings:
    """`source`'s demo in another folder, as if it had been built there: the files copied, and the absolute paths
    MLflow and the governance store recorded moved along. Fails if the old folder is still named anywhere in
    either store afterwards (a new MLflow column with a path must be added to HOME_PATH_COLUMNS). With a
    `database_url`, the governance store is then moved into that (empty) PostgreSQL database with the same tool
    a pilot uses to move (`core/adapters/store_copy.py`), and the DuckDB file is removed."""
    import shutil
    import sqlite3

    old, new = str(source.home), str(home)
    copied = load_settings(env={}, home=home)
    with _exclusive(source.home.parent / "copy.lock"):  # the source may be shared with another xdist worker
        open_store(source).execute("CHECKPOINT")  # everything in the DuckDB file itself, not in its WAL
        shutil.copytree(source.home, home)
        shutil.copytree(source.audit_log_path.parent, copied.audit_log_path.parent)  # checkpoints vouch for the copy
        shutil.copytree(source.audit_key_path.parent, copied.audit_key_path.parent)
    pattern = f"%{old}%"
    with sqlite3.connect(home / "mlflow.db") as db:
        for table, column in HOME_PATH_COLUMNS.items():
            db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", [old, new])  # noqa: S608
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        named = [(t, r[1]) for t in tables for r in db.execute(f"PRAGMA table_info('{t}')")]
        left = [f"{t}.{c}" for t, c in named
                if db.execute(f'SELECT count(*) FROM "{t}" WHERE CAST("{c}" AS TEXT) LIKE ?',  # noqa: S608
                              [pattern]).fetchone()[0]]
    settings = load_settings(env={}, home=home)
    store = open_store(settings)
    store.execute("UPDATE monitoring_references SET path = replace(path, ?, ?)", [old, new])
    for c in store.query("SELECT table_name AS t, column_name AS c FROM information_schema.columns"):
        found = store.query_one(f'SELECT count(*) AS n FROM "{c["t"]}" WHERE CAST("{c["c"]}" AS VARCHAR) LIKE ?',  # noqa: S608
                                [pattern])
        if found != {"n": 0}:
            left.append(f"{c['t']}.{c['c']}")
    assert not left, f"the copy still names {old} in {left}"
    if database_url is None:
        return settings
    from dataclasses import replace

    from core.adapters.postgres import PostgresStore
    from core.adapters.store_copy import copy_store

    target = PostgresStore(database_url)
    target.migrate()
    copy_store(store, target)
    for leftover in (settings.store_path, settings.store_path.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    return replace(settings, database_url=database_url)


@pytest.fixture(scope="module", params=BACKENDS)
def demo_backend(request: pytest.FixtureRequest) -> str:
    """The store engine of a module's demo copy (module-scoped: each module runs once per engine)."""
    return str(request.param)


def demo_copy(tmp_path_factory: pytest.TempPathFactory, source: Settings, name: str, backend: str,
              request: pytest.FixtureRequest) -> Settings:
    """A module's own copy of a shared demo, on `backend`."""
    url = None if backend == "duckdb" else request.getfixturevalue("postgres").new_database()
    return copy_demo(source, tmp_path_factory.mktemp(f"{name}-{backend}") / "home", database_url=url)


@pytest.fixture(scope="session")
def evaluated_v2(demo_settings: Settings) -> object:
    """sepsis-icu v2 submitted once for the session, through the real worker process."""
    from core.services.installation import open_registry
    from core.services.submission import SubmissionRequest, submit_version

    return submit_version(demo_settings, open_store(demo_settings), open_registry(demo_settings),
                          command_line_operator("pytest"), SubmissionRequest("sepsis-icu", 2))


@pytest.fixture(scope="session")
def evaluated_charted(demo_settings: Settings) -> object:
    """sepsis-icu-charted v1 (a pipeline with a text input, lactate missing when not ordered) submitted once."""
    from core.services.installation import open_registry
    from core.services.submission import SubmissionRequest, submit_version

    return submit_version(demo_settings, open_store(demo_settings), open_registry(demo_settings),
                          command_line_operator("pytest"), SubmissionRequest("sepsis-icu-charted", 1))


def fit_on_validation_cohort(settings: Settings, c: float) -> tuple[object, object, object]:
    """A data scientist's own model: a logistic regression fitted on the demo's validation cohort with
    v1's inputs, returned with its feature frame and the cohort (for runs and zips logged with plain MLflow)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from core.services.installation import open_registry

    registry = open_registry(settings)
    data = pd.read_parquet(registry.evaluation_dataset_path("sepsis-icu", 1))
    features = [c.name for c in registry.model_inputs("sepsis-icu", 1)]
    X = data[features].astype("float64")
    return LogisticRegression(C=c, max_iter=1000).fit(X, data["sepsis_48h"]), X, data
