"""What an insider with direct access to the governance store does: plain SQL on its own connection (a DuckDB
connection to the file, or a psycopg one to the database), no ModelBoard code, the connection closed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import psycopg

from core.adapters.postgres import PostgresStore
from core.adapters.store import DuckDBStore, Store


class _Plain:
    """`execute(sql, params).fetchall()` with `?` placeholders on either engine."""

    def __init__(self, store: Store) -> None:
        self.pg = isinstance(store, PostgresStore)
        self.conn: Any = (psycopg.connect(store.url, autocommit=True, cursor_factory=psycopg.ClientCursor)
                          if isinstance(store, PostgresStore) else duckdb.connect(str(store.path)))  # type: ignore[attr-defined]

    def execute(self, sql: str, params: list[Any] | None = None) -> Any:
        if self.pg:
            return self.conn.execute(sql.replace("?", "%s"), params or None)
        return self.conn.execute(sql, params or [])


@contextmanager
def raw_connection(store: Store) -> Iterator[_Plain]:
    plain = _Plain(store)
    try:
        yield plain
    finally:
        plain.conn.close()


def tamper(store: Store, sql: str, params: list[object] | None = None) -> None:
    with raw_connection(store) as con:
        con.execute(sql, params)


def bare(store: Store) -> Store:
    """The same store opened without its checkpoint log (what the chain alone can tell)."""
    if isinstance(store, PostgresStore):
        return PostgresStore(store.url)
    assert isinstance(store, DuckDBStore)
    return DuckDBStore(store.path)


def store_without_log(settings: Any) -> Store:
    """The settings' store opened as a ModelBoard from before the checkpoint log would (no log written)."""
    if settings.database_url is not None:
        return PostgresStore(settings.database_url)
    return DuckDBStore(settings.store_path)
