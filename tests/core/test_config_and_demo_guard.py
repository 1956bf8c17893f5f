"""Settings from the environment, and the demo builder's refusal to wipe real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.adapters.store import Store
from core.config import Settings, load_settings
from core.domain.access import User
from core.errors import ConfigurationError
from core.services.auth import add_user
from core.services.demo import _home_is_replaceable, demo_needed
from core.services.installation import set_fact


def test_defaults_use_the_embedded_mlflow_store(tmp_path: Path) -> None:
    settings = load_settings(env={"MODELBOARD_HOME": str(tmp_path)})
    assert settings.home == tmp_path.resolve()
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert settings.registry_uri == settings.tracking_uri and settings.uses_embedded_mlflow
    assert settings.store_path == tmp_path.resolve() / "governance.duckdb"


def test_external_mlflow_server_is_used_when_set(tmp_path: Path) -> None:
    settings = load_settings(env={"MODELBOARD_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "http://mlflow:5000",
                                  "MLFLOW_REGISTRY_URI": "http://registry:5000"})
    assert (settings.tracking_uri, settings.registry_uri) == ("http://mlflow:5000", "http://registry:5000")
    assert not settings.uses_embedded_mlflow  # the demo on a server holding others' models: test_hospital_profile


@pytest.mark.parametrize("name,value,fragment", [
    ("MODELBOARD_IDLE_MINUTES", "soon", "is not a number"),
    ("MODELBOARD_LOCKOUT_MINUTES", "-1", "greater than zero"),
    ("MODELBOARD_SKOPS_TRUSTED_TYPES", "sklearn.tree._tree.Tree, os.system()", "fully qualified type names"),
])
def test_bad_settings_say_what_to_fix(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        load_settings(env={"MODELBOARD_HOME": str(tmp_path), name: value})


def test_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="is a file"):
        load_settings(env={"MODELBOARD_HOME": str(tmp_path / "file")})


def test_demo_needed_only_for_empty_or_unfinished_demo(settings: Settings, store: Store, operator: User) -> None:
    with store.transaction() as cur:
        set_fact(cur, "demo", "true")
    assert demo_needed(settings)  # a demo build that never finished is rebuilt by `make run`
    with store.transaction() as cur:
        set_fact(cur, "demo_built_at", "2026-11-24T00:00:00")
    assert not demo_needed(settings)
    _home_is_replaceable(settings)  # a finished demo may be rebuilt by `make demo`


def test_real_store_is_never_wiped(settings: Settings, store: Store, operator: User) -> None:
    add_user(store, operator, username="ng", full_name="Dr. Ng", role="clinician", password="p" * 12)
    assert not demo_needed(settings)
    with pytest.raises(ConfigurationError, match="real \\(non-demo\\) governance store"):
        _home_is_replaceable(settings)


@pytest.mark.embedded_only  # the folder of the DuckDB file; a PostgreSQL store is not in it
def test_foreign_mlflow_files_without_a_store_are_never_wiped(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    (settings.home / "mlflow.db").write_bytes(b"someone's registry")
    with pytest.raises(ConfigurationError, match="not a ModelBoard demo"):
        _home_is_replaceable(settings)
