"""Promotion on a real demo: the MLflow alias moves only through the policy, once, and survives crashes and
people who move it by hand.

These tests move aliases, so they use their own demo (the session's keeps sepsis-icu v1 in production for
other tests). They share it by checking state rather than assuming it: each round of sign-off puts v1 back in
production if needed, voids v2's earlier signatures with a card edit and has the clinical lead accept v2's
failed criteria again, so only the approvals under test remain to be given.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from mlflow import MlflowClient

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import Settings
from core.domain.access import User, command_line_operator
from core.domain.audit_chain import ANCHOR_TAG_PREFIX
from core.domain.clock import utc_now
from core.errors import ValidationError
from core.services import model_card, promotion, signoff
from core.services.alerts import open_alerts
from core.services.audit import verify_chain
from core.services.auth import get_user
from core.services.demo import DEMO_USERS
from core.services.installation import open_registry, open_store
from core.services.promotion import Promotion, recorded_aliases
from core.services.signoff import SignatureRequest, sign_off_state
from tests.conftest import demo_copy, environment
from tests.core.test_audit_checkpoints import rehash_from
from tests.core.test_cli import cli
from tests.intruder import bare, raw_connection, tamper

REPO = Path(__file__).resolve().parents[2]
MODEL, CANDIDATE = "sepsis-icu", 2
OPERATOR = command_line_operator("pytest")
PASSWORDS = {username: password for username, _name, _role, password in DEMO_USERS}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings, demo_backend: str,
         request: pytest.FixtureRequest) -> Settings:
    """This module's own demo: v1 in production, v2 evaluated by the real worker."""
    return demo_copy(tmp_path_factory, reviewed_demo, "promotion", demo_backend, request)


# -- helpers ------------------------------------------------------------------------------------------------------
def person(store: Store, username: str) -> User:
    user = get_user(store, username)
    assert user is not None, username
    return user


def mlflow_aliases(settings: Settings) -> dict[str, int]:
    """The aliases as anyone reading MLflow sees them, with a plain client."""
    model = MlflowClient(settings.tracking_uri, registry_uri=settings.registry_uri).get_registered_model(MODEL)
    return {alias: int(version) for alias, version in (model.aliases or {}).items()}


def request(settings: Settings, username: str, *, decision: str = "approve",
            criteria: tuple[str, ...] = ()) -> SignatureRequest:
    store = open_store(settings)
    state = sign_off_state(store, open_registry(settings), person(store, username), MODEL, CANDIDATE)
    return SignatureRequest(MODEL, CANDIDATE, decision, "approved for clinical use in the adult ICU",
                            "Reviewed the card, the subgroup results and the comparison with production.",
                            username, PASSWORDS[username], state.evidence.card_sha256, state.evidence.evaluation_id,
                            criteria)


def approve(settings: Settings, username: str) -> Promotion | None:
    store = open_store(settings)
    _signature, promoted = signoff.sign(settings, store, open_registry(settings), person(store, username),
                                        request(settings, username))
    return promoted  # type: ignore[no-any-return]


def new_round(settings: Settings, *, approvals: tuple[str, ...] = ()) -> datetime:
    """v1 (or whatever preceded v2) back in production, v2's earlier signatures void, its failed criteria accepted
    by the clinical lead, then `approvals` given; returns the moment the round started."""
    store, registry = open_store(settings), open_registry(settings)
    if registry.version_for_alias(MODEL, "production") == CANDIDATE:
        promotion.roll_back(settings, store, registry, person(store, "ng"), MODEL, username="ng",
                            password=PASSWORDS["ng"], rationale="Put back the previous version for the next round.")
    assert mlflow_aliases(settings)["production"] != CANDIDATE
    started = utc_now()
    model_card.save_narratives(store, person(store, "lee"), MODEL, CANDIDATE, {
        "update_schedule": f"Reviewed yearly and after any monitoring alert (round of {started.isoformat()})."})
    state = sign_off_state(store, registry, OPERATOR, MODEL, CANDIDATE)
    assert not any(s.valid for s in state.standings), "the card edit voids every earlier signature"
    assert state.failed_criteria, "the demo's v2 fails criteria a clinical lead must accept"
    signoff.accept_exception(settings, store, registry, person(store, "patel"),
                             request(settings, "patel", decision="accept_exception", criteria=state.failed_criteria))
    for username in approvals:
        assert approve(settings, username) is None
    return started


