"""Moving a governance store to PostgreSQL: a pilot on DuckDB becomes a hospital installation, its history intact.

Every table is copied row for row (the audit chain's text, ids and hashes unchanged, so `audit verify` and the
signed checkpoints still vouch for it), into a PostgreSQL database that ModelBoard has migrated and nothing
has written yet; the sequences continue after the copied ids. All in one transaction: a failure leaves the
target as empty as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.adapters.dialect import OWN_TABLES
from core.adapters.postgres import PostgresStore
from core.adapters.store import Store
from core.errors import ValidationError

SEQUENCES = {"audit_event_seq": ("audit_events", "id"), "alias_history_seq": ("alias_history", "id")}


@dataclass(frozen=True)
class StoreCopy:
    source: str
    target: str
    rows: dict[str, int]


def copy_store(source: Store, target: PostgresStore) -> StoreCopy:
    """Copy every row of `source` into the empty, migrated `target`."""
    if source.schema_version() != target.schema_version():
        raise ValidationError(f"the store at {source.where} has schema version {source.schema_version()} and the "
                              f"one at {target.where} {target.schema_version()}: open both with this ModelBoard "
                              "first (it migrates them), then copy")
    tables = sorted(t for t in _tables(source) if t != "schema_version")
    copied: dict[str, int] = {}
    with target.transaction() as cur:
        for table in tables:
            if cur.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]:  # noqa: S608 - names from the schema
                raise ValidationError(f"the PostgreSQL store at {target.where} already holds rows in {table}: "
                                      "copy only into a new, empty database")
        for table in tables:
            with source.cursor() as read:
                result = read.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the schema
                columns = [d[0] for d in result.description]
                rows = [tuple(r) for r in result.fetchall()]
            cur.copy_rows(table, columns, rows)
            copied[table] = len(rows)
        for sequence, (table, column) in SEQUENCES.items():
            cur.execute(f'SELECT setval(\'{sequence}\', coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, '  # noqa: S608
                        "false)")
    return StoreCopy(source.where, target.where, copied)


def _tables(store: Store) -> list[str]:
    with store.cursor() as cur:
        return [row[0] for row in cur.execute(OWN_TABLES[store.engine]).fetchall()]
