"""python -m core.cli audit {verify,as-of,export}: the audit trail for auditors and cron jobs.

`verify` exits 1 when the hash chain is broken, so a scheduled job can raise the alarm; `as-of` answers
"which version held production at T, approved by whom"; `export` writes a version's evidence package.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.cli import _emit, _operator, _settings
from core.errors import ValidationError
from core.services.installation import open_store


def cmd_audit(args: argparse.Namespace) -> int:
    """Dispatch one audit action; 0 when it succeeded, 1 when the chain is broken."""
    actions = {"verify": _verify, "as-of": _as_of, "export": _export}
    return actions[args.action](args)


def _verify(args: argparse.Namespace) -> int:
    from core.services.audit import verify_chain
    from core.services.installation import registry_if_present

    settings = _settings(args)
    chain = verify_chain(open_store(settings), registry_if_present(settings))
    _emit(args, chain.as_dict(), chain.sentence + ("" if not chain.ok else f" Head hash: {chain.head}"))
    return 0 if chain.ok else 1


def parse_at(text: str) -> datetime:
    """An ISO date or time; a time with an offset is turned into naive UTC, one without is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"--at {text!r} is not an ISO date or time: write it like 2026-10-03T08:00 "
                              "(UTC) or 2026-10-03T10:00+02:00") from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _as_of(args: argparse.Namespace) -> int:
    from core.services.history import production_as_of

    at = parse_at(args.at)
    answer = production_as_of(open_store(_settings(args)), _operator(), args.model, at)
    payload: dict[str, Any] = {
        "model": answer.model, "at": at.isoformat(), "version": answer.version,
        "since": answer.since.isoformat() if answer.since else None, "how": answer.how, "kind": answer.kind,
        "promotion_id": answer.promotion_id,
        "approvers": [{"name": s.full_name, "role": s.role_label, "signed_at": s.signed_at.isoformat(),
                       "meaning": s.meaning, "decision": s.decision} for s in answer.approvers],
        "sentence": answer.sentence}
    _emit(args, payload, answer.sentence)
    return 0


def _export(args: argparse.Namespace) -> int:
    from core.services.evidence import evidence_package, package_listing, sha256
    from core.services.installation import open_registry

    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".zip":
        raise ValidationError(f"--out {args.out} must name a .zip file, e.g. evidence-{args.model}-v{args.version}.zip")
    if not out.parent.resolve().is_dir():
        raise ValidationError(f"the folder {out.parent} does not exist: create it or choose another --out")
    settings = _settings(args)
    data = evidence_package(open_store(settings), open_registry(settings), _operator(), args.model, args.version)
    out.write_bytes(data)
    files = package_listing(data)
    lines = [f"Wrote the evidence package of {args.model} v{args.version} to {out.resolve()} "
             f"({len(data):,} bytes, SHA-256 {sha256(data)}):"] + [f"  {h}  {n}" for n, h in files.items()]
    _emit(args, {"path": str(out.resolve()), "sha256": sha256(data), "files": files}, "\n".join(lines))
    return 0

