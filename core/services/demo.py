"""Building the embedded demo: a synthetic ICU, its models, users and production log.

The data and models come from the `data` package (written as a hospital data
scientist would, with the plain MLflow API); this service wipes and refills
MODELBOARD_HOME, refusing to touch anything that is not already a demo.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import yaml

from core.adapters.embedded_mlflow import shift_times
from core.adapters.store import Store
from core.config import Settings
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.errors import ConfigurationError, StoreError
from core.services.audit import record_event
from core.services.auth import add_user
from core.services.installation import installation_facts, open_store, set_fact
from core.services.model_card import save_narratives
from core.services.usecases import import_use_case

USE_CASE_DIR = Path(__file__).resolve().parents[2] / "data" / "usecases"
CARD_DIR = Path(__file__).resolve().parents[2] / "data" / "model_cards"
DEMO_START = date(2026, 6, 1)  # first day of the demo's production log
# When the demo's models were logged and registered in its story: two weeks before v1 went live on DEMO_START,
# after the last admission any of them was trained on (2026-04-30). Ingest quarantines a prediction made before
# its version was registered, so the story's history must come after its registration (docs/decisions/0011).
DEMO_REGISTERED = datetime(2026, 5, 18, 9, 0)
DERIVATION_START = date(2025, 1, 1)
DEMO_USERS: tuple[tuple[str, str, str, str], ...] = (
    ("ng", "Dr. Alice Ng", "clinician", "ng-icu-demo-2026"),
    ("okafor", "Dr. Chidi Okafor", "clinician", "okafor-icu-demo-2026"),
    ("patel", "Dr. Priya Patel", "clinical_lead", "patel-lead-demo-2026"),
    ("lee", "Jordan Lee", "data_scientist", "lee-ds-demo-2026"),
    ("diaz", "Dr. Rosa Diaz", "data_scientist", "diaz-ds-demo-2026"),  # reviews what Lee builds
    ("kim", "Sam Kim", "auditor", "kim-audit-demo-2026"),
    ("admin", "Morgan Reyes", "admin", "admin-demo-2026"),
)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoSummary:
    home: Path
    seed: int
    cohort_digest: str
    production_log_digest: str
    versions: tuple[str, ...]
    prediction_rows: int
    users: tuple[tuple[str, str, str, str], ...] = DEMO_USERS
    timings_s: dict[str, float] = field(default_factory=dict)


def _home_is_replaceable(settings: Settings) -> None:
    if not settings.uses_embedded_mlflow:
        _server_is_replaceable(settings)
    if not settings.uses_embedded_store:
        _database_is_replaceable(settings)
        return
    if not settings.store_path.exists():
        leftovers = [p.name for p in settings.home.glob("*") if p.name in ("mlflow.db", "artifacts")]
        if leftovers:
            raise ConfigurationError(
                f"{settings.home} holds {', '.join(leftovers)} but no governance store: it is not a "
                "ModelBoard demo, so it will not be wiped. Choose an empty folder with --home."
            )
        return
    try:
        facts = installation_facts(open_store(settings, migrate=False))
    except StoreError as exc:
        raise ConfigurationError(f"{exc} The demo will not overwrite it.") from exc
    if not facts.is_demo:  # set first thing by a demo build, so a half-built demo is replaceable
        raise ConfigurationError(
            f"{settings.home} holds a real (non-demo) governance store; the demo will not overwrite it. "
            "Choose another folder with --home or MODELBOARD_HOME."
        )


def _server_is_replaceable(settings: Settings) -> None:
    """An MLflow server may take the demo when every model registered on it is one a demo logged."""
    from core.services.installation import open_registry

    others = open_registry(settings).models_logged_by_others(DEMO_RUN_TAG)
    if others:
        raise ConfigurationError(
            f"the MLflow server at {settings.tracking_uri} holds models the demo did not log "
            f"({', '.join(others[:5])}); the demo will not delete them. Point MLFLOW_TRACKING_URI at an empty "
            "server, or unset it for the embedded store.")


def _database_is_replaceable(settings: Settings) -> None:
    """A PostgreSQL database may take the demo when it is empty or holds a demo, never a real installation."""
    store = open_store(settings, migrate=False)
    try:
        empty = store.schema_version() == 0
        if empty or installation_facts(store).is_demo:
            return
    except StoreError as exc:
        raise ConfigurationError(f"{exc} The demo will not overwrite it.") from exc
    raise ConfigurationError(f"the PostgreSQL database {store.where} holds a real (non-demo) governance store; the "
                             "demo will not overwrite it. Point MODELBOARD_DATABASE_URL at an empty database.")


def _wipe(settings: Settings) -> None:
    """Everything of the previous demo, its audit checkpoints included (they vouch for the trail being wiped);
    the signing key stays."""
    home = settings.home
    if not settings.uses_embedded_store:
        open_store(settings, migrate=False).drop_everything()
    if not settings.uses_embedded_mlflow:  # only demo models are there (_server_is_replaceable)
        from core.services.installation import open_registry

        registry = open_registry(settings)
        for model in registry.list_models():
            registry.delete_model(model.name)
    settings.audit_log_path.unlink(missing_ok=True)
    for name in ("governance.duckdb", "governance.duckdb.wal", "mlflow.db"):
        (home / name).unlink(missing_ok=True)
    for folder in ("artifacts", "monitoring", "incoming"):
        shutil.rmtree(home / folder, ignore_errors=True)


def _record_aliases(settings: Settings, store: Store) -> None:
    """The aliases the demo models were logged with are ModelBoard's baseline from the start: a move made in
    MLflow afterwards is out of band on the very first check, never adopted (docs/decisions/0004)."""
    from core.services.installation import open_registry
    from core.services.promotion import record_first_aliases

    registry = open_registry(settings)
    for model in registry.list_models():
        record_first_aliases(settings, store, registry, model.name)


# The times MLflow's sqlite store keeps of what the demo logged (milliseconds since the epoch).
MLFLOW_TIMES = {"experiments": ("creation_time", "last_update_time"), "runs": ("start_time", "end_time"),
                "metrics": ("timestamp",), "latest_metrics": ("timestamp",),
                "logged_models": ("creation_timestamp_ms", "last_updated_timestamp_ms"),
                "registered_models": ("creation_time", "last_updated_time"),
                "model_versions": ("creation_time", "last_updated_time")}


def _backdate_registrations(settings: Settings, first: datetime) -> None:
    """Move everything the demo has just logged in its own embedded MLflow store back in time, so that the first
    registration happened at `first` (UTC) and durations and order stay as they were: the story's production
    history then starts after the versions that made it were registered, as a real hospital's does. MLflow's API
    cannot set these times, and only the demo, which owns this file (`_home_is_replaceable`), may do it."""
    shift_times(settings.home / "mlflow.db", MLFLOW_TIMES, int(first.replace(tzinfo=UTC).timestamp() * 1000))


def _git_commit() -> str | None:
    """The commit of the code that trains the demo models, when run from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def build_demo(settings: Settings, operator: User, *, seed: int = 7, progress: Progress | None = None,
               monitor: bool = True) -> DemoSummary:
    """Wipe MODELBOARD_HOME (only if it is empty or a demo) and build the demo in it; with `monitor`, run
    monitoring over the production log as cron would have (tests that never look at it skip the ~15 s)."""
    require(operator, Permission.MAINTAIN_INSTALLATION)
    _home_is_replaceable(settings)
    from data.cohort import cohort_digest, generate_icu_cohort, generate_readmission_cohort
    from data.production import generate_production_log
    from data.train import log_demo_models

    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    _wipe(settings)
    store = open_store(settings)
    with store.transaction() as cur:
        set_fact(cur, "demo", "true")
    _create_users(store, operator)
    lap("store and users")
    say("Generating the synthetic ICU cohorts…")
    cohort = generate_icu_cohort(20_000, seed=seed, start=DERIVATION_START, days=365)
    post_change = generate_icu_cohort(
        12_000, seed=seed + 1, start=date(2026, 1, 1), days=120, lactate_assay_change_day=0, id_prefix="ENCB"
    )
    readmission = generate_readmission_cohort(8_000, seed=seed + 2, start=DERIVATION_START, days=365)
    charted = generate_icu_cohort(20_000, seed=seed, start=DERIVATION_START, days=365, charted=True)
    lap("cohorts")
    say("Training and logging the demo models in MLflow…")
    logged = log_demo_models(
        tracking_uri=settings.tracking_uri, artifact_root=settings.new_experiment_artifacts, seed=seed,
        git_commit=_git_commit(), cohort=cohort, post_change_cohort=post_change, readmission_cohort=readmission,
        charted_cohort=charted,
    )
    if settings.uses_embedded_mlflow:  # a server's times are its own (its API cannot set them)
        _backdate_registrations(settings, DEMO_REGISTERED)
    lap("models")
    say("Writing 90 days of production predictions…")
    log = generate_production_log(tracking_uri=settings.tracking_uri, seed=seed + 3, start=DEMO_START)
    rows = _write_production_log(settings, store, log, model_name="sepsis-icu", version=1)
    lap("production log")
    for path in sorted(USE_CASE_DIR.glob("*.yaml")):
        import_use_case(store, operator, path.read_text(encoding="utf-8"))
    _write_card_narratives(store, operator)
    if monitor:
        say("Running monitoring over the 90 days…")
        from core.services.installation import open_registry
        from core.services.monitoring import run_monitor

        run_monitor(settings, store, open_registry(settings), operator)
        lap("monitoring")
    _record_aliases(settings, store)  # last: loading a model through models:/ adds a file to its folder (MLflow)
    digest = cohort_digest(cohort)
    log_digest = cohort_digest(log)
    with store.transaction() as cur:
        for key, value in (("demo_seed", str(seed)), ("demo_built_at", utc_now().isoformat()),
                           ("demo_cohort_digest", digest), ("demo_log_digest", log_digest)):
            set_fact(cur, key, value)
        versions = [f"{v.model_name} v{v.version}" for v in logged]
        record_event(cur, actor=operator.username, action="demo_built",
                     detail={"seed": seed, "cohort_digest": digest, "versions": versions})
    return DemoSummary(
        home=settings.home, seed=seed, cohort_digest=digest, production_log_digest=log_digest,
        versions=tuple(f"{v.model_name} v{v.version}" for v in logged), prediction_rows=rows, timings_s=timings,
    )


