"""The governance store on PostgreSQL (a hospital installation: `MODELBOARD_DATABASE_URL=postgresql://…`).

The same promises as the embedded store (see `core/adapters/store.py`), kept by the database instead of by file
locks, so that several processes on several machines (app replicas, the worker, cron) can share one store:

- one writing transaction at a time: a session-level advisory lock (`WRITER_LOCK`) held from BEGIN until the
  audit checkpoint after COMMIT is written, so the audit chain is appended gap-free and in checkpoint order
  whichever process writes, and a process that cannot get it within the lock timeout gets `StoreBusy`;
- `exclusive(name)`: a session-level advisory lock keyed by the name's hash (promotion per model);
- a unique key taken already is `Conflict`; lock and serialisation failures are `StoreBusy`.

Connections come from one psycopg pool per URL and process. SQL arrives in the shared dialect and is put into
PostgreSQL's by `core/adapters/dialect.py`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import psycopg
from psycopg import errors as pg_errors
from psycopg.types.numeric import FloatLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from core.adapters.dialect import OWN_TABLES, POSTGRES_FUNCTIONS, postgres_type, to_postgres
from core.adapters.migrations import LATEST_VERSION, MIGRATIONS, SCHEMA_VERSION_TABLE, Migration
from core.adapters.store import Store, current_version
from core.domain.clock import utc_now
from core.errors import Conflict, StoreBusy, StoreError

if TYPE_CHECKING:
    from core.adapters.audit_checkpoints import CheckpointLog

WRITER_LOCK = "modelboard: the one writing transaction"
_BUSY = (pg_errors.LockNotAvailable, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
_INTEGERS = {20, 21, 23}
_FLOATS = {700, 701, 1700}
_TIMES = {1082, 1114, 1184}


def lock_key(name: str) -> int:
    """A 64-bit advisory lock key for a lock's name (the same in every process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _Shared:
    """What every PostgresStore of one URL in this process shares: the pool, and who holds the writer lock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: ConnectionPool[Any] | None = None
        self.writer = threading.RLock()
        self.depth = threading.local()
        self.guard = threading.Lock()
        self.named: dict[str, threading.Lock] = {}  # exclusive(name): this process's threads queue here first

    def opened_pool(self, timeout_s: float, where: str) -> ConnectionPool[Any]:
        """The pool, opened on first use with one connection made (so a wrong URL or a server that is down is
        told at once, and a pool that cannot connect is closed instead of retrying in the background)."""
        with self.guard:
            if self.pool is None:
                pool: ConnectionPool[Any] = ConnectionPool(
                    self.url, min_size=1, max_size=20, open=False, configure=_configure,
                    kwargs={"autocommit": True, "options": "-c timezone=UTC"})
                try:
                    pool.open(wait=True, timeout=timeout_s)
                except PoolTimeout as exc:
                    pool.close()
                    raise StoreError(f"the governance store at {where} cannot be reached within {timeout_s:g} s: "
                                     "is PostgreSQL running, and are the host, port, database, user and "
                                     "password in MODELBOARD_DATABASE_URL right?") from exc
                self.pool = pool
            return self.pool


_SHARED: dict[str, _Shared] = {}
_SHARED_GUARD = threading.Lock()


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", FloatLoader)  # avg() of integers: a float, as DuckDB gives


class PgCursor:
    """A cursor that takes ModelBoard's shared SQL and answers like DuckDB's (`df()`, `register`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._cur = psycopg.ClientCursor(conn)  # parameters inlined client-side: NULLs typed by context, as DuckDB
        self._registered: list[str] = []

    @property
    def description(self) -> Any:
        return self._cur.description

    def execute(self, query: str, parameters: Any = None, /) -> PgCursor:
        params = [_plain(v) for v in parameters] if parameters else None
        with _translated_errors():
            self._cur.execute(to_postgres(query, has_params=params is not None), params)
        return self

    def executemany(self, query: str, parameters: Any = None, /) -> PgCursor:
        rows = [[_plain(v) for v in row] for row in parameters or []]
        with _translated_errors():
            self._cur.executemany(to_postgres(query, has_params=True), rows)
        return self

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> Any:
        return self._cur.fetchall()

    def fetchmany(self, size: int) -> Any:
        return self._cur.fetchmany(size)

    def df(self) -> pd.DataFrame:
        """The result as DuckDB's `df()` gives it: numbers as floats where NULLs occur, times as datetimes."""
        names = [c.name for c in self._cur.description or []]
        frame = pd.DataFrame.from_records(self._cur.fetchall(), columns=names)
        for column in self._cur.description or []:
            values = frame[column.name]
            if column.type_code in _FLOATS or (column.type_code in _INTEGERS and values.isna().any()):
                frame[column.name] = pd.to_numeric(values, errors="coerce").astype(float)
            elif column.type_code in _INTEGERS and len(values):
                frame[column.name] = values.astype("int64")
            elif column.type_code in _TIMES:
                frame[column.name] = pd.to_datetime(values)
        return frame

    def register(self, view_name: str, python_object: Any, /) -> PgCursor:
        """A temporary table named `view_name` holding the frame (DuckDB reads the frame in place)."""
        frame: pd.DataFrame = python_object
        columns = ", ".join(f'"{c}" {postgres_type(frame[c].dtype)}' for c in frame.columns)
        self._cur.execute(f'DROP TABLE IF EXISTS pg_temp."{view_name}"')
        self._cur.execute(f'CREATE TEMPORARY TABLE "{view_name}" ({columns})')
        names = ", ".join(f'"{c}"' for c in frame.columns)
        with self._cur.copy(f'COPY "{view_name}" ({names}) FROM STDIN') as copy:
            for row in frame.itertuples(index=False, name=None):
                copy.write_row([_plain(v) for v in row])
        self._registered.append(view_name)
        return self

    def copy_rows(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        """Rows into a table with COPY, each value parsed by PostgreSQL into its column's type."""
        names = ", ".join(f'"{c}"' for c in columns)
        with self._cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([_plain(v) for v in row])

    def close(self) -> None:
        if self._cur.closed:
            return
        for name in self._registered:
            try:
                self._cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')
            except psycopg.Error:
                pass  # an aborted transaction dropped it already
        self._cur.close()


def _plain(value: Any) -> Any:
    """A value psycopg can send: numpy scalars as Python ones, pandas' missing markers as NULL."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, float) and np.isnan(value):
        return None
    if value is pd.NaT or value is pd.NA:
        return None
    return value


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except pg_errors.UniqueViolation as exc:
        raise Conflict(str(exc).splitlines()[0]) from exc
    except _BUSY as exc:
        raise StoreBusy(f"the governance store was busy ({str(exc).splitlines()[0]}); try again in a minute") from exc


class PostgresStore(Store):
    """The governance store in a PostgreSQL database (15 or newer)."""

    engine = "postgresql"

    def __init__(self, url: str, *, lock_timeout_s: float = 15.0, checkpoints: CheckpointLog | None = None) -> None:
        self.url = url
        self.lock_timeout_s = lock_timeout_s
        self.checkpoints = checkpoints
        with _SHARED_GUARD:
            self._shared = _SHARED.setdefault(url, _Shared(url))

    @property
    def where(self) -> str:
        return without_password(self.url)

    # -- connections --------------------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._shared.opened_pool(self.lock_timeout_s, self.where)
        try:
            with pool.connection(timeout=self.lock_timeout_s) as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreBusy(f"no connection to the governance store at {self.where} within "
                            f"{self.lock_timeout_s:g} s: is PostgreSQL running and reachable?") from exc
        except psycopg.OperationalError as exc:
            raise StoreError(f"the governance store at {self.where} cannot be reached "
                             f"({str(exc).splitlines()[0]}): check MODELBOARD_DATABASE_URL") from exc

    @contextmanager
    def cursor(self) -> Iterator[PgCursor]:
        with self._connection() as conn, closing(PgCursor(conn)) as cur:
            yield cur

    @contextmanager
    def _advisory(self, conn: psycopg.Connection[Any], name: str, timeout_s: float, busy: str) -> Iterator[None]:
        key, deadline, delay = lock_key(name), time.monotonic() + timeout_s, 0.01
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() >= deadline:
                raise StoreBusy(busy)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [key])

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection holding the writer lock. This process's threads queue for it before they take a pooled
        connection (so waiting writers cannot drain the pool that the writer needs); other processes queue on the
        advisory lock. A transaction opened inside another of the same thread waits for nothing, as on DuckDB."""
        shared = self._shared
        deadline_s = self.lock_timeout_s
        if not shared.writer.acquire(timeout=deadline_s):
            raise StoreBusy(self._busy())
        try:
            depth = getattr(shared.depth, "n", 0)
            shared.depth.n = depth + 1
            with self._connection() as conn:
                if depth:
                    yield conn
                else:
                    with self._advisory(conn, WRITER_LOCK, self.lock_timeout_s, self._busy()):
                        yield conn
        finally:
            shared.depth.n = depth
            shared.writer.release()

    def _busy(self) -> str:
        return (f"The governance store {self.where} stayed locked by another process for {self.lock_timeout_s:g} s. "
                "Wait for the running ModelBoard command to finish and try again, or raise "
                "MODELBOARD_LOCK_TIMEOUT_S.")

    @contextmanager
    def transaction(self) -> Iterator[PgCursor]:
        from core.adapters.store import _AUDIT_HEADS

        with self._writing() as conn:
            cur = PgCursor(conn)
            _AUDIT_HEADS[id(cur)] = None
            try:
                head = None
                try:
                    with conn.transaction(), _translated_errors():
                        yield cur
                        head = _AUDIT_HEADS.get(id(cur))
                        if head is not None and self.checkpoints is not None:
                            self.checkpoints.append("intent", *head)
                        cur.close()
                finally:
                    _AUDIT_HEADS.pop(id(cur), None)
                if head is not None and self.checkpoints is not None:
                    try:
                        self.checkpoints.append("commit", *head)
                    except OSError:
                        pass  # committed already: the intent line vouches for it
            finally:
                cur.close()

    @contextmanager
    def still(self) -> Iterator[PgCursor]:
        with self._writing() as conn, closing(PgCursor(conn)) as cur:
            yield cur

    @contextmanager
    def exclusive(self, name: str, *, timeout_s: float = 60.0) -> Iterator[None]:
        busy = f"another ModelBoard process has been changing {name} for {timeout_s:g} s; try again in a minute"
        with self._shared.guard:
            local = self._shared.named.setdefault(name, threading.Lock())
        if not local.acquire(timeout=timeout_s):  # threads of this process wait without holding a connection
            raise StoreBusy(busy)
        try:
            with self._connection() as conn, self._advisory(conn, name, timeout_s, busy):
                yield
        finally:
            local.release()

    # -- schema ---------------------------------------------------------------------------------------------
    def drop_everything(self) -> None:
        with self._writing() as conn, conn.transaction():
            tables = [r[0] for r in conn.execute(OWN_TABLES["postgresql"]).fetchall()]
            for table in tables:
                conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
            for sequence in ("audit_event_seq", "alias_history_seq"):
                conn.execute(f"DROP SEQUENCE IF EXISTS {sequence}")

    def schema_version(self) -> int:
        with self.cursor() as cur:
            return current_version(cur, self.where, self.engine)

    def migrate(self, target: int | None = None) -> int:
        """Apply pending migrations (one process at a time: replicas starting together wait for each other)."""
        target = LATEST_VERSION if target is None else target
        with self._writing() as conn:
            cur = PgCursor(conn)
            try:
                for statement in POSTGRES_FUNCTIONS:
                    cur.execute(statement)
                current = current_version(cur, self.where, self.engine)
                for migration in MIGRATIONS:
                    if current < migration.version <= target:
                        _apply(conn, cur, migration)
                        current = migration.version
                return current
            finally:
                cur.close()


def _apply(conn: psycopg.Connection[Any], cur: PgCursor, migration: Migration) -> None:
    try:
        with conn.transaction():
            cur.execute(SCHEMA_VERSION_TABLE)
            if cur.execute("SELECT 1 FROM schema_version WHERE version = ?", [migration.version]).fetchone():
                return
            for statement in migration.statements:
                cur.execute(statement)
            if migration.then is not None:
                migration.then(cur)
            cur.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                        [migration.version, migration.description, utc_now()])
    except psycopg.Error as exc:
        raise StoreError(f"Migration {migration.version} ({migration.description}) failed and was rolled back: "
                         f"{str(exc).splitlines()[0]}") from exc

