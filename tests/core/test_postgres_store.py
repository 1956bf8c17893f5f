"""The governance store on a real PostgreSQL server: what differs from the DuckDB file (locks, refusals, the
dialect), and moving a pilot's DuckDB store into PostgreSQL with its audit trail intact. Everything else about
the store runs on both engines through the parametrised `settings` fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.adapters.dialect import to_postgres
from core.adapters.migrations import LATEST_VERSION
from core.adapters.postgres import PostgresStore, without_password
from core.adapters.store import DuckDBStore
from core.adapters.store_copy import copy_store
from core.config import load_settings
from core.errors import ConfigurationError, Conflict, SchemaTooNew, StoreBusy, StoreCorrupt, StoreError, ValidationError
from core.services.audit import record_event, verify_chain
from core.services.installation import open_store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(postgres: Any) -> str:
    return str(postgres.new_database())


@pytest.mark.parametrize("shared,postgres_sql", [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT '?' AS q FROM t WHERE b LIKE 'x%' AND c = ?", "SELECT '?' AS q FROM t WHERE b LIKE 'x%%' AND c = %s"),
    ("SELECT CAST(a AS DOUBLE) FROM t WHERE b = ?", "SELECT CAST(a AS DOUBLE PRECISION) FROM t WHERE b = %s"),
    ("CREATE TABLE t (detail JSON, x DOUBLE)", "CREATE TABLE t (detail TEXT, x DOUBLE PRECISION)"),
    ("SELECT json_extract(detail, '$.JSON') FROM t", "SELECT json_extract(detail, '$.JSON') FROM t"),
])
def test_the_shared_dialect_becomes_postgresql_only_where_the_two_differ(shared: str, postgres_sql: str) -> None:
    has_params = "?" in shared.replace("'?'", "")
    assert to_postgres(shared, has_params=has_params) == postgres_sql


def test_a_fresh_database_gets_every_migration_and_json_reads_like_duckdb(url: str) -> None:
    store = PostgresStore(url)
    assert store.migrate() == LATEST_VERSION
    assert store.migrate() == LATEST_VERSION  # idempotent
    with store.transaction() as cur:
        record_event(cur, actor="ng", action="signed", detail={"what": "card", "n": 2, "dotted.key": None})
    row = store.query_one("SELECT json_extract_string(detail, '$.what') AS what, "
                          "CAST(json_extract(detail, '$.n') AS DOUBLE) AS n, "
                          "json_extract(detail, '$.\"dotted.key\"') AS missing FROM audit_events")
    assert row == {"what": "card", "n": 2.0, "missing": None}


def test_a_database_with_other_tables_is_refused_not_migrated(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE patients (id integer)")
    with pytest.raises(StoreCorrupt, match="not a ModelBoard governance store"):
        PostgresStore(url).migrate()


def test_a_newer_schema_is_refused(url: str) -> None:
    store = PostgresStore(url)
    store.migrate()
    store.execute("INSERT INTO schema_version VALUES (?, 'from the future', now())", [LATEST_VERSION + 3])
    with pytest.raises(SchemaTooNew, match="newer ModelBoard"):
        PostgresStore(url).migrate()


def test_a_repeated_unique_row_is_a_conflict_and_nothing_of_its_transaction_is_kept(url: str) -> None:
    store = PostgresStore(url)
    store.migrate()
    store.execute("INSERT INTO installation VALUES ('site', 'north')")
    with pytest.raises(Conflict), store.transaction() as cur:
        cur.execute("INSERT INTO installation VALUES ('other', 'x')")
        cur.execute("INSERT INTO installation VALUES ('site', 'south')")
    assert store.query("SELECT key, value FROM installation ORDER BY key") == [{"key": "site", "value": "north"}]


HOLDER = textwrap.dedent("""
    import sys, time
    from core.adapters.postgres import PostgresStore
    store = PostgresStore(sys.argv[1])
    with store.transaction() as cur:
        cur.execute("INSERT INTO installation VALUES ('holder', 'done')")
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _hold_writer(url: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(seconds)], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_writer_waits_for_another_process_then_succeeds(url: str) -> None:
    store = PostgresStore(url)
    store.migrate()
    holder = _hold_writer(url, 1.0)
    store.execute("INSERT INTO installation VALUES ('waiter', 'done')")
    assert holder.wait(timeout=30) == 0
    assert {r["key"] for r in store.query("SELECT key FROM installation")} >= {"holder", "waiter"}


def test_a_writer_held_up_too_long_is_told_busy_and_writes_nothing(url: str) -> None:
    PostgresStore(url).migrate()
    holder = _hold_writer(url, 3.0)
    impatient = PostgresStore(url, lock_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(StoreBusy, match="stayed locked by another process for 0.5 s"):
        impatient.execute("INSERT INTO installation VALUES ('lost', 'never')")
    assert time.monotonic() - started < 3.0
    assert holder.wait(timeout=30) == 0
    assert impatient.query("SELECT * FROM installation WHERE key = 'lost'") == []


def test_an_unreachable_server_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    url = "postgresql://modelboard:s3cret@127.0.0.1:9/governance"  # port 9 (discard): nothing listens
    store = PostgresStore(url, lock_timeout_s=2)
    with pytest.raises(StoreError) as caught:
        store.migrate()
    assert "127.0.0.1:9/governance" in str(caught.value) and "s3cret" not in str(caught.value)
    assert without_password(url) == "postgresql://modelboard:***@127.0.0.1:9/governance"


def test_a_url_that_is_not_postgresql_is_refused_with_an_example(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"postgresql://user:password@host:5432/database"):
        load_settings(env={"MODELBOARD_DATABASE_URL": "mysql://root:pw@db/x"}, home=tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env={"MODELBOARD_DATABASE_URL": "mysql://root:pw@db/x"}, home=tmp_path)
    assert "pw" not in str(caught.value).replace("password", "")


def test_a_pilots_store_moves_into_postgresql_with_its_trail_verified(tmp_path: Path, url: str) -> None:
    pilot = load_settings(env={}, home=tmp_path / "home")
    source = open_store(pilot)
    for i in range(5):
        with source.transaction() as cur:
            record_event(cur, actor="ng", action="signed", model="sepsis-icu", version=2, detail={"i": i, "x": "ü"})
    source.execute("INSERT INTO prediction_log VALUES ('m', 1, 'e1', now(), 0.25, true, '{\"a\": null}', NULL, now())")
    target = PostgresStore(url)
    target.migrate()
    copied = copy_store(source, target)
    assert copied.rows["audit_events"] == 5 and copied.rows["prediction_log"] == 1
    assert verify_chain(target).ok and verify_chain(target).head == verify_chain(source).head
    moved = open_store(load_settings(env={"MODELBOARD_DATABASE_URL": url}, home=pilot.home))  # the same checkpoints
    with moved.transaction() as cur:
        new_id = record_event(cur, actor="okafor", action="signed")
    assert new_id == 6  # the sequence goes on after the copied rows
    chain = verify_chain(moved)
    assert chain.ok and chain.anchored and chain.rows == 6
    with pytest.raises(ValidationError, match="already holds rows"):
        copy_store(DuckDBStore(pilot.store_path), moved)
