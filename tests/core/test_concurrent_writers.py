"""Many writers at once: fifty clinicians signing one version through the service layer, and the app signing
while two CLI processes write. Nothing acknowledged is lost, the version is promoted exactly once, the audit
trail stays gap-free and verifiable, and whoever waits too long for a lock is told to try again.

The module works on its own copy of the reviewed demo (it moves aliases and adds accounts). Each test starts
its own round of sign-off with `new_round` (tests/core/test_promotion.py), so it does not depend on the one
before it having promoted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import cache as app_cache
from core.config import Settings
from core.domain.access import Session
from core.domain.clock import utc_now
from core.domain.signoff import SIGNER_GROUPS
from core.errors import StoreBusy, ValidationError
from core.services import auth, signoff
from core.services.audit import verify_chain
from core.services.installation import open_registry, open_store
from core.services.signoff import SignatureRequest, sign_off_state
from tests.conftest import demo_copy, environment, point_app_at
from tests.core.test_ingest import predictions
from tests.core.test_promotion import (
    CANDIDATE,
    MODEL,
    OPERATOR,
    PASSWORDS,
    audit_since,
    current_signatures,
    mlflow_aliases,
    new_round,
    person,
    promotions_since,
)

REPO = Path(__file__).resolve().parents[2]
MAIN = str(REPO / "app" / "main.py")
SIGNERS = 50
PASSWORD = "fifty-clinicians-2026"
BUSY = "try again"  # what every lock-timeout message (StoreBusy) tells the person to do
ALREADY_PROMOTED = "already in production"  # sign()'s refusal once the version holds the alias


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings, demo_backend: str,
         request: pytest.FixtureRequest) -> Settings:
    return demo_copy(tmp_path_factory, reviewed_demo, "concurrent-writers", demo_backend, request)


@pytest.fixture(scope="module")
def clinicians(demo: Settings) -> list[str]:
    """SIGNERS clinician accounts, added by the demo's administrator through the account service."""
    store = open_store(demo)
    admin = person(store, "admin")
    names = [f"clin{i:02d}" for i in range(SIGNERS)]
    for name in names:
        auth.add_user(store, admin, username=name, full_name=f"Dr. Clinician {name[4:]}", role="clinician",
                      password=PASSWORD)
    return names


# -- helpers ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What one signer was told: a stored signature (and the promotion it triggered), or an error."""

    signer: str
    signature: str | None = None
    promotion: str | None = None
    error: BaseException | None = None

    @property
    def reason(self) -> str:
        """'signed', or why not, in the words the tests count by."""
        if self.error is None:
            return "signed"
        text = str(self.error)
        if isinstance(self.error, StoreBusy) and BUSY in text:
            return "busy, try again"
        if isinstance(self.error, ValidationError) and ALREADY_PROMOTED in text:
            return "refused: already in production"
        return f"unexpected {type(self.error).__name__}: {text}"


def audit_ids(settings: Settings) -> dict[str, int]:
    row = open_store(settings).query_one("SELECT min(id) AS lo, max(id) AS hi, count(*) AS n, "
                                         "count(DISTINCT id) AS distinct_ids FROM audit_events")
    assert row is not None
    return {k: int(v) for k, v in row.items()}


def assert_gap_free_verified_chain(settings: Settings) -> dict[str, int]:
    """Audit ids 1..n without a gap or a repeat, and the chain verified with every witness (the signed
    checkpoints, their MLflow mirror and the promotions' anchors)."""
    ids = audit_ids(settings)
    assert ids["lo"] == 1 and ids["hi"] == ids["n"] == ids["distinct_ids"], ids
    result = verify_chain(open_store(settings), open_registry(settings))
    assert result.ok, result
    assert result.rows == ids["n"]
    return ids


def signed_since(settings: Settings, started: datetime, signers: list[str]) -> dict[str, str]:
    """signer → id of the approval each stored since `started` (one each at most: a round keeps its card)."""
    marks = ", ".join("?" for _ in signers)
    rows = open_store(settings).query(
        f"SELECT signer, id FROM signatures WHERE model_name = ? AND model_version = ? AND kind = 'sign_off' "  # noqa: S608
        f"AND decision = 'approve' AND signed_at >= ? AND signer IN ({marks})", [MODEL, CANDIDATE, started, *signers])
    assert len(rows) == len({r["signer"] for r in rows}), rows
    return {r["signer"]: r["id"] for r in rows}


