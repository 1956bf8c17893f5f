"""Signed checkpoints of the audit trail (docs/decisions/0014), against an insider who edits the store file with
plain DuckDB and recomputes every hash with ModelBoard's own (public) rule, checked by `python -m core.cli audit
verify` in its own process. Signatures are cross-checked with `cryptography` directly, not through ModelBoard."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import Settings, embedded_tracking_uri, load_settings
from core.domain.audit_chain import GENESIS, row_hash
from core.errors import ConfigurationError
from core.services.audit import record_event, verify_chain
from core.services.audit_verification import mirror_checkpoint
from core.services.installation import open_store, registry_if_present
from tests.conftest import environment
from tests.core.test_audit_chain import EVENTS, verify, write_events
from tests.intruder import bare, raw_connection, store_without_log, tamper

REPO = Path(__file__).resolve().parents[2]


def rehash_from(store: Store, row_id: int) -> None:
    """What an insider who knows the hash rule does after changing rows: recompute every link from `row_id` on."""
    with raw_connection(store) as con:
        rows = con.execute("SELECT id, occurred_at, actor, action, target, model_name, model_version, "
                           "CAST(detail AS VARCHAR) FROM audit_events ORDER BY id").fetchall()
        previous = GENESIS
        for row in rows:
            if row[0] >= row_id:
                digest = row_hash(*row, prev_hash=previous)
                con.execute("UPDATE audit_events SET prev_hash = ?, row_hash = ? WHERE id = ?",
                            [previous, digest, row[0]])
                previous = digest
            else:
                previous = con.execute("SELECT row_hash FROM audit_events WHERE id = ?", [row[0]]).fetchone()[0]


def verify_here(settings: Settings) -> tuple[int, dict[str, Any]]:
    """What `audit verify` does, in this process (the CLI itself is run by the tests above and below): the same
    store opening, checkpoint log and registry, at a fraction of a process start."""
    chain = verify_chain(open_store(settings), registry_if_present(settings))
    return (0 if chain.ok else 1), chain.as_dict()


def log_lines(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(line) for line in settings.audit_log_path.read_text().splitlines()]


def public_key(settings: Settings) -> Any:
    private = serialization.load_pem_private_key(settings.audit_key_path.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return private.public_key()


def test_every_audited_transaction_is_signed_outside_the_store_from_the_first_row(store: Store,
                                                                                  settings: Settings) -> None:
    assert settings.home not in settings.audit_log_path.parents and settings.home not in settings.audit_key_path.parents
    assert oct(settings.audit_key_path.stat().st_mode & 0o777) == "0o600"
    ids = write_events(store, 2)
    lines = log_lines(settings)
    assert [(line["stage"], line["row"]) for line in lines] == [
        ("commit", 0), ("intent", ids[0]), ("commit", ids[0]), ("intent", ids[1]), ("commit", ids[1])]
    stored = {r["id"]: r["row_hash"] for r in store.query("SELECT id, row_hash FROM audit_events")}
    assert all(line["hash"] == stored[line["row"]] for line in lines[1:])
    key = public_key(settings)
    for line in lines:  # each line verifies with the key's public half, by cryptography itself
        payload = json.dumps({k: v for k, v in line.items() if k != "sig"}, sort_keys=True, separators=(",", ":"))
        key.verify(base64.b64decode(line["sig"]), payload.encode())
    code, report = verify(settings)
    assert code == 0 and report["anchored"] is True and report["checkpoint"]["row"] == ids[1], report
    assert report["checkpoint"]["n"] == len(lines)


def _delete_newest(store: Store, ids: list[int]) -> int:
    tamper(store, "DELETE FROM audit_events WHERE id = ?", [ids[-1]])
    return ids[-1]


def _cut_two_newest(store: Store, ids: list[int]) -> int:
    tamper(store, "DELETE FROM audit_events WHERE id >= ?", [ids[-2]])
    return ids[-2]


def _delete_middle_and_rehash(store: Store, ids: list[int]) -> int:
    tamper(store, "DELETE FROM audit_events WHERE id = ?", [ids[2]])
    rehash_from(store, ids[3])
    return ids[3]


def _edit_middle_and_rehash(store: Store, ids: list[int]) -> int:
    tamper(store, "UPDATE audit_events SET actor = 'mallory' WHERE id = ?", [ids[2]])
    rehash_from(store, ids[2])
    return ids[2]


def _edit_first_and_rehash(store: Store, ids: list[int]) -> int:
    tamper(store, "UPDATE audit_events SET detail = '{\"decision\":\"reject\"}' WHERE id = ?", [ids[0]])
    rehash_from(store, ids[0])
    return ids[0]


def _insert_and_rehash(store: Store, ids: list[int]) -> int:
    """A forged row in a gap of the sequence, every hash after it recomputed."""
    forged = ids[2] + 1
    tamper(store, "INSERT INTO audit_events VALUES (?, ?, 'okafor', 'signed', 'sepsis-icu v2', '{}', 'sepsis-icu', 2, "
                  "'', '')", [forged, datetime(2026, 10, 3, 8, 0)])
    rehash_from(store, forged)
    return ids[3]  # the forged row sat inside no checkpoint; the next checkpointed row no longer matches


def _reorder_and_rehash(store: Store, ids: list[int]) -> int:
    a, b = ids[1], ids[2]
    tamper(store, "WITH swap AS (SELECT * FROM audit_events WHERE id IN (?, ?)) "
                  "UPDATE audit_events SET occurred_at = s.occurred_at, actor = s.actor, action = s.action, "
                  "target = s.target, detail = s.detail FROM swap s "
                  "WHERE audit_events.id IN (?, ?) AND s.id = ? + ? - audit_events.id", [a, b, a, b, a, b])
    rehash_from(store, a)
    return a


def _rehash_everything_with_a_new_actor(store: Store, ids: list[int]) -> int:
    tamper(store, "UPDATE audit_events SET actor = 'mallory'")
    rehash_from(store, ids[0])
    return ids[0]


def _append_a_forged_row(store: Store, ids: list[int]) -> int:
    """A new newest row with a correct link: the chain alone accepts it."""
    head = store.query_one("SELECT row_hash FROM audit_events WHERE id = ?", [ids[-1]])
    assert head is not None
    forged, when = ids[-1] + 1, datetime(2026, 10, 3, 8, 0)
    digest = row_hash(forged, when, "okafor", "signed", "sepsis-icu v2", "sepsis-icu", 2, "{}",
                      prev_hash=head["row_hash"])
    tamper(store, "INSERT INTO audit_events VALUES (?, ?, 'okafor', 'signed', 'sepsis-icu v2', '{}', 'sepsis-icu', 2, "
                  "?, ?)", [forged, when, head["row_hash"], digest])
    return forged


TAMPERING = {
    "truncation: the newest row": _delete_newest,
    "truncation: the two newest rows": _cut_two_newest,
    "deletion of a middle row, rehashed": _delete_middle_and_rehash,
    "edit of a middle row, rehashed": _edit_middle_and_rehash,
    "edit of the very first row, rehashed": _edit_first_and_rehash,
    "insertion of a row, rehashed": _insert_and_rehash,
    "reordering of two rows, rehashed": _reorder_and_rehash,
    "full rehash of every row": _rehash_everything_with_a_new_actor,
    "a forged newest row": _append_a_forged_row,
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_that_keeps_the_chain_consistent_is_caught_at_its_row(store: Store, settings: Settings,
                                                                        case: str) -> None:
    ids = write_events(store, EVENTS, gap_after=3)
    first_bad = TAMPERING[case](store, ids)
    assert verify_chain(bare(store)).ok  # on its own, the chain that is left is consistent…
    code, report = verify_here(settings)  # …but the checkpoints signed outside the store are not
    assert code == 1 and report["ok"] is False and report["first_bad_row"] == first_bad, (case, report)
    assert "checkpoint" in str(report["reason"]), report


def test_a_store_with_an_empty_trail_is_anchored_and_its_first_row_protected(store: Store, settings: Settings) -> None:
    code, report = verify(settings)
    assert code == 0 and report["anchored"] is True and report["rows"] == 0 and report["checkpoint"]["row"] == 0
    ids = write_events(store, 1)
    tamper(store, "DELETE FROM audit_events")
    code, report = verify(settings)
    assert code == 1 and report["first_bad_row"] == ids[0]


@pytest.mark.parametrize("damage", ["edit a line", "delete a middle line", "delete the log", "empty the log",
                                    "re-sign with another key"])
def test_a_checkpoint_log_that_was_changed_is_itself_a_finding(store: Store, settings: Settings, damage: str) -> None:
    write_events(store, 3)
    path = settings.audit_log_path
    lines = path.read_text().splitlines(keepends=True)
    if damage == "edit a line":
        path.write_text("".join(lines[:2] + [lines[2].replace('"stage":"commit"', '"stage":"intent"')] + lines[3:]))
    elif damage == "delete a middle line":
        path.write_text("".join(lines[:2] + lines[3:]))
    elif damage == "delete the log":
        path.unlink()
    elif damage == "empty the log":
        path.write_text("")
    else:  # a forger's own key, with a correctly linked log of the same rows
        other = Ed25519PrivateKey.generate()
        secret = base64.b64encode(other.private_bytes_raw()).decode()
        forged = load_settings(env={"MODELBOARD_AUDIT_KEY": secret, "MODELBOARD_AUDIT_LOG_DIR": str(path.parent)},
                               home=settings.home)
        path.unlink()
        tamper(store, "DELETE FROM installation WHERE key = 'audit_checkpoints_started'")
        open_store(forged)  # starts a fresh log signed with the forger's key
    code, report = verify_here(settings)
    assert code == 1 and report["ok"] is False, report
    expected = {"edit a line": "does not follow", "delete a middle line": "does not follow",
                "delete the log": "missing", "empty the log": "missing", "re-sign with another key": "signed with key"}
    assert expected[damage] in str(report["reason"]), report


def test_the_mirror_in_mlflow_catches_a_log_cut_back_together_with_the_store(store: Store, settings: Settings) -> None:
    """An insider with write access to the store and the log (not the key) cuts both back consistently: only the
    checkpoint mirrored in MLflow since then can tell (docs/decisions/0014)."""
    registry = Registry(embedded_tracking_uri(settings.home))
    ids = write_events(store, 2)
    log_before = settings.audit_log_path.read_bytes()
    later = write_events(store, 2)
    mirrored = mirror_checkpoint(store, registry)
    assert mirrored is not None and mirrored.row_id == later[-1]
    tamper(store, "DELETE FROM audit_events WHERE id > ?", [ids[-1]])
    settings.audit_log_path.write_bytes(log_before)
    assert verify_chain(store).ok  # store and log agree with each other…
    code, report = verify(settings)  # …the CLI also reads the mirror in the installation's MLflow
    assert code == 1 and "cut short" in str(report["reason"]), report
    with pytest.raises(ValueError, match="cut short"):
        mirror_checkpoint(store, registry)  # and the mirror is never moved back to hide it


KILLER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from core.adapters.audit_checkpoints import CheckpointLog
    from core.config import load_settings
    from core.services.audit import record_event
    from core.services.installation import open_store, registry_if_present

    stage_to_die_at = sys.argv[2]
    append = CheckpointLog.append
    def append_then_die(self, stage, *args):
        if stage == stage_to_die_at == "commit":
            os._exit(9)  # after COMMIT, before the commit line
        line = append(self, stage, *args)
        if stage == stage_to_die_at == "intent":
            os._exit(9)  # after the intent line, before COMMIT
        return line
    CheckpointLog.append = append_then_die
    store = open_store(load_settings(home=Path(sys.argv[1])))
    with store.transaction() as cur:
        record_event(cur, actor="ng", action="signed", detail={"killed": stage_to_die_at})
""")


