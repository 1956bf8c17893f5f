"""Shared fixtures: real DuckDB files and MLflow sqlite stores in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.adapters.store import Store
from core.config import Settings, load_settings
from core.domain.access import User, command_line_operator
from core.services.installation import open_store

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
REPO = Path(__file__).resolve().parent.parent
TEST_OUTPUT = REPO / "test-output"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With pytest-xdist (`make test` runs two workers), keep each module on one worker, so a module's demo or
    installation is built once, and every browser test on one worker, beside the one server they share."""
    for item in items:
        module = item.nodeid.split("::")[0]
        group = "browser" if module.startswith("tests/e2e/") else module
        item.add_marker(pytest.mark.xdist_group(name=group))
    # The browser group is the longest (its own demo, a server, real submissions): started first, it runs beside
    # the other modules instead of after them.
    items.sort(key=lambda item: not item.nodeid.startswith("tests/e2e/"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an empty installation in tmp_path, ignoring the caller's environment."""
    return load_settings(env={}, home=tmp_path / "home")


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