def audited_signatures(settings: Settings, started: datetime) -> dict[str, str]:
    """signature id → signer, from the audit rows written with them."""
    return {json.loads(r["detail"])["signature"]: r["actor"] for r in audit_since(settings, started, "signed")}


def events_since(settings: Settings, started: datetime, action: str | None = None) -> list[dict[str, Any]]:
    """Audit rows since `started`, of any model or none (test_promotion's audit_since keeps one model's)."""
    return open_store(settings).query("SELECT id, actor, action, target FROM audit_events WHERE occurred_at >= ? "
                                      "AND (? IS NULL OR action = ?) ORDER BY id", [started, action, action])


def assert_one_completed_promotion(settings: Settings, started: datetime) -> dict[str, Any]:
    rows = promotions_since(settings, started)
    assert [(r["state"], r["to_version"]) for r in rows] == [("completed", CANDIDATE)], rows
    intents = audit_since(settings, started, "promotion_intent")
    completions = audit_since(settings, started, "promotion_completed")
    assert len(intents) == len(completions) == 1 and intents[0]["id"] < completions[0]["id"]
    assert json.loads(intents[0]["detail"])["promotion"] == json.loads(completions[0]["detail"])["promotion"] \
        == rows[0]["id"]
    moves = open_store(settings).query("SELECT version FROM alias_history WHERE model_name = ? AND alias = "
                                       "'production' AND kind = 'promoted' AND changed_at >= ?", [MODEL, started])
    assert [m["version"] for m in moves] == [CANDIDATE]
    assert mlflow_aliases(settings)["production"] == CANDIDATE
    left = open_store(settings).query("SELECT id FROM promotions WHERE state = 'intent'")
    assert left == [], "an intent without its completion: a promotion half done"
    return rows[0]


