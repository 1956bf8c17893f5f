"""`reconcile` and `verify`: the commands cron or an operator runs to keep MLflow and the store in step."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING

from core.cli import _emit, _operator, _settings

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