def promotions_since(settings: Settings, started: datetime, kind: str = "promotion") -> list[dict[str, Any]]:
    return open_store(settings).query("SELECT * FROM promotions WHERE model_name = ? AND kind = ? AND started_at >= ? "
                                      "ORDER BY started_at", [MODEL, kind, started])


def audit_since(settings: Settings, started: datetime, action: str) -> list[dict[str, Any]]:
    return open_store(settings).query("SELECT * FROM audit_events WHERE action = ? AND model_name = ? "
                                      "AND occurred_at >= ? ORDER BY id", [action, MODEL, started])


def current_signatures(settings: Settings) -> dict[str, str]:
    """signer → id of each signature that counts for v2 as it stands."""
    state = sign_off_state(open_store(settings), open_registry(settings), OPERATOR, MODEL, CANDIDATE)
    return {s.signature.signer: s.signature.id for s in state.standings if s.valid}


def findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return json.loads(result.stdout)["findings"]  # type: ignore[no-any-return]


def assert_nothing_but_the_unsigned_readmission_model(result: subprocess.CompletedProcess[str],
                                                     settings: Settings | None = None) -> None:
    """The demo's readmission-30d v1 has been in production since before ModelBoard and was never signed off:
    every `verify` and `reconcile` names it (exit 1). So is sepsis-icu v1 while it is still that never-signed
    baseline (no ModelBoard promotion or signed rollback has put it back): allowed only then, with `settings`
    to check it. Nothing else may be a problem."""
    problems = [(f["kind"], f["model"]) for f in findings(result) if f["problem"]]
    baseline = ("production_without_signoff", MODEL)
    if settings is not None and baseline in problems:
        assert mlflow_aliases(settings)["production"] == 1 and not open_store(settings).query(
            "SELECT 1 FROM alias_history WHERE model_name = ? AND alias = 'production' AND version = 1 "
            "AND kind IN ('promoted', 'rolled_back')", [MODEL]), result.stdout
        problems.remove(baseline)
    assert problems == [("production_without_signoff", "readmission-30d")], result.stdout + result.stderr
    assert result.returncode == 1


