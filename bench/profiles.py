"""Embedded (DuckDB) against hospital (PostgreSQL) on the same demo, in one run: the governance store of the demo
`bench/run.sh` built is copied into a fresh PostgreSQL database (copy_store, the tool a pilot moves with; the
MLflow store is the same for both), then each operation is timed on each profile. Measured, never asserted;
issue 15's target is the hospital profile within 2x of the embedded one on every row.

Rows: a submission end to end (`core.cli submit`, its own process), one signature (a "request changes", which
writes a signature and its audit row and moves nothing), 50 signatures at once from 50 threads of one process
(Streamlit sessions of one server), and `audit verify` over 200,000 chained rows with their signed checkpoints.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.signoff import padded_copy
from core.adapters.postgres import PostgresStore
from core.adapters.store import Store
from core.adapters.store_copy import copy_store
from core.config import Settings, as_environment, load_settings
from core.domain.access import command_line_operator
from core.services import signoff
from core.services.audit import verify_chain
from core.services.auth import add_user, get_user
from core.services.installation import open_registry, open_store
from tests.postgres_server import PostgresServer

MODEL, VERSION = "sepsis-icu", 2
PASSWORD = "bench signing password"
SIGNERS = 50


def hospital_twin(embedded: Settings, server: PostgresServer, folder: Path) -> Settings:
    """The same installation with its governance store moved into PostgreSQL (its own checkpoint log copy)."""
    url = server.new_database("bench")
    target = PostgresStore(url)
    target.migrate()
    copy_store(open_store(embedded), target)
    audit = folder / "hospital-audit"
    audit.mkdir()
    shutil.copy(embedded.audit_log_path, audit / "checkpoints.jsonl")
    return replace(embedded, database_url=url, audit_log_dir=audit)


def submit_seconds(settings: Settings) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELBOARD_", "MLFLOW_"))}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core.cli", "submit", "--model", MODEL, "--version", str(VERSION),
                           "--json"], env=env | as_environment(settings), capture_output=True, text=True)
    assert done.returncode in (0, 3), done.stderr
    return time.perf_counter() - started


def _request(settings: Settings, store: Store, username: str) -> signoff.SignatureRequest:
    state = signoff.sign_off_state(store, open_registry(settings), get_user(store, username), MODEL, VERSION)
    return signoff.SignatureRequest(MODEL, VERSION, "request_changes", "changes requested before clinical use",
                                    "The benchmark asks for changes: nothing moves, a signature is written.",
                                    username, PASSWORD, state.evidence.card_sha256, state.evidence.evaluation_id)


def one_signature_seconds(settings: Settings) -> float:
    store, registry = open_store(settings), open_registry(settings)
    request = _request(settings, store, "bench-000")
    started = time.perf_counter()
    signoff.sign(settings, store, registry, get_user(store, "bench-000"), request)
    return time.perf_counter() - started


def concurrent_signatures(settings: Settings) -> tuple[float, int]:
    """50 threads sign at once (released by a barrier); the seconds until the last answer, and the errors."""
    store, registry = open_store(settings), open_registry(settings)
    names = [f"bench-{i:03d}" for i in range(1, SIGNERS + 1)]
    requests = {u: _request(settings, store, u) for u in names}
    users = {u: get_user(store, u) for u in names}
    barrier, errors = threading.Barrier(len(names) + 1), []

    def session(username: str) -> None:
        barrier.wait()
        try:
            signoff.sign(settings, store, registry, users[username], requests[username])
        except Exception as exc:  # noqa: BLE001 - counted and printed
            errors.append(repr(exc))

    threads = [threading.Thread(target=session, args=(u,)) for u in names]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, len(errors)


def add_signers(settings: Settings) -> None:
    store, admin = open_store(settings), command_line_operator("bench")
    for i in range(SIGNERS + 1):
        add_user(store, admin, username=f"bench-{i:03d}", full_name=f"Dr. Bench {i}", role="clinician",
                 password=PASSWORD)


def verify_seconds(store: Store) -> tuple[float, bool]:
    started = time.perf_counter()
    result = verify_chain(store)
    return time.perf_counter() - started, result.ok


def _shown(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main() -> None:
    embedded = load_settings()
    server = PostgresServer().start()
    folder = Path(tempfile.mkdtemp(prefix="modelboard-bench-profiles-"))
    try:
        hospital = hospital_twin(embedded, server, folder)
        rows: list[tuple[str, Any, Any]] = []
        rows.append(("submission of sepsis-icu v2 again, end to end (s)", submit_seconds(embedded),
                     submit_seconds(hospital)))
        for settings in (embedded, hospital):
            add_signers(settings)
        rows.append(("one signature (s)", one_signature_seconds(embedded), one_signature_seconds(hospital)))
        (e_s, e_err), (h_s, h_err) = concurrent_signatures(embedded), concurrent_signatures(hospital)
        rows.append((f"{SIGNERS} signatures at once, one process (s)", e_s, h_s))
        rows.append(("  of which failed (busy, try again)", e_err, h_err))
        padded = padded_copy(embedded, 200_000, folder)
        pg_padded = PostgresStore(server.new_database("bench200k"), checkpoints=padded.checkpoints)
        pg_padded.migrate()
        copy_store(padded, pg_padded)
        (e_v, e_ok), (h_v, h_ok) = verify_seconds(padded), verify_seconds(pg_padded)
        rows.append((f"audit verify, 200,000 rows (s; intact: {e_ok}/{h_ok})", e_v, h_v))
        print("| operation | embedded (DuckDB) | hospital (PostgreSQL) | hospital / embedded |\n|---|---|---|---|")
        for name, e, h in rows:
            ratio = f"{h / e:.2f}x" if isinstance(e, float) and e > 0 else "—"
            print(f"| {name} | {_shown(e)} | {_shown(h)} | {ratio} |")
        print("Page first renders and two app replicas are not in this table yet (issue 15 continues).")
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
