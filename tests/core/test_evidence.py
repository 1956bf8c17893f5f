"""The evidence package (on the session demo, through the CLI) and "which version held production at T"
(on a small history written straight into a tmp store, so every answer is known in advance)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.adapters.store import Store
from core.config import Settings
from core.domain.access import User
from core.errors import PermissionDenied
from core.services.audit import record_event
from core.services.evidence import check_package, evidence_package, last_export
from core.services.history import production_as_of, version_timeline
from core.services.installation import open_registry, open_store
from tests.core.test_cli import cli

FILES = {"model-card.pdf", "evaluation.json", "signatures.json", "audit-extract.csv", "chain-verification.json",
         "manifest.json"}
CLINICIAN = User("ng", "Dr. Alice Ng", "clinician")
AUDITOR = User("kim", "Sam Kim", "auditor")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rezip(data: bytes, *, change: dict[str, bytes] | None = None, drop: str | None = None) -> bytes:
    """The package with one file altered, added or removed, as someone might hand it over."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            if name != drop:
                target.writestr(name, (change or {}).get(name, source.read(name)))
        for name, content in (change or {}).items():
            if name not in source.namelist():
                target.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exported(demo_settings: Settings, evaluated_v2: object, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("evidence") / "evidence-sepsis-icu-v2.zip"
    result = cli(demo_settings.home, "audit", "export", "--model", "sepsis-icu", "--version", "2", "--out", str(out),
                 "--json", "--home", str(demo_settings.home))
    assert result.returncode == 0, result.stderr
    return {"report": json.loads(result.stdout), "data": out.read_bytes()}


def test_every_file_matches_the_manifest(exported: dict) -> None:
    data = exported["data"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert set(archive.namelist()) == FILES
        manifest = json.loads(archive.read("manifest.json"))
        recomputed = {name: sha(archive.read(name)) for name in archive.namelist() if name != "manifest.json"}
        manifest_sha = sha(archive.read("manifest.json"))
    assert exported["report"]["files"] == recomputed | {"manifest.json": manifest_sha}
    assert exported["report"]["sha256"] == sha(data)
    assert manifest["model"] == "sepsis-icu" and manifest["version"] == 2
    assert manifest["generated_by"].startswith("cli:")
    assert manifest["files"] == recomputed
    assert check_package(data) == []


def test_the_package_holds_the_evaluation_as_stored_the_audit_rows_and_the_chain(demo_settings: Settings,
                                                                                  evaluated_v2: object,
                                                                                  exported: dict) -> None:
    store = open_store(demo_settings)
    stored = store.query_one("SELECT CAST(result AS VARCHAR) AS result, result_sha256 FROM evaluations WHERE id = ?",
                             [evaluated_v2.id])  # type: ignore[attr-defined]
    assert stored is not None
    with zipfile.ZipFile(io.BytesIO(exported["data"])) as archive:
        assert archive.read("evaluation.json").decode() == stored["result"]
        manifest = json.loads(archive.read("manifest.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("audit-extract.csv").decode())))
        chain = json.loads(archive.read("chain-verification.json"))
        signatures = json.loads(archive.read("signatures.json"))
        assert archive.read("model-card.pdf").startswith(b"%PDF")
    assert manifest["evaluation"]["result_sha256"] == stored["result_sha256"]
    assert {"version_submitted", "evaluation_completed"} <= {r["action"] for r in rows}
    assert all(r["model_name"] == "sepsis-icu" and r["model_version"] == "2" and len(r["row_hash"]) == 64
               for r in rows)
    assert chain["ok"] is True and chain["rows"] >= len(rows)
    assert isinstance(signatures, list)


def test_the_export_is_audited_with_the_same_hashes(demo_settings: Settings, exported: dict) -> None:
    store = open_store(demo_settings)
    with zipfile.ZipFile(io.BytesIO(exported["data"])) as archive:
        manifest_bytes = archive.read("manifest.json")
    recorded = last_export(store, AUDITOR, "sepsis-icu", 2)
    assert recorded is not None
    assert recorded["exported_by"].startswith("cli:")
    assert recorded["files"] == json.loads(manifest_bytes)["files"]
    assert recorded["manifest_sha256"] == sha(manifest_bytes)


def test_check_package_names_the_altered_missing_and_extra_files(exported: dict) -> None:
    data = exported["data"]
    altered = rezip(data, change={"evaluation.json": b'{"auroc": 0.99}'})
    assert len(check_package(altered)) == 1
    assert check_package(altered)[0].startswith("evaluation.json has been altered")
    assert check_package(rezip(data, drop="signatures.json")) == [
        "signatures.json is listed in the manifest but missing from the package"]
    assert check_package(rezip(data, change={"notes.txt": b"x"})) == [
        "notes.txt is in the package but not listed in the manifest"]
    assert check_package(b"not a zip") == ["the package is not a readable zip file"]


@pytest.mark.parametrize("out,fragment", [("evidence.txt", "must name a .zip file"),
                                          ("no-such-folder/evidence.zip", "does not exist")])
def test_export_refuses_a_bad_out_path(demo_settings: Settings, tmp_path: Path, out: str, fragment: str) -> None:
    result = cli(demo_settings.home, "audit", "export", "--model", "sepsis-icu", "--version", "2",
                 "--out", str(tmp_path / out), "--home", str(demo_settings.home))
    assert result.returncode == 1
    assert fragment in result.stderr


def test_a_clinician_may_not_export_evidence(demo_settings: Settings) -> None:
    with pytest.raises(PermissionDenied, match="may not view the audit log"):
        evidence_package(open_store(demo_settings), open_registry(demo_settings), CLINICIAN, "sepsis-icu", 2)


# -- which version held production at T ------------------------------------------------------------------------
T0, T1, T2, T3 = (datetime(2026, 9, 1, 8), datetime(2026, 10, 1, 14, 30), datetime(2026, 10, 5, 9),
                  datetime(2026, 10, 6, 11))


def _signature(cur: object, sid: str, version: int, who: tuple[str, str, str], decision: str, kind: str,
               at: datetime) -> None:
    cur.execute("INSERT INTO signatures VALUES (?, 'sepsis-icu', ?, ?, ?, ?, ?, ?, ?, 'because', ?, 'e1', ?, ?, ?, "  # type: ignore[attr-defined]
                "'use case sepsis-48h v1', '[]', NULL)",
                [sid, version, kind, decision, *who, f"I {decision} v{version}", at, "e" * 64, "c" * 64, "a" * 64])


@pytest.fixture
def history(store: Store) -> Store:
    """v1 adopted at T0; v2 promoted at T1 on two signatures; v3 moved in MLflow, detected at T2; rolled back
    to v2 at T3 on a clinical lead's signature."""
    with store.transaction() as cur:
        for user in (("ng", "Dr. Alice Ng", "clinician"), ("lee", "Jordan Lee", "data_scientist"),
                     ("patel", "Dr. Priya Patel", "clinical_lead")):
            cur.execute("INSERT INTO users (username, full_name, role, password_hash, created_at) VALUES (?, ?, ?, "
                        "'x', ?)", [*user, T0])
        ng, lee = ("ng", "Dr. Alice Ng", "clinician"), ("lee", "Jordan Lee", "data_scientist")
        _signature(cur, "s1", 2, ng, "approve", "sign_off", T1 - timedelta(hours=3))
        _signature(cur, "s2", 2, lee, "approve", "sign_off", T1 - timedelta(hours=1))
        _signature(cur, "s3", 3, ("patel", "Dr. Priya Patel", "clinical_lead"), "rollback", "rollback", T3)
        for pid, kind, frm, to, sigs, at in (("p1", "promotion", 1, 2, ["s1", "s2"], T1),
                                             ("p2", "rollback", 3, 2, ["s3"], T3)):
            cur.execute("INSERT INTO promotions VALUES (?, 'sepsis-icu', ?, ?, ?, 'completed', "
                        "'use case sepsis-48h v1', ?, ?, 'ng', ?, ?, NULL)",
                        [pid, kind, frm, to, json.dumps(sigs), "a" * 64, at, at])
        for version, at, kind, pid in ((1, T0, "adopted", None), (2, T1, "promoted", "p1"),
                                       (3, T2, "out_of_band", None), (2, T3, "rolled_back", "p2")):
            cur.execute("INSERT INTO alias_history (model_name, alias, version, changed_at, kind, promotion_id, actor) "
                        "VALUES ('sepsis-icu', 'production', ?, ?, ?, ?, 'system')", [version, at, kind, pid])
        record_event(cur, actor="lee", action="version_submitted", model="sepsis-icu", version=2, detail={})
        record_event(cur, actor="ng", action="signed", model="sepsis-icu", version=2, detail={"decision": "approve"})
    return store


def test_before_any_record_there_is_no_answer(history: Store, operator: User) -> None:
    answer = production_as_of(history, operator, "sepsis-icu", T0 - timedelta(days=1))
    assert answer.version is None and answer.kind is None
    assert answer.sentence == ("ModelBoard has no record of sepsis-icu's 'production' alias as early as "
                               "2026-08-31 08:00 UTC. Its first record is from 2026-09-01 08:00 UTC.")


def test_adopted_version_has_no_sign_off(history: Store, operator: User) -> None:
    answer = production_as_of(history, operator, "sepsis-icu", T1 - timedelta(seconds=1))
    assert (answer.version, answer.since, answer.approvers) == (1, T0, ())
    assert "(no ModelBoard sign-off)" in answer.sentence


@pytest.mark.parametrize("at", [T1, T1 + timedelta(days=2)])
def test_promoted_version_names_its_approvers(history: Store, operator: User, at: datetime) -> None:
    answer = production_as_of(history, operator, "sepsis-icu", at)
    assert (answer.version, answer.since, answer.promotion_id) == (2, T1, "p1")
    assert [s.full_name for s in answer.approvers] == ["Dr. Alice Ng", "Jordan Lee"]
    assert answer.sentence.startswith(f"At {at:%Y-%m-%d %H:%M} UTC, sepsis-icu v2 held 'production' (since "
                                      "2026-10-01 14:30 UTC, promoted through ModelBoard), approved by Dr. Alice Ng "
                                      "(Clinician, 2026-10-01 11:30 UTC, \u2018I approve v2\u2019), Jordan Lee")


def test_out_of_band_move_is_flagged_and_a_rollback_names_its_signer(history: Store, operator: User) -> None:
    moved = production_as_of(history, operator, "sepsis-icu", T2 + timedelta(hours=1))
    assert (moved.version, moved.approvers) == (3, ())
    assert "moved outside ModelBoard (detected at 2026-10-05 09:00 UTC; not approved)" in moved.sentence
    back = production_as_of(history, operator, "sepsis-icu", T3 + timedelta(hours=1))
    assert (back.version, back.kind) == (2, "rolled_back")
    assert "on the signature of Dr. Priya Patel (Clinical lead" in back.sentence


def test_only_auditors_and_admins_may_ask(history: Store) -> None:
    with pytest.raises(PermissionDenied):
        production_as_of(history, CLINICIAN, "sepsis-icu", T1)


def test_version_timeline_tells_the_milestones_in_order(history: Store, operator: User) -> None:
    timeline = version_timeline(history, operator, "sepsis-icu", 2)
    milestones = list(timeline["milestone"])
    assert {"submitted by lee", "signed by Dr. Alice Ng (approved)", "promoted to production",
            "left 'production' (v3 moved in outside ModelBoard)", "returned to 'production' by a rollback"} <= set(
        milestones)
    assert list(timeline["occurred_at"]) == sorted(timeline["occurred_at"])
    v3 = list(version_timeline(history, operator, "sepsis-icu", 3)["milestone"])
    assert v3 == ["moved to 'production' outside ModelBoard (detected; not approved)",
                  "rolled back: 'production' returned to v2"]


def test_cli_as_of_answers_in_json_and_converts_offsets_to_utc(history: Store, settings: Settings) -> None:
    result = cli(settings, "audit", "as-of", "--model", "sepsis-icu", "--at", "2026-10-03T10:00+02:00", "--json",
                 "--home", str(settings.home))
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert (payload["at"], payload["version"], payload["since"]) == ("2026-10-03T08:00:00", 2, T1.isoformat())
    assert payload["how"] == "promoted through ModelBoard"
    assert payload["approvers"] == [
        {"name": "Dr. Alice Ng", "role": "Clinician", "signed_at": "2026-10-01T11:30:00", "meaning": "I approve v2",
         "decision": "approve"},
        {"name": "Jordan Lee", "role": "Data scientist", "signed_at": "2026-10-01T13:30:00", "meaning": "I approve v2",
         "decision": "approve"}]


def test_cli_as_of_rejects_a_time_it_cannot_read(history: Store, settings: Settings) -> None:
    result = cli(settings, "audit", "as-of", "--model", "sepsis-icu", "--at", "3 October", "--home",
                 str(settings.home))
    assert result.returncode == 1
    assert "not an ISO date or time: write it like 2026-10-03T08:00" in result.stderr