# -- the full path --------------------------------------------------------------------------------------------------
def test_the_last_approval_promotes_through_mlflow_and_records_it(demo: Settings) -> None:
    before = mlflow_aliases(demo)["production"]
    started = new_round(demo)
    assert approve(demo, "ng") is None and approve(demo, "okafor") is None
    assert mlflow_aliases(demo)["production"] == before  # no alias moves before the quorum
    promoted = approve(demo, "diaz")
    assert promoted is not None and promoted.state == "completed"
    assert mlflow_aliases(demo) == {"production": CANDIDATE, "previous": before}

    rows = promotions_since(demo, started)
    assert [(r["id"], r["state"], r["from_version"], r["to_version"]) for r in rows] == [
        (promoted.id, "completed", before, CANDIDATE)]
    signed = current_signatures(demo)
    assert set(signed) == {"patel", "ng", "okafor", "diaz"}
    assert set(json.loads(rows[0]["signature_ids"])) == set(signed.values())

    intents, completions = audit_since(demo, started, "promotion_intent"), audit_since(demo, started,
                                                                                       "promotion_completed")
    assert len(intents) == len(completions) == 1
    assert intents[0]["id"] < completions[0]["id"]
    assert json.loads(intents[0]["detail"])["promotion"] == json.loads(completions[0]["detail"])["promotion"] \
        == promoted.id

    client = MlflowClient(demo.tracking_uri, registry_uri=demo.registry_uri)
    tags = client.get_model_version(MODEL, str(CANDIDATE)).tags
    assert tags["modelboard.status"] == "approved" and tags["modelboard.promotion"] == promoted.id
    assert tags["modelboard.artifact_sha256"] == open_registry(demo).artifact_sha256(MODEL, CANDIDATE) \
        == promoted.artifact_sha256
    assert client.get_model_version(MODEL, str(before)).tags["modelboard.status"] == "retired"
    assert recorded_aliases(open_store(demo), MODEL) == {"production": CANDIDATE, "previous": before}
    with pytest.raises(ValidationError, match="already in production"):  # nothing left to approve
        approve(demo, "patel")
    # …nor to reject: a 'rejected' label on the version patients are scored by would contradict the alias
    # (found by the property test); taking it out of clinical use is a signed rollback.
    for decision in ("reject", "request_changes"):
        with pytest.raises(ValidationError, match="already in production.*rollback"):
            signoff.sign(demo, open_store(demo), open_registry(demo), person(open_store(demo), "patel"),
                         request(demo, "patel", decision=decision))
    assert client.get_model_version(MODEL, str(CANDIDATE)).tags["modelboard.status"] == "approved"


# -- two sessions give the last two approvals at the same moment -----------------------------------------------------
CHILD = """
import json, sys, time
from pathlib import Path
from core.config import load_settings
from core.services.auth import get_user
from core.services.installation import open_registry, open_store
from core.services.signoff import SignatureRequest, sign
home, username, fields, ready, go = sys.argv[1:6]
settings = load_settings(home=Path(home))
store, registry = open_store(settings), open_registry(settings)
signer = get_user(store, username)
request = SignatureRequest(**json.loads(fields))
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
signature, promotion = sign(settings, store, registry, signer, request)
print(json.dumps({"signature": signature.id, "promotion": promotion.id if promotion else None}))
"""


