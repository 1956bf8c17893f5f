"""The governance store: the one place that opens it, whichever engine holds it.

Two engines, one code path (docs/decisions/0018): embedded DuckDB (the default, one file in MODELBOARD_HOME) and
PostgreSQL (a hospital installation, `MODELBOARD_DATABASE_URL`, in `core/adapters/postgres.py`). Services write
their SQL once, in the dialect both share; `core/adapters/dialect.py` names where they differ. Both give the
same promises: `transaction()` commits a unit of work whole or not at all, one writing transaction at a time
(the audit chain needs one writer), `still()` reads while nobody writes, `exclusive(name)` holds a named lock
across processes, and a unique key that is taken already is `Conflict`, a store held too long `StoreBusy`.

DuckDB lets one process at a time open a file read-write, and ModelBoard has several processes (the Streamlit
server, the evaluation worker, cron-driven `monitor`, other CLI commands). So no process keeps the file open: a
unit of work opens it, does its reads or one transaction, and closes it; a process that finds the file locked
retries with back-off for a bounded time and then fails with `StoreBusy`. Threads of one process share the open
connection through per-thread cursors, and the file closes when the last one finishes.
See docs/decisions/0001-duckdb-access.md.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pandas as pd

from core.adapters.dialect import OWN_TABLES
from core.adapters.locks import exclusive
from core.adapters.migrations import LATEST_VERSION, MIGRATIONS, SCHEMA_VERSION_TABLE, Migration
from core.domain.clock import utc_now
from core.errors import Conflict, SchemaTooNew, StoreBusy, StoreCorrupt, StoreError

if TYPE_CHECKING:
    from core.adapters.audit_checkpoints import CheckpointLog


class Cursor(Protocol):
    """What services may do with a cursor, on either engine: run SQL (with `?` placeholders), read rows, and hand
    a pandas frame to SQL under a name."""

    def execute(self, query: str, parameters: Any = None, /) -> Any: ...
    def executemany(self, query: str, parameters: Any = None, /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...
    def fetchmany(self, size: int, /) -> Any: ...
    def register(self, view_name: str, python_object: Any, /) -> Any: ...


_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


class _OpenFile:
    """What every Store of one file in this process shares: DuckDB allows one connection per file and
    process, and the audit chain needs one writer at a time (other processes are kept out by DuckDB's
    file lock), so two Store objects of the same file must not each open or write on their own."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.writer = threading.RLock()
        self.conn: duckdb.DuckDBPyConnection | None = None
        self.users = 0


_OPEN_FILES: dict[Path, _OpenFile] = {}
_OPEN_FILES_GUARD = threading.Lock()
# The audit head each open transaction has written (row id, hash, time), keyed by its cursor: record_event notes
# it, and the transaction checkpoints it around COMMIT.
_AUDIT_HEADS: dict[int, tuple[int, str, datetime] | None] = {}


def note_audit_head(cur: Cursor, row_id: int, row_hash: str, at: datetime) -> None:
    """Called by the audit writer: this transaction's newest audit row, to be checkpointed when it commits."""
    if id(cur) in _AUDIT_HEADS:
        _AUDIT_HEADS[id(cur)] = (row_id, row_hash, at)


