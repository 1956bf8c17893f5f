"""Sign-off and the audit trail on the demo `bench/run.sh` built (with v2 evaluated): the time of each
signature on the path to production; what signing a checkpoint costs each audited write (docs/decisions/0014);
and `audit verify` on the demo's trail and on copies padded to 20,000 and 200,000 rows with their signed
checkpoint logs, against the chain's floor (SHA-256 of the same canonical texts, nothing else).
Measured, never asserted.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

from core.adapters.audit_checkpoints import CheckpointLog
from core.adapters.store import DuckDBStore, Store
from core.config import load_settings
from core.domain.audit_chain import row_hash
from core.domain.audit_checkpoint import next_checkpoint, parse_line, signed
from core.services import model_card, signoff
from core.services.audit import record_event, verify_chain
from core.services.audit_verification import mirror_checkpoint
from core.services.auth import get_user
from core.services.demo import DEMO_USERS
from core.services.installation import open_registry, open_store

MODEL, VERSION = "sepsis-icu", 2
PASSWORDS = {u: p for u, _n, _r, p in DEMO_USERS}
ROWS = "SELECT id, occurred_at, actor, action, target, model_name, model_version, CAST(detail AS VARCHAR), " \
       "prev_hash, row_hash FROM audit_events ORDER BY id"


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def sign_path(settings) -> list[tuple[str, float, str]]:  # type: ignore[no-untyped-def]
    """Lee fills the card, Patel accepts the failed criteria, Ng, Okafor and Diaz approve."""
    store, registry = open_store(settings), open_registry(settings)
    model_card.save_narratives(store, get_user(store, "lee"), MODEL, VERSION,
                               {"update_schedule": "Reviewed yearly; retrained when monitoring shows degradation."})
    out = []
    for username, decision in (("patel", "accept_exception"), ("ng", "approve"), ("okafor", "approve"),
                               ("diaz", "approve")):
        signer = get_user(store, username)
        state = signoff.sign_off_state(store, registry, signer, MODEL, VERSION)
        request = signoff.SignatureRequest(MODEL, VERSION, decision, "approved for clinical use in adult ICU",
                                           "Reviewed the card, fairness and the comparison with production.",
                                           username, PASSWORDS[username], state.evidence.card_sha256,
                                           state.evidence.evaluation_id, state.failed_criteria
                                           if decision == "accept_exception" else ())
        if decision == "accept_exception":
            _sig, seconds = timed(lambda s=signer, r=request: signoff.accept_exception(settings, store, registry, s, r))
            out.append((f"{username}: exception", seconds, ""))
        else:
            (_sig, promoted), seconds = timed(lambda s=signer, r=request: signoff.sign(settings, store, registry, s, r))
            out.append((f"{username}: approval", seconds, "promoted to production" if promoted else ""))
    return out


def padded_copy(settings, rows: int, folder: Path) -> Store:  # type: ignore[no-untyped-def]
    """The demo's store and checkpoint log copied and padded with chained login rows up to `rows`, hashed by the
    chain's own rule and inserted in one go, with an intent and a commit line signed for every second row (two-row
    transactions: denser than the demo's). record_event's one row at a time would take minutes; it is not what is
    measured here."""
    path = folder / f"governance-{rows}.duckdb"
    shutil.copy(settings.store_path, path)
    log = CheckpointLog(folder / f"checkpoints-{rows}.jsonl", open_store(settings).checkpoints.key)
    shutil.copy(settings.audit_log_path, log.path)
    store = DuckDBStore(path, checkpoints=log)
    last = store.query_one("SELECT id, row_hash, occurred_at FROM audit_events ORDER BY id DESC LIMIT 1")
    previous, first = last["row_hash"], int(last["id"]) + 1
    have = int(store.query_one("SELECT count(*) AS n FROM audit_events")["n"])
    records, line = [], log.read()[-1]
    checkpoint, lines = parse_line(line, "bench"), []
    for i in range(first, first + rows - have):
        at = last["occurred_at"] + timedelta(seconds=i - first + 1)
        digest = row_hash(i, at, "ng", "login_succeeded", None, None, None, "{}", prev_hash=previous)
        records.append((i, at, "ng", "login_succeeded", None, "{}", None, None, previous, digest))
        previous = digest
        if (i - first) % 2 == 1 or i == first + rows - have - 1:
            for stage in ("intent", "commit"):
                checkpoint = next_checkpoint(checkpoint, stage, i, digest, at, log.key.key_id)  # type: ignore[arg-type]
                checkpoint = signed(checkpoint, log.key.sign(checkpoint.payload()))
                lines.append(checkpoint.line())
    with log.path.open("a") as out:
        out.write("".join(f"{text}\n" for text in lines))
    padding = pd.DataFrame(records, columns=["id", "occurred_at", "actor", "action", "target", "detail",
                                             "model_name", "model_version", "prev_hash", "row_hash"])
    with store.transaction() as cur:
        cur.register("padding", padding)
        cur.execute("INSERT INTO audit_events (id, occurred_at, actor, action, target, detail, model_name, "
                    "model_version, prev_hash, row_hash) SELECT * FROM padding")
    return store


def checkpoint_cost(settings, folder: Path, writes: int = 300) -> None:  # type: ignore[no-untyped-def]
    """The same audited writes (one login row per transaction) on a copy of the demo's store, without and with the
    checkpoint log; and one MLflow mirror write, which is why the mirror is not written per transaction."""
    path = folder / "governance-writes.duckdb"
    shutil.copy(settings.store_path, path)
    log = CheckpointLog(folder / "checkpoints-writes.jsonl", open_store(settings).checkpoints.key)
    shutil.copy(settings.audit_log_path, log.path)
    seconds = {}
    for name, store in (("without", DuckDBStore(path)), ("with", DuckDBStore(path, checkpoints=log))):
        with store.cursor():  # the file stays open, as in a busy server: what is timed is the write itself
            started = time.perf_counter()
            for _ in range(writes):
                with store.transaction() as cur:
                    record_event(cur, actor="ng", action="login_succeeded")
            seconds[name] = (time.perf_counter() - started) / writes * 1000
    registry = open_registry(settings)
    newest = mirror_checkpoint(open_store(settings), registry)
    assert newest is not None
    _none, mirror_s = timed(lambda: registry.set_audit_checkpoint_mirror(newest.line()))  # the tag write itself
    print("| audited writes | ms per write, no checkpoints | ms per write, signed checkpoints | checkpoint cost "
          "| MLflow mirror (one write) |\n|---|---|---|---|---|")
    print(f"| {writes} | {seconds['without']:.2f} | {seconds['with']:.2f} | "
          f"{seconds['with'] - seconds['without']:.2f} ms | {mirror_s * 1000:.0f} ms |")


def floor_seconds(store: Store) -> float:
    """Reading the same rows and hashing the same canonical texts, with no checks: the least any chain costs."""
    with store.cursor() as cur:
        started = time.perf_counter()
        for row in cur.execute(ROWS).fetchall():
            row_hash(*row[:8], prev_hash=row[8])
        return time.perf_counter() - started


def main() -> None:
    settings = load_settings()
    print("| signature | seconds | outcome |\n|---|---|---|")
    for who, seconds, outcome in sign_path(settings):
        print(f"| {who} | {seconds:.2f} | {outcome} |")
    registry = open_registry(settings)
    with tempfile.TemporaryDirectory() as folder:
        print()
        checkpoint_cost(settings, Path(folder))
        print("\n| audit rows | checkpoint lines | verify (chain + checkpoints) | verify (+ MLflow anchors and mirror) "
              "| anchors | hashing floor | ok, anchored |")
        print("|---|---|---|---|---|---|---|")
        demo_rows = int(open_store(settings).query_one("SELECT count(*) AS n FROM audit_events")["n"])
        for rows in (demo_rows, 20_000, 200_000):
            store = open_store(settings) if rows == demo_rows else padded_copy(settings, rows, Path(folder))
            chain, alone = timed(lambda: verify_chain(store))  # noqa: B023 - called at once
            anchored, both = timed(lambda: verify_chain(store, registry))  # noqa: B023 - called at once
            lines = len(store.checkpoints.read()) if store.checkpoints else 0
            print(f"| {chain.rows:,} | {lines:,} | {alone:.2f} s | {both:.2f} s | {anchored.anchors} | "
                  f"{floor_seconds(store):.2f} s | {chain.ok and anchored.ok}, {chain.anchored} |")


if __name__ == "__main__":
    main()
