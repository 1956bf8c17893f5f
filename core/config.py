"""Where ModelBoard keeps its data and how it behaves, read from the environment.

One frozen `Settings` value is built at each entry point (app start, CLI
command) and passed down; nothing reads the environment anywhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigurationError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = REPO_ROOT / "data" / "local"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults a hospital pilot would use."""

    home: Path
    tracking_uri: str
    registry_uri: str
    idle_timeout_minutes: int = 15
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    store_lock_timeout_s: float = 15.0
    max_upload_mb: int = 200
    extra_skops_types: tuple[str, ...] = ()  # types an administrator reviewed and allows beyond the built-in list
    alert_webhook_url: str | None = None  # new monitoring alerts are POSTed here as JSON, if set
    audit_log_dir: Path | None = None  # signed checkpoints of the audit trail; None: beside home (never inside)
    audit_key_file: Path | None = None  # the checkpoint signing key; None: a folder of its own beside home
    audit_key: str | None = field(default=None, repr=False)  # the key itself (base64), from a secret store
    database_url: str | None = field(default=None, repr=False)  # PostgreSQL instead of the DuckDB file (hospital)

    @property
    def uses_embedded_store(self) -> bool:
        return self.database_url is None

    @property
    def store_path(self) -> Path:
        return self.home / "governance.duckdb"

    @property
    def audit_log_path(self) -> Path:
        return (self.audit_log_dir or self.home.parent / f"{self.home.name}-audit") / "checkpoints.jsonl"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.home.parent / f"{self.home.name}-keys" / "audit-checkpoint.key"

    @property
    def artifact_root(self) -> Path:
        return self.home / "artifacts"

    @property
    def new_experiment_artifacts(self) -> Path | None:
        """Where a new experiment ModelBoard creates keeps its artifacts: the embedded store's folder, or None for
        an MLflow server, whose own default applies (its artifact proxy; never a path on this machine)."""
        return self.artifact_root if self.uses_embedded_mlflow else None

    @property
    def uses_embedded_mlflow(self) -> bool:
        return self.tracking_uri == embedded_tracking_uri(self.home)


def as_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that give another process (the evaluation worker) these same settings."""
    env = {"MODELBOARD_HOME": str(settings.home), "MLFLOW_TRACKING_URI": settings.tracking_uri,
           "MLFLOW_REGISTRY_URI": settings.registry_uri}
    optional = {"MODELBOARD_DATABASE_URL": settings.database_url, "MODELBOARD_AUDIT_LOG_DIR": settings.audit_log_dir,
                "MODELBOARD_AUDIT_KEY_FILE": settings.audit_key_file, "MODELBOARD_AUDIT_KEY": settings.audit_key}
    return env | {name: str(value) for name, value in optional.items() if value is not None}


def child_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment for a child process, with these settings in place of any the environment had
    (a store URL or audit folder inherited from the caller's shell must not point the child elsewhere)."""
    mine = as_environment(settings)
    inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    return inherited | mine | extra


# The variables `as_environment` may set: a child gets exactly these settings' values, or none of them.
SETTINGS_VARIABLES = ("MODELBOARD_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MODELBOARD_DATABASE_URL",
                      "MODELBOARD_AUDIT_LOG_DIR", "MODELBOARD_AUDIT_KEY_FILE", "MODELBOARD_AUDIT_KEY")


def embedded_tracking_uri(home: Path) -> str:
    """The sqlite MLflow store inside MODELBOARD_HOME."""
    return f"sqlite:///{(home / 'mlflow.db').as_posix()}"


