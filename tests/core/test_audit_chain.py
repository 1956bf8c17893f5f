"""The audit trail's hash chain against real tampering: plain DuckDB edits to the store file, then
`python -m core.cli audit verify` in its own process, as an auditor's cron job would run it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.adapters.store import DuckDBStore, Store
from core.config import Settings
from core.domain.audit_chain import (
    GENESIS,
    AuditAnchor,
    canonical_content,
    parse_anchor,
    reference_canonical_content,
    row_hash,
    verify_rows,
)
from core.services.audit import record_event, verify_chain
from tests.core.test_cli import cli
from tests.intruder import bare, tamper

EVENTS = 6


def write_events(store: Store, count: int = EVENTS, *, gap_after: int | None = None) -> list[int]:
    """`count` chained events about sepsis-icu v2, each in its own transaction; with `gap_after`, one id is
    skipped after that many events (as a rolled-back writer leaves one), for a forger to fill."""
    ids = []
    for i in range(count):
        with store.transaction() as cur:
            ids.append(record_event(cur, actor="ng", action="signed", model="sepsis-icu", version=2,
                                    detail={"decision": "approve", "n": i}))
            if gap_after is not None and i + 1 == gap_after:
                cur.execute("SELECT nextval('audit_event_seq')")
    return ids




def verify(settings: Settings) -> tuple[int, dict[str, object]]:
    result = cli(settings, "audit", "verify", "--json", "--home", str(settings.home))
    return result.returncode, json.loads(result.stdout)


def row_count(store: Store) -> int:
    row = store.query_one("SELECT count(*) AS n FROM audit_events")
    return int(row["n"]) if row else 0


def test_untampered_trail_verifies(store: Store, settings: Settings) -> None:
    write_events(store)
    code, report = verify(settings)
    assert code == 0
    assert report["ok"] is True and report["first_bad_row"] is None and report["reason"] is None
    assert report["rows"] == row_count(store) == EVENTS
    assert report["head"] == store.query("SELECT row_hash FROM audit_events ORDER BY id DESC LIMIT 1")[0]["row_hash"]


@pytest.mark.parametrize("column,value", [
    ("actor", "mallory"),
    ("action", "login_succeeded"),
    ("model_version", 3),
    ("occurred_at", datetime(2026, 1, 1, 9, 0)),
])
def test_editing_a_column_is_caught_at_that_row(store: Store, settings: Settings, column: str, value: object) -> None:
    ids = write_events(store)
    tamper(store, f"UPDATE audit_events SET {column} = ? WHERE id = ?", [value, ids[2]])  # noqa: S608 - fixed names
    code, report = verify(settings)
    assert code == 1 and report["ok"] is False
    assert report["first_bad_row"] == ids[2]
    assert "edited" in str(report["reason"])


@pytest.mark.parametrize("detail", ['{"decision":"reject","n":1}', '{"decision": "approve", "n": 1} '])
def test_editing_the_detail_json_is_caught_even_when_only_its_spacing_changes(store: Store, settings: Settings,
                                                                             detail: str) -> None:
    ids = write_events(store)
    tamper(store, "UPDATE audit_events SET detail = ? WHERE id = ?", [detail, ids[1]])
    code, report = verify(settings)
    assert code == 1 and report["first_bad_row"] == ids[1]
    assert "content of row" in str(report["reason"]) and "edited" in str(report["reason"])


def test_deleting_a_middle_row_is_caught_at_the_next_row(store: Store, settings: Settings) -> None:
    ids = write_events(store)
    tamper(store, "DELETE FROM audit_events WHERE id = ?", [ids[3]])
    code, report = verify(settings)
    assert code == 1 and report["first_bad_row"] == ids[4]
    assert "deleted" in str(report["reason"])
    assert report["rows"] == EVENTS - 1


def test_swapping_two_rows_content_to_reorder_them_is_caught(store: Store, settings: Settings) -> None:
    ids = write_events(store)
    a, b = ids[1], ids[2]
    tamper(store, "WITH swap AS (SELECT * FROM audit_events WHERE id IN (?, ?)) "
                  "UPDATE audit_events SET occurred_at = s.occurred_at, actor = s.actor, action = s.action, "
                  "target = s.target, detail = s.detail, model_name = s.model_name, model_version = s.model_version, "
                  "prev_hash = s.prev_hash, row_hash = s.row_hash FROM swap s "
                  "WHERE audit_events.id IN (?, ?) AND s.id = ? + ? - audit_events.id", [a, b, a, b, a, b])
    code, report = verify(settings)
    assert code == 1 and report["first_bad_row"] == a
    assert "reordered" in str(report["reason"])


def test_a_forged_row_with_a_correct_hash_is_caught_at_the_row_after_it(store: Store, settings: Settings) -> None:
    ids = write_events(store, gap_after=3)
    forged_id = ids[2] + 1
    assert forged_id not in ids
    previous = store.query_one("SELECT row_hash FROM audit_events WHERE id = ?", [ids[2]])
    assert previous is not None
    when, detail = datetime(2026, 10, 3, 8, 0), json.dumps({"decision": "approve"}, sort_keys=True)
    digest = row_hash(forged_id, when, "okafor", "signed", "sepsis-icu v2", "sepsis-icu", 2, detail,
                      prev_hash=previous["row_hash"])
    tamper(store, "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           [forged_id, when, "okafor", "signed", "sepsis-icu v2", detail, "sepsis-icu", 2, previous["row_hash"],
            digest])
    code, report = verify(settings)
    assert code == 1 and report["first_bad_row"] == ids[3]
    assert "inserted" in str(report["reason"])
    assert report["rows"] == EVENTS + 1


def test_cutting_off_the_newest_row_is_caught_by_the_checkpoint(store: Store, settings: Settings) -> None:
    ids = write_events(store)
    tamper(store, "DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)")
    assert verify_chain(bare(store)).ok  # the chain that is left is intact on its own…
    code, report = verify(settings)
    assert code == 1 and report["first_bad_row"] == ids[-1]  # …but the signed checkpoint names the row cut off
    assert "missing" in str(report["reason"]) and "checkpoint" in str(report["reason"])


def test_verify_prints_a_sentence_without_json(store: Store, settings: Settings) -> None:
    ids = write_events(store)
    tamper(store, "UPDATE audit_events SET actor = 'mallory' WHERE id = ?", [ids[0]])
    result = cli(settings, "audit", "verify", "--home", str(settings.home))
    assert result.returncode == 1
    assert f"tampered with at row {ids[0]}" in result.stdout


@pytest.mark.embedded_only
def test_migration_6_seals_rows_written_by_a_schema_5_store(tmp_path: Path) -> None:
    path = tmp_path / "governance.duckdb"
    legacy = DuckDBStore(path)
    assert legacy.migrate(target=5) == 5
    with legacy.transaction() as cur:
        for i, action in enumerate(["user_added", "login_succeeded", "version_submitted"]):
            cur.execute("INSERT INTO audit_events (occurred_at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                        [datetime(2026, 5, 1, 9, i), "admin", action, "sepsis-icu v2", json.dumps({"n": i})])
    upgraded = DuckDBStore(path)
    upgraded.migrate()
    rows = upgraded.query("SELECT id, prev_hash, row_hash FROM audit_events ORDER BY id")
    assert rows[0]["prev_hash"] == GENESIS
    assert all(r["row_hash"] for r in rows)
    assert [r["prev_hash"] for r in rows[1:]] == [r["row_hash"] for r in rows[:-1]]
    assert verify_chain(upgraded).as_dict() | {"head": None} == {
        "ok": True, "rows": 3, "first_bad_row": None, "reason": None, "head": None, "anchors": 0, "anchored": False,
        "checkpoint": None, "unanchored_because": "this store was opened without a checkpoint log",
        "interrupted": None}
    with upgraded.transaction() as cur:  # new rows continue the sealed chain
        record_event(cur, actor="admin", action="exported", detail={"what": "test"})
    result = cli(tmp_path, "audit", "verify", "--json", "--home", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 4


def chain_rows(store: Store) -> list[tuple[object, ...]]:
    with store.cursor() as cur:
        return cur.execute("SELECT id, occurred_at, actor, action, target, model_name, model_version, "
                           "CAST(detail AS VARCHAR), prev_hash, row_hash FROM audit_events ORDER BY id").fetchall()


def test_an_anchor_that_matches_its_row_counts_and_one_that_does_not_names_the_row(store: Store) -> None:
    ids = write_events(store)
    stored = {int(r[0]): str(r[9]) for r in chain_rows(store)}
    good = AuditAnchor(ids[2], stored[ids[2]], "MLflow tag a of sepsis-icu")
    checked = verify_rows(chain_rows(store), [good])
    assert (checked.ok, checked.rows, checked.first_bad_row, checked.reason, checked.anchors) == (
        True, EVENTS, None, None, 1)
    wrong = AuditAnchor(ids[4], stored[ids[3]], "MLflow tag b of sepsis-icu")
    result = verify_rows(chain_rows(store), [good, wrong])
    assert (result.ok, result.first_bad_row) == (False, ids[4])
    assert "MLflow tag b of sepsis-icu" in str(result.reason)


def test_two_anchors_that_disagree_about_a_row_cannot_both_be_genuine(store: Store) -> None:
    ids = write_events(store)
    stored = {int(r[0]): str(r[9]) for r in chain_rows(store)}
    genuine = AuditAnchor(ids[1], stored[ids[1]], "tag a")
    forged = AuditAnchor(ids[1], "f" * 64, "tag b")
    result = verify_rows(chain_rows(store), [genuine, forged])
    assert (result.ok, result.first_bad_row) == (False, ids[1])
    assert "tag a and tag b" in str(result.reason)


@pytest.mark.parametrize("value", ["", "12", "x:" + "a" * 64, "12:" + "a" * 63, "12:" + "A" * 64, "12:" + "g" * 64])
def test_an_anchor_value_that_is_not_row_colon_sha256_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a ModelBoard anchor"):
        parse_anchor(value, "MLflow tag t of m")
    assert parse_anchor("12:" + "a" * 64, "t") == AuditAnchor(12, "a" * 64, "t")


TEXT = st.one_of(st.none(), st.text(alphabet=st.characters(codec=None), max_size=40))  # quotes, controls, non-ASCII


@settings(max_examples=500, deadline=None)
@given(row_id=st.integers(1, 2**62), occurred_at=st.datetimes(timezones=st.timezones()), actor=st.text(max_size=20),
       action=st.text(max_size=20), target=TEXT, model_name=TEXT,
       model_version=st.one_of(st.none(), st.integers(0, 10**9)),
       detail=TEXT, prev_hash=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_the_fast_canonical_text_is_exactly_json_dumps(row_id: int, occurred_at: datetime, actor: str, action: str,
                                                       target: str | None, model_name: str | None,
                                                       model_version: int | None, detail: str | None,
                                                       prev_hash: str) -> None:
    """verify recomputes the text for every row, so it is written out by hand; it must stay byte-equal to the
    rule's plain form, or every stored hash would stop matching."""
    fields = (row_id, occurred_at, actor, action, target, model_name, model_version, detail)
    assert canonical_content(*fields, prev_hash=prev_hash) == reference_canonical_content(*fields, prev_hash=prev_hash)
