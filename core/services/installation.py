"""Opening an installation: the store (migrated) and the registry, plus its facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.adapters.audit_checkpoints import CheckpointLog, key_from_file, key_from_secret
from core.adapters.registry import Registry
from core.adapters.store import Cursor, DuckDBStore, Store
from core.config import Settings
from core.errors import ConfigurationError


@dataclass(frozen=True)
class InstallationFacts:
    is_demo: bool
    demo_seed: int | None
    built_at: datetime | None
    schema_version: int


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The governance store for these settings, migrated to the latest schema."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create MODELBOARD_HOME {settings.home}: {exc.strerror}") from exc
    store: Store
    if settings.database_url is not None:
        from core.adapters.postgres import PostgresStore

        store = PostgresStore(settings.database_url, lock_timeout_s=settings.store_lock_timeout_s,
                              checkpoints=checkpoint_log(settings))
    else:
        store = DuckDBStore(settings.store_path, lock_timeout_s=settings.store_lock_timeout_s,
                            checkpoints=checkpoint_log(settings))
    if migrate:
        store.migrate()
        from core.services.audit_verification import start_checkpoints

        start_checkpoints(store)
    return store


def checkpoint_log(settings: Settings) -> CheckpointLog:
    """The signed checkpoint log of this installation's audit trail, with its key (created on first use)."""
    key = (key_from_secret(settings.audit_key) if settings.audit_key
           else key_from_file(settings.audit_key_path, create=True))
    return CheckpointLog(settings.audit_log_path, key)


def open_registry(settings: Settings) -> Registry:
    return Registry(settings.tracking_uri, settings.registry_uri)


def registry_if_present(settings: Settings) -> Registry | None:
    """The registry, or None when the embedded MLflow store was never created (opening it would create one:
    a bare governance store has no promotions and so no anchors to read)."""
    if settings.uses_embedded_mlflow and not (settings.home / "mlflow.db").exists():
        return None
    return open_registry(settings)


def set_fact(cur: Cursor, key: str, value: str) -> None:
    cur.execute("INSERT INTO installation (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                "excluded.value", [key, value])


def installation_facts(store: Store) -> InstallationFacts:
    rows = {r["key"]: r["value"] for r in store.query("SELECT key, value FROM installation")}
    built = rows.get("demo_built_at")
    return InstallationFacts(
        is_demo=rows.get("demo") == "true",
        demo_seed=int(rows["demo_seed"]) if "demo_seed" in rows else None,
        built_at=datetime.fromisoformat(built) if built else None,
        schema_version=store.schema_version(),
    )


def has_users(store: Store) -> bool:
    row = store.query_one("SELECT count(*) AS n FROM users")
    return bool(row and row["n"])