def _positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number: set it to e.g. {default:g}") from None
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} must be greater than zero")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, home: Path | None = None) -> Settings:
    """Build settings from environment variables (or the mapping given).

    MODELBOARD_HOME holds the DuckDB store, the embedded MLflow store and the
    artifacts; MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI point at an external
    MLflow server instead.
    """
    env = os.environ if env is None else env
    home = (home or Path(env.get("MODELBOARD_HOME") or DEFAULT_HOME)).expanduser().resolve()
    if home.exists() and not home.is_dir():
        raise ConfigurationError(f"MODELBOARD_HOME={home} is a file: point it at a folder")
    tracking = env.get("MLFLOW_TRACKING_URI") or embedded_tracking_uri(home)
    registry = env.get("MLFLOW_REGISTRY_URI") or tracking
    return Settings(
        home=home,
        tracking_uri=tracking,
        registry_uri=registry,
        idle_timeout_minutes=int(_positive_number(env, "MODELBOARD_IDLE_MINUTES", 15)),
        max_failed_logins=int(_positive_number(env, "MODELBOARD_MAX_FAILED_LOGINS", 5)),
        lockout_minutes=int(_positive_number(env, "MODELBOARD_LOCKOUT_MINUTES", 15)),
        store_lock_timeout_s=_positive_number(env, "MODELBOARD_LOCK_TIMEOUT_S", 15.0),
        max_upload_mb=int(_positive_number(env, "MODELBOARD_MAX_UPLOAD_MB", 200)),
        extra_skops_types=_type_names(env, "MODELBOARD_SKOPS_TRUSTED_TYPES"),
        alert_webhook_url=_webhook(env.get("MODELBOARD_ALERT_WEBHOOK_URL")),
        audit_log_dir=_outside(home, env.get("MODELBOARD_AUDIT_LOG_DIR"), "MODELBOARD_AUDIT_LOG_DIR"),
        audit_key_file=_outside(home, env.get("MODELBOARD_AUDIT_KEY_FILE"), "MODELBOARD_AUDIT_KEY_FILE"),
        audit_key=env.get("MODELBOARD_AUDIT_KEY") or None,
        database_url=_database_url(env.get("MODELBOARD_DATABASE_URL")),
    )


def _database_url(raw: str | None) -> str | None:
    """MODELBOARD_DATABASE_URL: the governance store on PostgreSQL (a hospital installation), or None (DuckDB)."""
    if not raw or not raw.strip():
        return None
    url = raw.strip()
    if not url.startswith(("postgresql://", "postgres://")):
        shown = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
        raise ConfigurationError(f"MODELBOARD_DATABASE_URL={shown!r} is not a PostgreSQL URL: write it as "
                                 "postgresql://user:password@host:5432/database, or leave it unset for the "
                                 "embedded DuckDB store in MODELBOARD_HOME")
    return url


def _outside(home: Path, raw: str | None, name: str) -> Path | None:
    """A path that must not lie inside MODELBOARD_HOME: whoever can replace the governance store there must not
    thereby reach the checkpoints or the key that vouch for it (docs/decisions/0014)."""
    if not raw or not raw.strip():
        return None
    path = Path(raw.strip()).expanduser().resolve()
    if path == home or home in path.parents:
        raise ConfigurationError(f"{name}={raw} lies inside MODELBOARD_HOME ({home}): keep the audit checkpoints "
                                 "and their key outside the folder that holds the governance store")
    return path


def _webhook(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    from core.adapters.webhook import check_webhook_url

    return check_webhook_url(raw)


def _type_names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in (env.get(name) or "").split(",") if t.strip())
    bad = [t for t in names if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", t)]
    if bad:
        raise ConfigurationError(f"{name} holds {bad!r}: list fully qualified type names separated by commas, "
                                 "e.g. sklearn.tree._tree.Tree")
    return names


PICKLE_GUARD = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"


def refuse_unpickling() -> None:
    """The server process never unpickles a model, whatever started it (make run, a bare `streamlit run`, a
    container): MLflow's own guard is set here, not left to the command line. Only the evaluation worker
    process sets it back to true for itself (docs/decisions/0002)."""
    os.environ[PICKLE_GUARD] = "false"


def quiet_mlflow() -> None:
    """Switch off MLflow's telemetry and INFO chatter; call before mlflow is imported.

    There is no network here, and hospitals want telemetry off.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
