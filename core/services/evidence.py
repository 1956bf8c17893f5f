"""The evidence package: one zip an auditor or regulator can check without ModelBoard.

It holds the model card (with its signatures), the evaluation exactly as stored, every signature with its
standing today, every audit row about the version (with its hashes) and the chain check, plus a manifest of
each file's SHA-256. Taking it out of ModelBoard is itself audited, with the same hashes, so a package that
surfaces later can be matched to the export that produced it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from datetime import datetime
from typing import Any

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.domain.csv_export import spreadsheet_csv
from core.domain.signoff import Standing
from core.services.audit import record_event, verify_chain

MANIFEST = "manifest.json"
WHAT = "evidence package"
_AUDIT_COLUMNS = ("id, occurred_at, actor, action, target, model_name, model_version, "
                  "CAST(detail AS VARCHAR) AS detail, prev_hash, row_hash")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_package(store: Store, registry: Registry, viewer: User, model: str, version: int) -> bytes:
    """Assemble the zip for one version and record the export (with every file's hash) in the audit trail.

    The audit extract and the chain check are taken before the export's own audit row is written, so the
    package describes the trail as it was when it was generated."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    files, evaluation = _files(store, registry, viewer, model, version)
    digests = {name: sha256(data) for name, data in files.items()}
    generated_at = utc_now().isoformat(timespec="seconds")
    manifest = _json({"model": model, "version": version, "generated_at": generated_at,
                      "generated_by": viewer.username, "files": digests, "evaluation": evaluation})
    with store.transaction() as cur:
        record_event(cur, actor=viewer.username, action="exported", model=model, version=version,
                     detail={"what": WHAT, "generated_at": generated_at, "files": digests,
                             "manifest_sha256": sha256(manifest)})
    return _zip(files | {MANIFEST: manifest})


def _files(store: Store, registry: Registry, viewer: User, model: str,
           version: int) -> tuple[dict[str, bytes], dict[str, Any] | None]:
    from core.services.model_card import to_pdf
    from core.services.signoff import sign_off_state

    state = sign_off_state(store, registry, viewer, model, version)
    card = dataclasses.replace(state.card, signatures=tuple(s.signature.manifestation() for s in state.standings))
    files = {"model-card.pdf": to_pdf(card)}
    stored = _stored_evaluation(store, model, version)
    if stored is not None:
        files["evaluation.json"] = stored.pop("result").encode("utf-8")
    files["signatures.json"] = _json([_signature_record(s) for s in state.standings])
    files["audit-extract.csv"] = _audit_extract(store, model, version)
    files["chain-verification.json"] = _json(verify_chain(store, registry).as_dict())
    return files, stored


def _stored_evaluation(store: Store, model: str, version: int) -> dict[str, Any] | None:
    """The newest complete evaluation's result text as stored (not re-serialised), its id and stored hash."""
    row = store.query_one(
        "SELECT id, CAST(result AS VARCHAR) AS result, result_sha256 FROM evaluations WHERE model_name = ? "
        "AND model_version = ? AND status = 'complete' ORDER BY finished_at DESC LIMIT 1", [model, version])
    if row is None:
        return None
    return {"id": row["id"], "result": row["result"], "result_sha256": row["result_sha256"],
            "note": "result_sha256 is the SHA-256 of the result's canonical JSON, the value signatures name; "
                    "the files entry is the SHA-256 of evaluation.json's bytes as stored"}


def _signature_record(item: Standing) -> dict[str, Any]:
    record = {k: (v.isoformat() if isinstance(v, datetime) else v)
              for k, v in dataclasses.asdict(item.signature).items()}
    record["criteria"] = list(item.signature.criteria)
    return record | {"counts_today": item.valid, "standing": "valid" if item.valid else item.reason,
                     "manifestation": item.signature.manifestation()}


def _audit_extract(store: Store, model: str, version: int) -> bytes:
    frame = store.query_df(f"SELECT {_AUDIT_COLUMNS} FROM audit_events WHERE model_name = ? "  # noqa: S608
                           "AND model_version = ? ORDER BY id", [model, version])
    frame["occurred_at"] = [t.isoformat(timespec="microseconds") for t in frame["occurred_at"]]
    return spreadsheet_csv(frame)


def _json(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                             compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def package_listing(data: bytes) -> dict[str, str]:
    """Every file in a package with the SHA-256 of its bytes, in the zip's order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: sha256(archive.read(name)) for name in archive.namelist()}


def check_package(data: bytes) -> list[str]:
    """Problems with a package, in words: a file whose SHA-256 differs from the manifest, a file missing or
    not listed. An empty list means the package is as it was generated (if the manifest itself is genuine:
    compare the hashes with the `exported` audit row)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return ["the package is not a readable zip file"]
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            return [f"{MANIFEST} is missing, so nothing can be checked"]
        try:
            listed: dict[str, str] = json.loads(archive.read(MANIFEST))["files"]
        except (ValueError, KeyError, TypeError):
            return [f"{MANIFEST} is not a valid manifest (no 'files' mapping)"]
        problems = [f"{name} is listed in the manifest but missing from the package"
                    for name in sorted(set(listed) - names)]
        problems += [f"{name} is in the package but not listed in the manifest"
                     for name in sorted(names - set(listed) - {MANIFEST})]
        problems += [f"{name} has been altered: its SHA-256 is {sha256(archive.read(name))}, the manifest says "
                     f"{listed[name]}" for name in sorted(set(listed) & names)
                     if sha256(archive.read(name)) != listed[name]]
    return problems


def last_export(store: Store, viewer: User, model: str, version: int) -> dict[str, Any] | None:
    """The newest recorded export of this version's evidence package: when, by whom, and each file's SHA-256,
    so a package someone hands over can be matched against what ModelBoard gave out."""
    require(viewer, Permission.VIEW_AUDIT_LOG)
    row = store.query_one(
        "SELECT id, occurred_at, actor, CAST(detail AS VARCHAR) AS detail FROM audit_events WHERE action = 'exported' "
        "AND model_name = ? AND model_version = ? AND json_extract_string(detail, '$.what') = ? "
        "ORDER BY id DESC LIMIT 1", [model, version, WHAT])
    if row is None:
        return None
    detail = json.loads(row["detail"] or "{}")
    return {"audit_row": int(row["id"]), "exported_at": row["occurred_at"], "exported_by": row["actor"],
            "files": detail.get("files", {}), "manifest_sha256": detail.get("manifest_sha256")}