@pytest.mark.parametrize("stage", ["intent", "commit"])
def test_a_process_killed_around_commit_leaves_a_trail_that_still_verifies(store: Store, settings: Settings,
                                                                          stage: str) -> None:
    ids = write_events(store, 2)
    store.execute("CHECKPOINT")
    died = subprocess.run([sys.executable, "-c", KILLER, str(settings.home), stage], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=environment(settings))
    assert died.returncode == 9, died.stderr
    rows = store.query("SELECT id, detail FROM audit_events ORDER BY id")
    kept = stage == "commit"  # killed after COMMIT: the transaction is durable; before it: nothing of it is
    assert len(rows) == len(ids) + (1 if kept else 0)
    code, report = verify_here(settings)
    assert code == 0 and report["anchored"] is True, report
    assert report["checkpoint"]["row"] == rows[-1]["id"]
    assert (report["interrupted"] is None) == kept, report
    write_events(store, 1)  # and ModelBoard carries on writing after it
    assert verify_here(settings)[0] == 0


def test_a_torn_last_line_is_dropped_and_the_log_goes_on(store: Store, settings: Settings) -> None:
    write_events(store, 2)
    with settings.audit_log_path.open("a") as log:
        log.write('{"at":"2026-12-')  # a process killed in the middle of writing a line
    assert verify_here(settings)[0] == 0
    write_events(store, 1)
    assert verify_here(settings)[0] == 0
    assert all(line.endswith("}") for line in settings.audit_log_path.read_text().splitlines())


