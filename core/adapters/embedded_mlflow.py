"""The embedded MLflow store (a sqlite file in MODELBOARD_HOME), where ModelBoard itself must touch the file:
copying it for a backup, and the demo's back-dating of what it has just logged. Everything else goes through
MLflow's own client (`core/adapters/registry.py`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.errors import ConfigurationError


def copy_embedded_store(source: Path, target: Path) -> None:
    """sqlite's online backup: a consistent copy even while MLflow writes."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot copy the MLflow store {source}: {exc}") from exc
    finally:
        src.close()
        dst.close()


def shift_times(path: Path, columns: dict[str, tuple[str, ...]], to_first_ms: int) -> None:
    """Move every time in `columns` (table → columns, milliseconds since the epoch) by one amount, so that the
    earliest model version was registered at `to_first_ms`; durations and order stay as they were."""
    with sqlite3.connect(path) as db:
        (earliest,) = db.execute("SELECT min(creation_time) FROM model_versions").fetchone()
        if earliest is None:
            return
        shift = to_first_ms - int(earliest)
        for table, names in columns.items():
            moved = ", ".join(f"{c} = {c} + ?" for c in names)
            db.execute(f"UPDATE {table} SET {moved}", [shift] * len(names))  # noqa: S608 - names from the caller
