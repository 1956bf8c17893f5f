"""The governance store: migrations, refusals, transactions, threads and processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from core.adapters.migrations import LATEST_VERSION
from core.adapters.store import DuckDBStore, Store
from core.config import Settings
from core.errors import SchemaTooNew, StoreBusy, StoreCorrupt
from tests.conftest import environment

REPO = Path(__file__).resolve().parents[2]


def tables(store: Store) -> set[str]:
    return {r["table_name"] for r in store.query("SELECT table_name FROM information_schema.tables")}


def test_fresh_store_gets_every_migration(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "g.duckdb")
    assert store.migrate() == LATEST_VERSION
    assert {"schema_version", "users", "audit_events", "installation", "prediction_log"} <= tables(store)
    versions = [r["version"] for r in store.query("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, LATEST_VERSION + 1))


def test_upgrade_keeps_existing_rows(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "g.duckdb")
    assert store.migrate(target=1) == 1
    assert "prediction_log" not in tables(store)
    store.execute("INSERT INTO installation VALUES ('site', 'ICU north')")
    assert store.migrate() == LATEST_VERSION
    assert "prediction_log" in tables(store)
    assert store.query("SELECT value FROM installation WHERE key = 'site'") == [{"value": "ICU north"}]
    assert store.migrate() == LATEST_VERSION  # idempotent


def test_newer_schema_is_refused_not_recreated(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "g.duckdb")
    store.migrate()
    store.execute("INSERT INTO schema_version VALUES (?, 'from the future', now())", [LATEST_VERSION + 5])
    with pytest.raises(SchemaTooNew, match=rf"schema version {LATEST_VERSION + 5}.*newer ModelBoard"):
        DuckDBStore(tmp_path / "g.duckdb").migrate()
    assert store.query("SELECT count(*) AS n FROM schema_version")[0]["n"] == LATEST_VERSION + 1


def test_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "g.duckdb"
    path.write_bytes(b"this is not a database\n" * 500)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StoreCorrupt, match="will not overwrite"):
        DuckDBStore(path).migrate()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE patients (id INTEGER)")
    con.close()
    with pytest.raises(StoreCorrupt, match="not a ModelBoard governance store"):
        DuckDBStore(path).migrate()


def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction() as cur:
            cur.execute("INSERT INTO installation VALUES ('a', '1')")
            raise RuntimeError("half-way failure")
    assert store.query("SELECT * FROM installation WHERE key = 'a'") == []


def test_threads_share_the_file_and_release_it(store: Store) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(10):
                store.execute("INSERT INTO installation VALUES (?, ?)", [f"t{i}-{j}", "x"])
                store.query("SELECT count(*) FROM installation")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.query("SELECT count(*) AS n FROM installation WHERE value = 'x'")[0]["n"] == 80
    if not isinstance(store, DuckDBStore):
        return
    # No unit of work is running, so another process can open the file now.
    probe = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(store.path)!r}).close()"],
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.execute("INSERT INTO installation VALUES ('holder', 'done')")
    con.close()
    """
)


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.embedded_only  # DuckDB's file lock and connection settings; PostgreSQL's: test_postgres_store
def test_writer_waits_for_another_process_then_succeeds(store: Store) -> None:
    holder = _hold_lock(store.path, 1.0)
    store.execute("INSERT INTO installation VALUES ('waiter', 'done')")
    holder.wait(timeout=30)
    keys = {r["key"] for r in store.query("SELECT key FROM installation")}
    assert {"holder", "waiter"} <= keys


@pytest.mark.embedded_only  # DuckDB's file lock and connection settings; PostgreSQL's: test_postgres_store
def test_lock_held_too_long_gives_a_clear_error(store: Store) -> None:
    holder = _hold_lock(store.path, 3.0)
    impatient = DuckDBStore(store.path, lock_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(StoreBusy, match="stayed locked by another process"):
        impatient.execute("INSERT INTO installation VALUES ('lost', 'never')")
    assert time.monotonic() - started < 3.0
    holder.wait(timeout=30)
    assert store.query("SELECT * FROM installation WHERE key = 'lost'") == []


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from core.config import load_settings
    from core.services.installation import open_store
    store = open_store(load_settings(home=Path(sys.argv[2])))
    for i in range(40):
        store.execute("INSERT INTO installation VALUES (?, ?)", [f"{sys.argv[3]}-{i}", "x"])
    """
)


def test_two_processes_writing_at_once_lose_nothing(store: Store, settings: Settings) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(REPO), str(settings.home), name],
                              env=environment(settings) | {"MODELBOARD_LOCK_TIMEOUT_S": "60"})
             for name in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert store.query("SELECT count(*) AS n FROM installation WHERE value = 'x'")[0]["n"] == 80


def test_two_store_objects_of_one_file_share_one_connection_and_one_writer(tmp_path: Path) -> None:
    """Eight threads, each with its own Store of the same file, append audit rows at once: every write
    lands and the hash chain stays one line (no fork from two writers reading the same last row)."""

    from core.services.audit import record_event, verify_chain

    path = tmp_path / "g.duckdb"
    DuckDBStore(path).migrate()
    errors: list[str] = []

    def append() -> None:
        store = DuckDBStore(path)
        for _ in range(20):
            try:
                with store.transaction() as cur:
                    record_event(cur, actor="t", action="x")
                store.query("SELECT count(*) FROM audit_events")
            except Exception as exc:  # noqa: BLE001 - every failure is collected and reported
                errors.append(repr(exc))

    threads = [threading.Thread(target=append) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    chain = verify_chain(DuckDBStore(path))
    assert chain.ok and chain.rows == 160


@pytest.mark.embedded_only  # DuckDB's connection settings; PostgreSQL's are the database's own roles
@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_csv('{outside}')",
    "COPY (SELECT * FROM users) TO '{copy}'",
    "ATTACH '{attach}' AS elsewhere",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "SET lock_configuration = false",
    "INSTALL httpfs",
    "LOAD httpfs",
])
def test_the_governance_connection_is_locked_down(store: Store, tmp_path: Path, statement: str) -> None:
    """Whoever gets a statement into the governance connection cannot read or write files outside the store's
    folder, fetch or load an extension, or undo those settings (docs/decisions/0001)."""
    outside = tmp_path / "outside.csv"
    outside.write_text("mrn,name\n123,Jane Doe\n")
    sql = statement.format(outside=outside, copy=tmp_path / "users.csv", attach=tmp_path / "other.duckdb")
    with pytest.raises(duckdb.Error, match="disabled|locked|Permission"), store.cursor() as cur:
        cur.execute(sql)
    assert not (tmp_path / "users.csv").exists() and not (tmp_path / "other.duckdb").exists()
    inside = store.path.parent / "inside.csv"
    inside.write_text("a\n1\n")
    with store.cursor() as cur:  # the store's own folder stays readable: ModelBoard's own files live there
        assert cur.execute(f"SELECT a FROM read_csv('{inside}')").fetchall() == [(1,)]  # noqa: S608 - a test path