CONCURRENT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from core.config import load_settings
    from core.services.audit import record_event
    from core.services.installation import open_store, registry_if_present

    store = open_store(load_settings(home=Path(sys.argv[1])))
    for i in range(int(sys.argv[3])):
        with store.transaction() as cur:
            record_event(cur, actor=sys.argv[2], action="signed", detail={"i": i})
""")


def test_writers_in_several_processes_keep_the_trail_and_its_log_in_one_order(store: Store, settings: Settings) -> None:
    per_writer = 15
    writers = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(settings.home), f"writer{i}", str(per_writer)],
                                cwd=REPO, stderr=subprocess.PIPE, text=True, env=environment(settings))
               for i in range(3)]
    for w in writers:
        assert w.wait(timeout=300) == 0, w.stderr.read() if w.stderr else ""
    ids = [r["id"] for r in store.query("SELECT id FROM audit_events ORDER BY id")]
    assert len(ids) == 3 * per_writer
    committed = [line["row"] for line in log_lines(settings) if line["stage"] == "commit"][1:]
    assert committed == ids  # one commit line per transaction, in the chain's order
    code, report = verify_here(settings)
    assert code == 0 and report["anchored"] is True and report["checkpoint"]["row"] == ids[-1]


def test_a_key_others_can_read_is_refused_with_the_fix(settings: Settings, store: Store) -> None:
    os.chmod(settings.audit_key_path, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        open_store(settings)


@pytest.mark.parametrize("name", ["MODELBOARD_AUDIT_LOG_DIR", "MODELBOARD_AUDIT_KEY_FILE"])
def test_checkpoints_or_key_inside_the_store_folder_are_refused(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    with pytest.raises(ConfigurationError, match="inside MODELBOARD_HOME"):
        load_settings(env={name: str(home / "audit")}, home=home)


def test_a_key_from_a_secret_store_signs_and_a_malformed_one_is_refused(tmp_path: Path) -> None:
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    settings = load_settings(env={"MODELBOARD_AUDIT_KEY": base64.b64encode(seed).decode()}, home=tmp_path / "h")
    write_events(open_store(settings), 1)
    assert not settings.audit_key_path.exists()  # no key file was written
    line = log_lines(settings)[-1]
    payload = json.dumps({k: v for k, v in line.items() if k != "sig"}, sort_keys=True, separators=(",", ":"))
    Ed25519PrivateKey.from_private_bytes(seed).public_key().verify(base64.b64decode(line["sig"]), payload.encode())
    with pytest.raises(ConfigurationError, match="MODELBOARD_AUDIT_KEY is not"):
        open_store(load_settings(env={"MODELBOARD_AUDIT_KEY": "not a key"}, home=tmp_path / "h"))


def test_an_existing_trail_is_adopted_once_and_a_log_lost_later_is_a_finding(settings: Settings) -> None:
    legacy = store_without_log(settings)  # a store written before checkpoints existed
    settings.home.mkdir(parents=True)
    legacy.migrate()
    ids = write_events(legacy, 3)
    code, report = verify(settings)  # the first ModelBoard command of the upgrade signs the present head
    assert code == 0 and report["checkpoint"]["row"] == ids[-1] and report["checkpoint"]["n"] == 1
    settings.audit_log_path.unlink()
    code, report = verify(settings)  # …and never again: a lost log is not a fresh start
    assert code == 1 and "missing" in str(report["reason"])


def test_verify_says_plainly_when_nothing_anchors_the_trail(settings: Settings) -> None:
    legacy = store_without_log(settings)
    settings.home.mkdir(parents=True)
    legacy.migrate()
    with legacy.transaction() as cur:
        record_event(cur, actor="ng", action="signed")
    result = verify_chain(legacy)
    assert result.ok and not result.anchored and "NOT anchored" in result.sentence