def _sign_in_threads(settings: Settings, requests: dict[str, SignatureRequest]) -> dict[str, Any]:
    """Two Streamlit sessions: threads of one server process sharing its one Store (app/cache.py keeps one), each
    with its own registry client."""
    barrier, results = threading.Barrier(len(requests)), {}
    store = open_store(settings)

    def session(username: str) -> None:
        registry = Registry(settings.tracking_uri, settings.registry_uri)
        signer = person(store, username)
        barrier.wait()
        try:
            signature, promoted = signoff.sign(settings, store, registry, signer, requests[username])
            results[username] = (signature.id, promoted.id if promoted else None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[username] = exc

    threads = [threading.Thread(target=session, args=(u,)) for u in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _sign_in_processes(settings: Settings, requests: dict[str, SignatureRequest], folder: Path) -> dict[str, Any]:
    env = environment(settings)
    go = folder / "go"
    go.unlink(missing_ok=True)
    children = {}
    for username, req in requests.items():
        ready = folder / f"{username}.ready"
        ready.unlink(missing_ok=True)
        children[username] = (ready, subprocess.Popen(
            [sys.executable, "-c", CHILD, str(settings.home), username, json.dumps(asdict(req)), str(ready),
             str(go)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in children.values()):
        assert time.monotonic() < deadline and all(p.poll() is None for _, p in children.values()), \
            [p.communicate() for _, p in children.values() if p.poll() is not None]
        time.sleep(0.01)
    go.touch()  # both processes are waiting: let them sign at the same moment
    results = {}
    for username, (_, process) in children.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        answer = json.loads(out.strip().splitlines()[-1])
        results[username] = (answer["signature"], answer["promotion"])
    return results


@pytest.mark.parametrize("how", ["two sessions of one server", "two processes"])
def test_simultaneous_last_approvals_promote_exactly_once(demo: Settings, how: str, tmp_path: Path) -> None:
    started = new_round(demo, approvals=("ng",))
    requests = {u: request(demo, u) for u in ("okafor", "diaz")}
    if how == "two processes":
        results = _sign_in_processes(demo, requests, tmp_path)
    else:
        results = _sign_in_threads(demo, requests)
    assert all(isinstance(r, tuple) for r in results.values()), results

    promoted = [p for _s, p in results.values() if p]
    assert len(promoted) == 1, results  # one session promotes; the other finds it done
    rows = promotions_since(demo, started)
    assert [(r["id"], r["state"]) for r in rows] == [(promoted[0], "completed")]
    signed = current_signatures(demo)
    assert {signed["okafor"], signed["diaz"]} == {s for s, _p in results.values()}  # both signatures count
    assert set(json.loads(rows[0]["signature_ids"])) <= set(signed.values())
    assert len(audit_since(demo, started, "promotion_intent")) == 1
    assert len(audit_since(demo, started, "promotion_completed")) == 1
    moves = open_store(demo).query("SELECT * FROM alias_history WHERE model_name = ? AND alias = 'production' "
                                   "AND changed_at >= ? AND kind = 'promoted'", [MODEL, started])
    assert [m["version"] for m in moves] == [CANDIDATE]
    assert mlflow_aliases(demo)["production"] == CANDIDATE
    assert verify_chain(open_store(demo)).ok  # the concurrent writers kept the audit chain intact


# -- a crash between the intent and the alias move ---------------------------------------------------------------------
KILLED = """
import json, os, sys
from pathlib import Path
from core.adapters.registry import Registry
from core.config import load_settings
from core.services.auth import get_user
from core.services.installation import open_registry, open_store
from core.services.signoff import SignatureRequest, sign
home, username, fields = sys.argv[1:4]
settings = load_settings(home=Path(home))
store, registry = open_store(settings), open_registry(settings)
Registry.set_alias = lambda *_args, **_kwargs: os._exit(137)  # the process dies as MLflow is called: no cleanup runs
sign(settings, store, registry, get_user(store, username), SignatureRequest(**json.loads(fields)))
"""


def _crash_on_the_last_approval(settings: Settings, monkeypatch: pytest.MonkeyPatch, *,
                                kill: bool = False) -> tuple[datetime, int]:
    """Give the last approval while MLflow's alias call ends the process: with `kill`, a real process killed
    by os._exit (no finally block, no lock release but the kernel's); otherwise SystemExit in this process,
    which the code does not catch. Return when the round started and the production version before it."""
    started = new_round(settings, approvals=("ng", "okafor"))
    before = open_registry(settings).version_for_alias(MODEL, "production")
    assert before is not None and before != CANDIDATE
    if kill:
        env = environment(settings)
        child = subprocess.run([sys.executable, "-c", KILLED, str(settings.home), "diaz",
                                json.dumps(asdict(request(settings, "diaz")))], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == 137, child.stderr
    else:
        calls = []
        original = Registry.set_alias

        def dies_first(self: Registry, name: str, alias: str, version: int) -> None:
            calls.append((alias, version))
            if len(calls) == 1:
                raise SystemExit("killed while moving the alias")
            original(self, name, alias, version)

        with monkeypatch.context() as patch:
            patch.setattr(Registry, "set_alias", dies_first)
            with pytest.raises(SystemExit):
                approve(settings, "diaz")
        assert calls and len(calls) == 1
    rows = promotions_since(settings, started)
    assert [(r["state"], r["from_version"], r["to_version"]) for r in rows] == [("intent", before, CANDIDATE)]
    assert mlflow_aliases(settings)["production"] == before  # the alias has not moved
    assert len(audit_since(settings, started, "promotion_completed")) == 0
    return started, before


def test_reconcile_rolls_back_an_interrupted_promotion_whose_signatures_no_longer_hold(
        demo: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    started, before = _crash_on_the_last_approval(demo, monkeypatch)
    store = open_store(demo)
    model_card.save_narratives(store, person(store, "lee"), MODEL, CANDIDATE,
                               {"update_schedule": f"Changed after the crash ({utc_now().isoformat()})."})
    result = cli(demo, "reconcile", "--home", str(demo.home), "--json")
    assert_nothing_but_the_unsigned_readmission_model(result, demo)
    interrupted = [f for f in findings(result) if f["kind"] == "interrupted_promotion"]
    assert len(interrupted) == 1 and "rolled back" in interrupted[0]["message"]
    assert [r["state"] for r in promotions_since(demo, started)] == ["rolled_back"]
    assert mlflow_aliases(demo)["production"] == before
    assert len(audit_since(demo, started, "promotion_rolled_back")) == 1
    assert len(audit_since(demo, started, "promotion_completed")) == 0


def test_reconcile_finishes_a_promotion_whose_process_was_killed(demo: Settings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    started, before = _crash_on_the_last_approval(demo, monkeypatch, kill=True)
    result = cli(demo, "reconcile", "--home", str(demo.home), "--json")
    assert_nothing_but_the_unsigned_readmission_model(result)
    interrupted = [f for f in findings(result) if f["kind"] == "interrupted_promotion"]
    assert len(interrupted) == 1 and interrupted[0]["new_version"] == CANDIDATE
    assert interrupted[0]["problem"] is False and interrupted[0]["old_version"] == before
    rows = promotions_since(demo, started)
    assert [(r["state"], r["id"]) for r in rows] == [("completed", interrupted[0]["detail"]["promotion"])]
    assert mlflow_aliases(demo) == {"production": CANDIDATE, "previous": before}
    completed = audit_since(demo, started, "promotion_completed")
    assert len(completed) == 1 and completed[0]["actor"] == "system"
    assert audit_since(demo, started, "promotion_intent")[0]["id"] < completed[0]["id"]


# -- the audit trail's anchor in MLflow, written by every promotion ---------------------------------------------
def anchors_in_mlflow(settings: Settings) -> dict[str, str]:
    tags = MlflowClient(settings.tracking_uri, registry_uri=settings.registry_uri).get_registered_model(MODEL).tags
    return {k: v for k, v in tags.items() if k.startswith(ANCHOR_TAG_PREFIX)}


def test_every_promotion_anchors_its_intent_row_in_mlflow(demo: Settings) -> None:
    started = new_round(demo, approvals=("ng", "okafor"))
    promoted = approve(demo, "diaz")
    assert promoted is not None
    intent = audit_since(demo, started, "promotion_intent")[0]
    assert anchors_in_mlflow(demo)[ANCHOR_TAG_PREFIX + promoted.id] == f"{intent['id']}:{intent['row_hash']}"
    code, report = audit_verify(demo)
    assert code == 0 and report["ok"] is True
    # this promotion's and the rounds' rollbacks' tags, and the newest signed checkpoint
    assert report["anchors"] == len(anchors_in_mlflow(demo)) + 1 and len(anchors_in_mlflow(demo)) >= 2


# -- people who move the alias by hand ------------------------------------------------------------------------------
def test_an_alias_moved_outside_modelboard_is_reported_alerted_once_and_rolled_back(demo: Settings) -> None:
    store, registry = open_store(demo), open_registry(demo)
    approved = (recorded_aliases(store, MODEL) or {})["production"]
    assert approved is not None and mlflow_aliases(demo)["production"] == approved
    intruder = next(v for v in (3, 1, 2) if v != approved)
    started = utc_now()
    MlflowClient(demo.tracking_uri, registry_uri=demo.registry_uri).set_registered_model_alias(
        MODEL, "production", str(intruder))

    for command in ("verify", "reconcile", "verify"):
        result = cli(demo, command, "--home", str(demo.home), "--json")
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        moved = [f for f in findings(result) if f["kind"] == "alias_moved_out_of_band"]
        assert [(f["model"], f["alias"], f["old_version"], f["new_version"], f["problem"]) for f in moved] == [
            (MODEL, "production", approved, intruder, True)]
    promotion.check_aliases(demo, store, registry, OPERATOR)  # the page-load check, in this process too
    alerts = [a for a in open_alerts(store, OPERATOR, model=MODEL) if a.rule == promotion.OUT_OF_BAND_RULE]
    assert len(alerts) == 1 and alerts[0].severity == "critical" and alerts[0].version == intruder
    raised = store.query("SELECT id FROM alerts WHERE rule = ? AND raised_at >= ?", [promotion.OUT_OF_BAND_RULE,
                                                                                     started])
    assert [r["id"] for r in raised] == [alerts[0].id]  # de-duplicated: raised once for three checks

    back = promotion.roll_back(demo, store, registry, person(store, "okafor"), MODEL, username="okafor",
                               password=PASSWORDS["okafor"], rationale="Production was moved by hand; restoring.")
    assert (back.kind, back.from_version, back.to_version, back.state) == ("rollback", intruder, approved, "completed")
    assert mlflow_aliases(demo)["production"] == approved
    resolved = store.query_one("SELECT status, resolved_by FROM alerts WHERE id = ?", [alerts[0].id])
    assert resolved == {"status": "resolved", "resolved_by": "okafor"}
    signature = store.query_one("SELECT * FROM signatures WHERE id = ?", [back.signature_ids[0]])
    assert signature is not None and signature["kind"] == "rollback" and signature["signer"] == "okafor"
    result = cli(demo, "verify", "--home", str(demo.home), "--json")
    assert_nothing_but_the_unsigned_readmission_model(result)


def test_a_changed_byte_in_the_production_model_is_caught(demo: Settings) -> None:
    store, registry = open_store(demo), open_registry(demo)
    version = registry.version_for_alias(MODEL, "production")
    assert version is not None
    recorded = store.query_one("SELECT artifact_sha256 FROM alias_history WHERE model_name = ? AND alias = "
                               "'production' AND version = ? AND artifact_sha256 IS NOT NULL ORDER BY id DESC LIMIT 1",
                               [MODEL, version])
    assert recorded is not None and recorded["artifact_sha256"] == registry.artifact_sha256(MODEL, version)
    location = registry._artifact_location(registry.client.get_model_version(MODEL, str(version)))
    folder = Path(unquote(urlparse(location).path))
    target = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    original = target.read_bytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x01
    target.write_bytes(bytes(changed))
    try:
        result = cli(demo, "verify", "--home", str(demo.home), "--json")
        assert result.returncode == 1, result.stdout + result.stderr
        mismatch = [f for f in findings(result) if f["kind"] == "artifact_mismatch"]
        assert [(f["model"], f["new_version"], f["detail"]["recorded"]) for f in mismatch] == [
            (MODEL, version, recorded["artifact_sha256"])]
        actual = registry.artifact_sha256(MODEL, version)
        assert mismatch[0]["detail"]["actual"] == actual != recorded["artifact_sha256"]
        alerts = [a for a in open_alerts(store, OPERATOR, model=MODEL, version=version)
                  if a.rule == promotion.ARTIFACT_RULE]
        assert len(alerts) == 1 and alerts[0].severity == "critical"
    finally:
        target.write_bytes(original)
    result = cli(demo, "verify", "--home", str(demo.home), "--json")
    assert_nothing_but_the_unsigned_readmission_model(result)
    assert any(f["kind"] == "artifact_verified" and f["model"] == MODEL for f in findings(result))


# -- tampering the anchors catch ---------------------------------------------------------------------------------
@pytest.fixture
def restored_store(demo: Settings) -> Any:
    """Tampering tests below change the module's audit trail; put it back afterwards for the tests after them."""
    store = open_store(demo)
    with raw_connection(store) as con:
        columns = [d[0] for d in con.execute("SELECT * FROM audit_events LIMIT 0").description]
        kept = con.execute("SELECT * FROM audit_events ORDER BY id").fetchall()
    yield
    with raw_connection(store) as con:
        con.execute("DELETE FROM audit_events")
        marks = ", ".join("?" for _ in columns)
        for row in kept:
            con.execute(f"INSERT INTO audit_events ({', '.join(columns)}) VALUES ({marks})", list(row))  # noqa: S608


def rewrite_chain_from(store: Store, row_id: int, **changes: Any) -> None:
    """What an intruder who knows the (public) hash rule does: edit one row, then recompute every hash after
    it with plain DuckDB so that the chain alone is consistent again."""
    if changes:
        with raw_connection(store) as con:
            sets = ", ".join(f"{k} = ?" for k in changes)
            con.execute(f"UPDATE audit_events SET {sets} WHERE id = ?", [*changes.values(), row_id])  # noqa: S608
    rehash_from(store, row_id)


def audit_verify(settings: Settings) -> tuple[int, dict[str, Any]]:
    result = cli(settings, "audit", "verify", "--home", str(settings.home), "--json")
    return result.returncode, json.loads(result.stdout)


def test_a_trail_rewritten_with_recomputed_hashes_is_caught_by_the_anchors(demo: Settings, restored_store: Any) -> None:
    store = open_store(demo)
    anchored = sorted(int(v.split(":")[0]) for v in anchors_in_mlflow(demo).values())
    assert anchored, "the promotions above left anchors"
    signed = store.query_one("SELECT id FROM audit_events WHERE action = 'signed' AND id < ? ORDER BY id DESC LIMIT 1",
                             [anchored[-1]])
    assert signed is not None
    rewrite_chain_from(store, int(signed["id"]), actor="mallory")
    assert verify_chain(bare(store)).ok  # the chain alone cannot tell: every link was recomputed
    first = min(a for a in anchored if a >= signed["id"])
    by_tags = verify_chain(bare(store), open_registry(demo))  # the promotions' tags alone (no log)
    assert (by_tags.ok, by_tags.first_bad_row) == (False, first) and "MLflow tag" in str(by_tags.reason)
    code, report = audit_verify(demo)  # every witness: the signed checkpoint of the edited row's transaction
    assert code == 1 and report["ok"] is False and signed["id"] <= report["first_bad_row"] <= first, report
    assert "rewritten" in report["reason"] and "checkpoint" in report["reason"]


def test_cutting_off_the_newest_rows_before_an_anchor_is_caught(demo: Settings, restored_store: Any) -> None:
    store = open_store(demo)
    newest = max(int(v.split(":")[0]) for v in anchors_in_mlflow(demo).values())
    tamper(store, "DELETE FROM audit_events WHERE id >= ?", [newest])
    assert verify_chain(bare(store)).ok  # what is left is a consistent chain…
    by_tags = verify_chain(bare(store), open_registry(demo))
    assert (by_tags.ok, by_tags.first_bad_row) == (False, newest) and "missing" in str(by_tags.reason)  # …but short
    code, report = audit_verify(demo)  # and the checkpoints already miss the first row cut off
    assert code == 1 and report["first_bad_row"] <= newest and "missing" in report["reason"], report


def test_an_anchor_tag_that_is_not_one_fails_the_check(demo: Settings) -> None:
    client = MlflowClient(demo.tracking_uri, registry_uri=demo.registry_uri)
    key = ANCHOR_TAG_PREFIX + "forged"
    client.set_registered_model_tag(MODEL, key, "not an anchor")
    try:
        code, report = audit_verify(demo)
        assert code == 1 and report["first_bad_row"] is None and key in report["reason"], report
    finally:
        client.delete_registered_model_tag(MODEL, key)
    assert audit_verify(demo)[0] == 0