def _write_card_narratives(store: Store, operator: User) -> None:
    for path in sorted(CARD_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for version, fields in document["versions"].items():
            save_narratives(store, operator, path.stem, int(version), {k: str(v) for k, v in fields.items()})


def demo_needed(settings: Settings) -> bool:
    """True when MODELBOARD_HOME has no store yet, or holds a demo whose build never finished."""
    if settings.uses_embedded_store and not settings.store_path.exists():
        return True
    if not settings.uses_embedded_store and open_store(settings, migrate=False).schema_version() == 0:
        return True
    facts = installation_facts(open_store(settings))
    return facts.is_demo and facts.built_at is None


def _create_users(store: Store, operator: User) -> None:
    for username, full_name, role, password in DEMO_USERS:
        add_user(store, operator, username=username, full_name=full_name, role=role, password=password)


DEMO_RUN_TAG = "modelboard.demo"  # data/train.py tags every demo run with it
SENSITIVE_COLUMNS = ("sex", "age_band", "race_ethnicity", "payer")
LATE_DAYS = 7
LATE_LABELS_FILE = "late-outcomes.csv"


def _write_production_log(settings: Settings, store: Store, log: pd.DataFrame, *, model_name: str,
                          version: int) -> int:
    from data.cohort import FEATURES

    now = utc_now()
    frame = pd.DataFrame({
        "model_name": model_name,
        "model_version": version,
        "encounter_id": log["encounter_id"].astype(str),
        "predicted_at": pd.to_datetime(log["predicted_at"]),
        "score": log["score"].astype(float),
        "decision": log["decision"].astype(bool),
        "features": [json.dumps(r) for r in log[list(FEATURES)].to_dict(orient="records")],
        "attributes": [json.dumps(r) for r in log[list(SENSITIVE_COLUMNS)].to_dict(orient="records")],
        "ingested_at": now,
    })
    labels = pd.DataFrame({
        "model_name": model_name,
        "encounter_id": frame["encounter_id"],
        "outcome": log["outcome"].astype(int),
        "labelled_at": frame["predicted_at"] + pd.Timedelta(days=2),
    })
    # The last week's outcomes have not been coded yet: they wait in a file for `ingest-labels`, so the demo
    # shows a week judged on the estimate alone, and how the realised figures replace it.
    late = (frame["predicted_at"] >= frame["predicted_at"].max().normalize() - pd.Timedelta(days=LATE_DAYS - 1))
    late_file = settings.home / "incoming" / LATE_LABELS_FILE
    late_file.parent.mkdir(parents=True, exist_ok=True)
    labels[late.to_numpy()][["encounter_id", "outcome", "labelled_at"]].to_csv(late_file, index=False)
    labels = labels[~late.to_numpy()]
    with store.transaction() as cur:
        cur.register("incoming_log", frame)
        cur.execute("INSERT INTO prediction_log SELECT * FROM incoming_log")
        cur.register("incoming_labels", labels)
        cur.execute("INSERT INTO outcome_labels SELECT * FROM incoming_labels")
    return len(frame)