class Store(ABC):
    """Access to the governance store; services see only this and `Cursor`."""

    engine: str  # "duckdb" | "postgresql"
    checkpoints: CheckpointLog | None

    @abstractmethod
    def cursor(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads (each statement its own transaction)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Cursor]:
        """All writes inside commit together, or none do; one writing transaction at a time."""

    @abstractmethod
    def still(self) -> AbstractContextManager[Cursor]:
        """A cursor while no transaction can write: the chain and its checkpoints read together."""

    @abstractmethod
    def exclusive(self, name: str, *, timeout_s: float = 60.0) -> AbstractContextManager[None]:
        """Hold the lock called `name` against every other process and session, waiting up to `timeout_s`."""

    @abstractmethod
    def schema_version(self) -> int: ...

    def drop_everything(self) -> None:
        """Remove every table of the store: only the demo builder calls this, after it has checked that the store
        is a demo. The embedded store is a file, which the builder deletes instead."""
        raise NotImplementedError("the embedded store is wiped by deleting its file")

    @abstractmethod
    def migrate(self, target: int | None = None) -> int: ...

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the store lives, for messages (a path, or a URL without its password)."""

    # -- small helpers, the same on every engine ---------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.cursor() as cur:
            rel = cur.execute(sql, list(params))
            names = [d[0] for d in rel.description or []]
            return [dict(zip(names, row, strict=False)) for row in rel.fetchall()]

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def query_df(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.cursor() as cur:
            frame: pd.DataFrame = cur.execute(sql, list(params)).df()
            return frame

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.transaction() as cur:
            cur.execute(sql, list(params))


def _open_file(path: Path) -> _OpenFile:
    with _OPEN_FILES_GUARD:
        return _OPEN_FILES.setdefault(path.resolve(), _OpenFile())


class DuckDBStore(Store):
    """The embedded governance store: one DuckDB file."""

    engine = "duckdb"

    def __init__(self, path: Path, *, lock_timeout_s: float = 15.0, checkpoints: CheckpointLog | None = None) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self.checkpoints = checkpoints  # where audited transactions sign the chain's new head (None: nowhere)
        self._file = _open_file(self.path)

    # -- connection life cycle -------------------------------------------------
    def _open(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                return _locked_down(duckdb.connect(str(self.path), config=_CONNECT_CONFIG), self.path.parent)
            except duckdb.IOException as exc:
                message = str(exc)
                if not any(marker in message for marker in _LOCK_MARKERS):
                    raise self._unreadable(message) from exc
                if time.monotonic() >= deadline:
                    raise StoreBusy(
                        f"The governance store {self.path} stayed locked by another process for "
                        f"{self.lock_timeout_s:g} s. Wait for the running ModelBoard command to finish "
                        "and try again, or raise MODELBOARD_LOCK_TIMEOUT_S."
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except duckdb.Error as exc:
                raise self._unreadable(str(exc)) from exc

    def _unreadable(self, reason: str) -> StoreCorrupt:
        return StoreCorrupt(
            f"The governance store {self.path} cannot be opened ({reason.splitlines()[0]}). "
            "ModelBoard will not overwrite it: restore it from a backup, or move it aside "
            "and rebuild the demo with `make demo`."
        )

    @property
    def where(self) -> str:
        return str(self.path)

    def exclusive(self, name: str, *, timeout_s: float = 60.0) -> AbstractContextManager[None]:
        return exclusive(self.path.parent / "locks", name, timeout_s=timeout_s)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one unit of work; the file stays open only while in use."""
        shared = self._file
        with shared.guard:
            if shared.conn is None:
                shared.conn = self._open()
            shared.users += 1
            cur = shared.conn.cursor()
        try:
            yield cur
        finally:
            cur.close()
            with shared.guard:
                shared.users -= 1
                if shared.users == 0 and shared.conn is not None:
                    shared.conn.close()
                    shared.conn = None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All writes inside commit together, or none do; one write transaction at a time per process.

        A transaction that wrote audit rows signs the chain's new head into the checkpoint log just before
        COMMIT (`intent`) and just after (`commit`), while DuckDB's file lock still keeps other processes out,
        so the log's order is the chain's order. If the intent cannot be written, nothing is committed."""
        with self._file.writer, self.cursor() as cur:
            _AUDIT_HEADS[id(cur)] = None
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                    head = _AUDIT_HEADS.get(id(cur))
                    if head is not None and self.checkpoints is not None:
                        self.checkpoints.append("intent", *head)
                except duckdb.ConstraintException as exc:
                    cur.execute("ROLLBACK")
                    raise Conflict(str(exc)) from exc
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                _commit(cur)
                if head is not None and self.checkpoints is not None:
                    try:
                        self.checkpoints.append("commit", *head)
                    except OSError:
                        pass  # committed already: the intent line vouches for it, and the caller must not see a failure
            finally:
                _AUDIT_HEADS.pop(id(cur), None)

    @contextmanager
    def still(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor while no transaction of this process can run: the chain and its checkpoints read together."""
        with self._file.writer, self.cursor() as cur:
            yield cur

    # -- schema --------------------------------------------------------------------
    def schema_version(self) -> int:
        with self.cursor() as cur:
            return current_version(cur, self.path, "duckdb")

    def migrate(self, target: int | None = None) -> int:
        """Apply pending migrations up to `target` (default: latest); return the version.

        Refuses a store whose schema is newer than this code knows, and a DuckDB
        file that is not a ModelBoard store, rather than guessing.
        """
        target = LATEST_VERSION if target is None else target
        with self._file.writer, self.cursor() as cur:
            current = current_version(cur, self.path, "duckdb")
            for migration in MIGRATIONS:
                if current < migration.version <= target:
                    _apply(cur, migration)
                    current = migration.version
            return current


# No extension is installed or loaded behind ModelBoard's back (docs/decisions/0001).
_CONNECT_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoload_known_extensions": False, "autoinstall_known_extensions": False}


def _locked_down(conn: duckdb.DuckDBPyConnection, folder: Path) -> duckdb.DuckDBPyConnection:
    """Once open, the governance connection may touch files only in the store's own folder (no reading a file
    elsewhere, no ATTACH, no COPY out, no extension install), and no statement may change that (configuration
    locked). Data frames handed over with `register` still work; nothing reaches into Python variables."""
    try:
        conn.execute(f"SET allowed_directories = ['{_sql_text(str(folder.resolve()))}/']")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
    except BaseException:
        conn.close()
        raise
    return conn


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _commit(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("COMMIT")
    except duckdb.ConstraintException as exc:
        raise Conflict(str(exc)) from exc


def current_version(cur: Cursor, path: object, engine: str) -> int:
    """The schema version of an opened store; 0 when it is empty, refused when it is not ModelBoard's."""
    tables = {row[0] for row in cur.execute(OWN_TABLES[engine]).fetchall()}
    if "schema_version" not in tables:
        if tables:
            raise StoreCorrupt(
                f"{path} is a {engine} database but not a ModelBoard governance store "
                f"(it has tables {sorted(tables)[:5]} and no schema_version). Point MODELBOARD_HOME elsewhere."
            )
        return 0
    row = cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    version = int(row[0]) if row else 0
    if version > LATEST_VERSION:
        raise SchemaTooNew(
            f"The governance store {path} has schema version {version}, but this ModelBoard "
            f"understands only up to {LATEST_VERSION}: it was written by a newer ModelBoard. "
            "Upgrade this installation (git pull, then make run) instead of opening it with old code."
        )
    return version


def _apply(cur: Cursor, migration: Migration) -> None:
    version, description = migration.version, migration.description
    cur.execute("BEGIN TRANSACTION")
    try:
        cur.execute(SCHEMA_VERSION_TABLE)
        if cur.execute("SELECT 1 FROM schema_version WHERE version = ?", [version]).fetchone():
            cur.execute("ROLLBACK")
            return
        for statement in migration.statements:
            cur.execute(statement)
        if migration.then is not None:
            migration.then(cur)
        cur.execute(
            "INSERT INTO schema_version VALUES (?, ?, ?)", [version, description, utc_now()]
        )
    except duckdb.Error as exc:
        cur.execute("ROLLBACK")
        raise StoreError(f"Migration {version} ({description}) failed and was rolled back: {exc}") from exc
    cur.execute("COMMIT")
