"""`reconcile` and `verify`: the commands cron or an operator runs to keep MLflow and the store in step; `sign`,
a person's electronic signature from the command line; `backup` and `restore`."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING

from core.cli import _emit, _operator, _settings
from core.errors import ValidationError

if TYPE_CHECKING:
    from core.services.promotion import Finding


def _report(args: argparse.Namespace, findings: list[Finding], title: str) -> int:
    problems = [f for f in findings if f.problem]
    lines = [title] + [f"  {'PROBLEM' if f.problem else 'ok'}  {f.message}" for f in findings]
    if not findings:
        lines.append("  nothing to report: the registry matches ModelBoard's record")
    _emit(args, {"ok": not problems, "findings": [asdict(f) for f in findings]}, "\n".join(lines))
    return 1 if problems else 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from core.services.installation import open_registry, open_store
    from core.services.promotion import reconcile

    settings = _settings(args)
    findings = reconcile(settings, open_store(settings), open_registry(settings), _operator())
    return _report(args, findings, "Reconciled MLflow aliases with ModelBoard's record:")


def cmd_verify(args: argparse.Namespace) -> int:
    from core.services.installation import open_registry, open_store
    from core.services.promotion import verify

    settings = _settings(args)
    findings = verify(settings, open_store(settings), open_registry(settings), _operator())
    return _report(args, findings, "Verified production models (aliases and artifact hashes):")


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.services.backup import backup
    from core.services.installation import open_store

    settings = _settings(args)
    report = backup(settings, open_store(settings), _operator(), Path(args.out))
    _emit(args, {"folder": str(report.folder), "files": report.files, "audit_rows": report.audit_rows,
                 "checkpoint": report.checkpoint}, report.sentence)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.services.backup import restore

    chain = restore(_settings(args), Path(args.source))
    _emit(args, chain.as_dict(), ("Restored. " if chain.ok else "Restored, but ") + chain.sentence)
    return 0 if chain.ok and chain.anchored else 1


STANDARD_MEANING = {"approve": "Approved for clinical use in {population}", "reject": "Not approved for clinical use",
                    "request_changes": "Changes requested before approval"}


def _signature_password() -> str:
    import getpass
    import sys

    if sys.stdin.isatty():
        return getpass.getpass("Password (signature): ")
    line = sys.stdin.readline()
    if not line:
        raise ValidationError("no password on standard input: pipe it in, e.g. `printf '%s\\n' \"$PW\" | …`")
    return line.rstrip("\r\n")


def cmd_sign(args: argparse.Namespace) -> int:
    """Sign as the named person (who re-enters their password), bound to the card and evaluation as they stand
    now, which the output repeats; an approval while gates fail needs --acknowledge-failing-gates."""
    from core.services import signoff
    from core.services.auth import get_user
    from core.services.installation import open_registry, open_store

    settings = _settings(args)
    store, registry = open_store(settings), open_registry(settings)
    signer = get_user(store, args.username.strip().lower())
    if signer is None:
        raise ValidationError(f"no ModelBoard account {args.username!r}: sign with your own username")
    state = signoff.sign_off_state(store, registry, signer, args.model, args.version)
    population = state.use_case.target_population if state.use_case else "the intended population"
    meaning = args.meaning or STANDARD_MEANING[args.decision].format(population=population)
    acknowledged = state.failing_gates if args.acknowledge_failing_gates else ()
    request = signoff.SignatureRequest(args.model, args.version, args.decision, meaning, args.rationale,
                                       args.username, _signature_password(), state.evidence.card_sha256,
                                       state.evidence.evaluation_id, acknowledged_gates=acknowledged)
    signature, promoted = signoff.sign(settings, store, registry, signer, request)
    lines = [f"Signed: {signature.manifestation()}"]
    if signature.decision == "approve":
        lines.append(state.outlook(signer).sentence if promoted is None else
                     f"{args.model} v{args.version} is now in production (MLflow alias 'production').")
    _emit(args, {"signature": signature.id, "decision": signature.decision,
                 "acknowledged_failing_gates": list(signature.acknowledged_gates),
                 "promoted": promoted is not None}, "\n".join(lines))
    return 0