# -- fifty clinicians at the same moment ---------------------------------------------------------------------------
def _sign_at_once(settings: Settings, requests: dict[str, SignatureRequest]) -> dict[str, Outcome]:
    """Streamlit sessions of one server: threads sharing the process's one Store and one registry client (what
    app/cache.py hands every session), released together by a barrier."""
    store, registry = open_store(settings), open_registry(settings)
    signers = {username: person(store, username) for username in requests}
    barrier = threading.Barrier(len(requests))
    outcomes: dict[str, Outcome] = {}

    def session(username: str) -> None:
        barrier.wait()
        try:
            signature, promoted = signoff.sign(settings, store, registry, signers[username], requests[username])
            outcomes[username] = Outcome(username, signature.id, promoted.id if promoted else None)
        except BaseException as exc:  # noqa: BLE001 - every error is classified and asserted on below
            outcomes[username] = Outcome(username, error=exc)

    threads = [threading.Thread(target=session, args=(u,), name=f"session-{u}") for u in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not [t.name for t in threads if t.is_alive()], "a signer never got an answer"
    return outcomes


def test_fifty_clinicians_signing_at_once_lose_no_signature_and_promote_once(demo: Settings,
                                                                             clinicians: list[str]) -> None:
    started = new_round(demo, approvals=("diaz",))  # the data scientist has signed; the clinicians complete it
    store, registry = open_store(demo), open_registry(demo)
    state = sign_off_state(store, registry, OPERATOR, MODEL, CANDIDATE)
    assert state.use_case is not None and not state.readiness.ready
    needed = {r.group: r.count for r in state.use_case.promotion.signers}
    assert all(person(store, u).role in SIGNER_GROUPS["clinician"] for u in clinicians)
    assert 1 <= needed["clinician"] < len(clinicians), needed  # the quorum is reached well before the last signer
    requests = {u: SignatureRequest(MODEL, CANDIDATE, "approve", "approved for clinical use in the adult ICU",
                                    "Reviewed the card, the subgroup results and the comparison with production.",
                                    u, PASSWORD, state.evidence.card_sha256, state.evidence.evaluation_id)
                for u in clinicians}  # all opened the page before anyone signed: the same card and evaluation

    outcomes = _sign_at_once(demo, requests)

    reasons = Counter(o.reason for o in outcomes.values())
    print(f"\n{len(outcomes)} clinicians signed at once: {dict(reasons)}")
    assert set(outcomes) == set(clinicians)
    assert not [r for r in reasons if r.startswith("unexpected")], reasons
    acknowledged = {u: o.signature for u, o in outcomes.items() if o.signature}
    busy = {u for u, o in outcomes.items() if o.reason == "busy, try again"}
    refused = {u for u, o in outcomes.items() if o.reason == "refused: already in production"}

    stored = signed_since(demo, started, clinicians)
    assert {u: stored[u] for u in acknowledged if u in stored} == acknowledged, "an acknowledged signature is lost"
    assert not set(stored) & refused, "a refused signer's signature was stored"
    assert set(stored) <= set(acknowledged) | busy  # a busy promotion step comes after the signature's commit
    audited = audited_signatures(demo, started)
    assert {i: audited.get(i) for i in stored.values()} == {i: u for u, i in stored.items()}, "signature without audit"
    assert events_since(demo, started, "signature_failed") == []

    row = assert_one_completed_promotion(demo, started)
    promoted = [o.promotion for o in outcomes.values() if o.promotion]
    assert promoted == [row["id"]], "exactly one signer's request carried the promotion"
    counted = set(json.loads(row["signature_ids"]))
    clinical = counted & set(stored.values())
    assert len(clinical) >= needed["clinician"] and counted - clinical, row  # the clinicians, the others' too
    assert {u: i for u, i in current_signatures(demo).items() if u in stored} == stored  # all still count
    ids = assert_gap_free_verified_chain(demo)
    print(f"signed {len(acknowledged)}, stored {len(stored)}, refused {len(refused)}, busy {len(busy)}, "
          f"promotions 1 ({len(clinical)} clinicians counted in it), audit chain {ids['n']} rows")


# -- the app and two CLI processes at the same moment ---------------------------------------------------------------
CLI_CHILD = """
import sys, time
from pathlib import Path
ready, go, *argv = sys.argv[1:]
import core.cli, core.cli_monitoring, core.services.ingest, core.services.monitoring  # imported before the start
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
sys.exit(core.cli.main(argv))  # what `python -m core.cli ARGV` runs
"""


def production_file(path: Path, n: int, seed: int, prefix: str) -> int:
    """A prediction file as the demo's hospital sends it: test_ingest's predictions plus the use case's other
    sensitive attributes (`monitor` stops on a window in which one is never given); returns its row count."""
    from data.cohort import generate_icu_cohort

    cohort = generate_icu_cohort(n, seed=seed, start=date(2026, 9, 1), days=5)  # the cohort predictions() draws
    frame = predictions(n, seed, prefix)
    assert (frame["encounter_id"] == prefix + cohort["encounter_id"]).all()
    frame[["age_band", "payer"]] = cohort[["age_band", "payer"]]
    frame.to_parquet(path)
    return len(frame)


def _start_cli(settings: Settings, folder: Path, name: str, *argv: str) -> tuple[Path, subprocess.Popen[str]]:
    env = environment(settings)
    ready = folder / f"{name}.ready"
    process = subprocess.Popen([sys.executable, "-c", CLI_CHILD, str(ready), str(folder / "go"), *argv,
                                "--home", str(settings.home), "--json"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return ready, process


def assert_success_or_busy(name: str, code: int, stderr: str) -> bool:
    """True if the command succeeded; otherwise it must have said, in one line, that the store was busy."""
    assert "Traceback" not in stderr, (name, stderr)
    if code == 0:
        return True
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and BUSY in lines[0], (name, code, stderr)
    return False


def sign_off_page(settings: Settings, username: str) -> AppTest:
    """The Sign-off page of `username`'s session on the candidate, its approval form filled in, not yet sent."""
    at = AppTest.from_file(MAIN, default_timeout=180)
    now = utc_now()
    at.session_state["modelboard_session"] = Session(user=person(open_store(settings), username), started_at=now,
                                                     last_active_at=now)
    at.run()
    at.switch_page("../pages/sign_off.py").run()
    next(b for b in at.selectbox if b.label == "Version").select(CANDIDATE).run()
    assert not at.exception, at.exception
    next(r for r in at.radio if r.label == "Decision").set_value("Approve")
    next(t for t in at.text_area if t.label == "Rationale").input(
        "Reviewed the card, the subgroup results and the comparison with production.")
    next(t for t in at.text_input if t.label == "Username (signature)").input(username)
    next(t for t in at.text_input if t.label == "Password (signature)").input(PASSWORDS[username])
    return at


def test_the_app_and_two_cli_processes_writing_at_once_keep_every_acknowledged_write(
        demo: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    point_app_at(monkeypatch, demo)
    st.cache_data.clear()  # read models cached by an earlier test in this process
    started = new_round(demo, approvals=("diaz", "ng"))  # okafor's approval, from the page, completes the quorum
    file = tmp_path / "predictions.parquet"
    incoming = production_file(file, 300, 11, "RACE-")
    page = sign_off_page(demo, "okafor")
    assert not any("Signed:" in str(s.value) for s in page.success)

    children = {"ingest": _start_cli(demo, tmp_path, "ingest", "ingest", str(file), "--model", MODEL, "--version",
                                     "1"),
                "monitor": _start_cli(demo, tmp_path, "monitor", "monitor")}
    while not all(ready.exists() for ready, _ in children.values()):
        assert all(p.poll() is None for _, p in children.values()), \
            [p.communicate() for _, p in children.values() if p.poll() is not None]
        time.sleep(0.01)  # the children are still importing
    start = threading.Barrier(2)
    app: dict[str, Any] = {}

    def press_sign() -> None:
        start.wait()
        try:
            next(b for b in page.button if b.label == "Sign").click().run()
        except BaseException as exc:  # noqa: BLE001 - asserted below
            app["error"] = exc

    session = threading.Thread(target=press_sign, name="app-session")
    session.start()
    start.wait()
    race = utc_now()
    (tmp_path / "go").touch()  # the CLI processes and the app's Sign button, at the same moment
    session.join(timeout=300)
    results = {name: process.communicate(timeout=300) + (process.returncode,)
               for name, (_, process) in children.items()}
    assert not session.is_alive() and "error" not in app, app

    # the app: a signature and promotion shown, or a clear 'busy, try again'; never a traceback
    assert not page.exception, page.exception
    shown = [str(s.value) for s in page.success]
    errors = [str(e.value) for e in page.error]
    okafor = signed_since(demo, started, ["okafor"])
    if any(m.startswith("Signed:") for m in shown):
        assert errors == [], errors
        assert set(okafor) == {"okafor"} and okafor["okafor"] in audited_signatures(demo, started)
        assert any("is now in production" in m for m in shown), shown
        row = assert_one_completed_promotion(demo, started)
        assert okafor["okafor"] in json.loads(row["signature_ids"])
        app_outcome = "signed and promoted"
    else:
        assert errors and all(BUSY in e for e in errors), (shown, errors)
        app_outcome = f"busy, try again (its signature {'stored' if okafor else 'not stored'})"

    # ingest: every row it reported added is stored with its file record and audit row, or nothing is
    out, err, code = results["ingest"]
    stored_rows = open_store(demo).query_one("SELECT count(*) AS n FROM prediction_log WHERE encounter_id LIKE "
                                             "'RACE-%'")
    ingested = audit_since(demo, started, "predictions_ingested")
    if assert_success_or_busy("ingest", code, err):
        report = json.loads(out)
        assert (report["rows"], report["added"], report["quarantined"]) == (incoming, incoming, 0)
        assert stored_rows == {"n": report["added"]}
        assert open_store(demo).query_one("SELECT count(*) AS n FROM ingested_files WHERE sha256 = ?",
                                          [report["sha256"]]) == {"n": 1}
        assert len(ingested) == 1 and json.loads(ingested[0]["detail"])["added"] == report["added"]
    else:
        assert stored_rows == {"n": 0} and ingested == []

    # monitor: the run it reported, its windows and its audit row are all stored; a version skipped as busy
    out, err, code = results["monitor"]
    runs = open_store(demo).query("SELECT id, finished_at, windows FROM monitoring_runs WHERE started_at >= ?",
                                  [started])
    monitored = [r["target"] for r in events_since(demo, started, "monitoring_run")]
    try:
        run = json.loads(out)
    except json.JSONDecodeError:
        run = None
    if run is None:  # stopped by a busy store before it could report a run
        assert not assert_success_or_busy("monitor", code, err)
        assert all(r["finished_at"] is None and not r["windows"] for r in runs) and monitored == [], runs
        monitor_outcome = "busy, try again"
    else:
        if code != 0:  # finished, but some version was skipped: each because the store was busy
            assert run["skipped"] and all(BUSY in s for s in run["skipped"]), run["skipped"]
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        else:
            assert run["skipped"] == [], run["skipped"]
        assert [(r["id"], r["windows"]) for r in runs] == [(run["run"], len(run["windows"]))]
        assert runs[0]["finished_at"] is not None and monitored == [run["run"]]
        windows = open_store(demo).query_one("SELECT count(*) AS n FROM monitoring_windows WHERE run_id = ?",
                                             [run["run"]])
        assert windows == {"n": len(run["windows"])}
        monitor_outcome = f"{len(run['windows'])} windows, {len(run['skipped'])} skipped"

    ids = assert_gap_free_verified_chain(demo)
    writers = [r["actor"] for r in events_since(demo, race)]
    print(f"\naudit rows written from the start line on, by actor: {writers}")
    print(f"app: {app_outcome}; ingest: exit {results['ingest'][2]}; monitor: exit {results['monitor'][2]} "
          f"({monitor_outcome}); audit chain {ids['n']} rows")


# -- a lock that times out --------------------------------------------------------------------------------------------
HOLDER = """
import sys, time, duckdb
from pathlib import Path
store, ready, release = sys.argv[1:4]
con = duckdb.connect(store)  # another process in the middle of its unit of work
Path(ready).touch()
while not Path(release).exists():
    time.sleep(0.01)
con.close()
"""
PG_HOLDER = """
import sys, time
from pathlib import Path
from core.adapters.postgres import PostgresStore
url, ready, release = sys.argv[1:4]
with PostgresStore(url).transaction():  # another process in the middle of its unit of work
    Path(ready).touch()
    while not Path(release).exists():
        time.sleep(0.01)
"""


@contextmanager
def store_held_by_another_process(settings: Settings, folder: Path) -> Iterator[None]:
    ready, release = folder / "held", folder / "release"
    script, where = ((PG_HOLDER, settings.database_url) if settings.database_url
                     else (HOLDER, str(settings.store_path)))
    holder = subprocess.Popen([sys.executable, "-c", script, where, str(ready), str(release)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not ready.exists():
            assert holder.poll() is None, holder.communicate()
            time.sleep(0.01)
        yield
    finally:
        release.touch()
        _, err = holder.communicate(timeout=60)
    assert holder.returncode == 0, err


def test_whoever_waits_too_long_for_the_store_is_told_busy_try_again_and_nothing_is_written(
        demo: Settings, clinicians: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    point_app_at(monkeypatch, demo)
    monkeypatch.setenv("MODELBOARD_LOCK_TIMEOUT_S", "1")
    app_cache._store.clear()  # the app's Store for this home, opened by the test before with the default wait
    st.cache_data.clear()
    started = new_round(demo, approvals=("diaz",))
    impatient = replace(demo, store_lock_timeout_s=1.0)
    store, registry = open_store(impatient), open_registry(impatient)
    signer, page = clinicians[0], sign_off_page(demo, "okafor")
    user = person(store, signer)
    state = sign_off_state(store, registry, OPERATOR, MODEL, CANDIDATE)
    ask = SignatureRequest(MODEL, CANDIDATE, "approve", "approved for clinical use in the adult ICU",
                           "Reviewed the card, the subgroup results and the comparison with production.",
                           signer, PASSWORD, state.evidence.card_sha256, state.evidence.evaluation_id)
    file = tmp_path / "held.parquet"
    production_file(file, 20, 12, "HELD-")
    env = environment(demo)
    before = audit_ids(demo)

    with store_held_by_another_process(demo, tmp_path):
        cli = subprocess.Popen([sys.executable, "-m", "core.cli", "ingest", str(file), "--model", MODEL, "--version",
                                "1", "--home", str(demo.home)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        with pytest.raises(StoreBusy, match=BUSY):  # a session of the server, through the service layer
            signoff.sign(impatient, store, registry, user, ask)
        next(b for b in page.button if b.label == "Sign").click().run()  # a session of the app, on its page
        _, cli_err = cli.communicate(timeout=300)

    assert not page.exception, page.exception
    assert not page.success and [e for e in page.error if BUSY in str(e.value)], [str(e.value) for e in page.error]
    assert cli.returncode == 1 and not assert_success_or_busy("ingest", cli.returncode, cli_err)
    assert "locked by another process for 1 s" in cli_err and "MODELBOARD_LOCK_TIMEOUT_S" in cli_err
    assert audit_ids(demo) == before  # not even a failed attempt's row: nobody got in
    assert signed_since(demo, started, [signer, "okafor"]) == {}
    assert open_store(demo).query_one("SELECT count(*) AS n FROM prediction_log WHERE encounter_id LIKE 'HELD-%'") \
        == {"n": 0}
    signature, promoted = signoff.sign(impatient, store, registry, user, ask)  # trying again works
    assert promoted is None and signed_since(demo, started, [signer]) == {signer: signature.id}
    assert_gap_free_verified_chain(demo)
