"""Backup and restore of an installation: the governance store, its signed checkpoint log and the embedded MLflow
store with its artifacts, copied consistently, so that a restored copy's audit trail still verifies.

The backup is taken while this process holds the store's write lock and DuckDB's file lock (no other process
can write meanwhile), after a CHECKPOINT, with sqlite's online backup for MLflow. The signing key is not
copied: it is what vouches for the backup, so it is kept (and backed up) separately (docs/decisions/0014).
A restore goes back to the same MODELBOARD_HOME path (MLflow and the store record absolute artifact paths),
into a home and log location that are empty, and checks the restored trail before it reports success.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.adapters.embedded_mlflow import copy_embedded_store
from core.adapters.files import file_sha256
from core.adapters.store import DuckDBStore, Store
from core.config import Settings
from core.domain.access import Permission, User, require
from core.domain.audit_chain import ChainVerification
from core.domain.clock import utc_now
from core.errors import ValidationError
from core.services.audit import record_event, verify_chain

MANIFEST = "modelboard-backup.json"
STORE_FILE, MLFLOW_FILE, LOG_FILE = "governance.duckdb", "mlflow.db", "checkpoints.jsonl"


@dataclass(frozen=True)
class BackupReport:
    folder: Path
    files: dict[str, str]  # relative path → SHA-256
    audit_rows: int
    checkpoint: int | None

    @property
    def sentence(self) -> str:
        return (f"Backed up to {self.folder}: {len(self.files)} files, the audit trail's {self.audit_rows} rows "
                f"up to checkpoint {self.checkpoint}. Keep the checkpoint signing key's own backup apart from it.")


def backup(settings: Settings, store: Store, actor: User, out: Path) -> BackupReport:
    """Copy the installation into `out` (a new or empty folder outside MODELBOARD_HOME)."""
    require(actor, Permission.MAINTAIN_INSTALLATION)
    _embedded_only(settings, "backup")
    out = out.expanduser().resolve()
    _check_target(settings, out)
    with store.transaction() as cur:  # the backup holds its own record, checkpointed like any other
        record_event(cur, actor=actor.username, action="backup_created", detail={"folder": str(out)})
    out.mkdir(parents=True, exist_ok=True)
    with store.still() as cur:  # nothing of this process writes; DuckDB's lock keeps other processes out
        cur.execute("CHECKPOINT")
        shutil.copy2(settings.store_path, out / STORE_FILE)
        if store.checkpoints is not None and store.checkpoints.exists():
            shutil.copy2(store.checkpoints.path, out / LOG_FILE)
        if settings.uses_embedded_mlflow and (settings.home / MLFLOW_FILE).exists():
            copy_embedded_store(settings.home / MLFLOW_FILE, out / MLFLOW_FILE)
            if settings.artifact_root.exists():
                shutil.copytree(settings.artifact_root, out / "artifacts")
    chain = verify_chain(DuckDBStore(out / STORE_FILE))
    files = {p.relative_to(out).as_posix(): file_sha256(p) for p in sorted(out.rglob("*")) if p.is_file()}
    checkpoint = json.loads((out / LOG_FILE).read_text().splitlines()[-1])["n"] if (out / LOG_FILE).exists() else None
    manifest: dict[str, Any] = {"home": str(settings.home), "created_at": utc_now().isoformat(), "by": actor.username,
                                "audit_rows": chain.rows, "head": chain.head, "checkpoint": checkpoint,
                                "key": store.checkpoints.key.key_id if store.checkpoints else None, "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return BackupReport(out, files, chain.rows, checkpoint)


def restore(settings: Settings, source: Path) -> ChainVerification:
    """Put a backup back into an empty MODELBOARD_HOME at the path it was taken from; returns the restored
    trail's verification (with the configured key), which must be intact for the restore to count."""
    _embedded_only(settings, "restore")
    source = source.expanduser().resolve()
    manifest = _manifest(source)
    if Path(manifest["home"]) != settings.home:
        raise ValidationError(f"this backup is of MODELBOARD_HOME {manifest['home']}, not {settings.home}: MLflow and "
                              "the store record absolute paths, so restore it to the same path")
    occupied = [p for p in (settings.store_path, settings.home / MLFLOW_FILE, settings.artifact_root,
                            settings.audit_log_path) if p.exists()]
    if occupied:
        raise ValidationError(f"restore refused: {', '.join(map(str, occupied))} already exist. Restore only into "
                              "an empty installation; move the damaged files aside first")
    for name, digest in manifest["files"].items():
        if file_sha256(source / name) != digest:
            raise ValidationError(f"the backup's {name} no longer matches its manifest: it was changed or damaged")
    settings.home.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / STORE_FILE, settings.store_path)
    if (source / MLFLOW_FILE).exists():
        shutil.copy2(source / MLFLOW_FILE, settings.home / MLFLOW_FILE)
    if (source / "artifacts").exists():
        shutil.copytree(source / "artifacts", settings.artifact_root)
    if (source / LOG_FILE).exists():
        settings.audit_log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copy2(source / LOG_FILE, settings.audit_log_path)
    from core.services.installation import open_store, registry_if_present

    return verify_chain(open_store(settings), registry_if_present(settings))


def _check_target(settings: Settings, out: Path) -> None:
    if out == settings.home or settings.home in out.parents:
        raise ValidationError(f"--out {out} lies inside MODELBOARD_HOME: back up to another folder (another disk)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationError(f"--out {out} exists and is not an empty folder: choose a new folder for each backup")


def _manifest(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{source} is not a ModelBoard backup ({MANIFEST} unreadable: {exc})") from None
    if not isinstance(manifest.get("files"), dict) or STORE_FILE not in manifest["files"]:
        raise ValidationError(f"{source / MANIFEST} does not list a governance store: not a ModelBoard backup")
    return manifest


def _embedded_only(settings: Settings, what: str) -> None:
    """`backup` and `restore` copy the embedded files; a hospital's PostgreSQL store is backed up by its database
    tools, so that the copy is consistent with what the database holds (README: Running in a hospital)."""
    if not settings.uses_embedded_store:
        raise ValidationError(f"`{what}` copies the embedded DuckDB store, but this installation keeps its governance "
                              "store in PostgreSQL: use pg_dump / pg_restore for the database and copy the "
                              "checkpoint log beside it (README, 'Running in a hospital')")
