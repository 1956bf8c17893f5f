"""`ingest` and `ingest-labels`: production predictions and their later outcomes into the store."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli import _emit, _operator, _settings
from core.errors import ValidationError

if TYPE_CHECKING:
    from core.services.ingest import IngestReport


def cmd_ingest(args: argparse.Namespace) -> int:
    from core.services.ingest import ingest_predictions
    from core.services.installation import open_registry, open_store

    if args.version < 1:
        raise ValidationError(f"--version must be a registered version number (1, 2, …), not {args.version}")
    settings = _settings(args)
    report = ingest_predictions(settings, open_store(settings), open_registry(settings), _operator(),
                                model=args.model, version=args.version, path=Path(args.file),
                                deidentified=args.deidentified, backfill=args.backfill)
    _emit(args, asdict(report), report.sentence)
    return _quarantined(report)


def _quarantined(report: IngestReport) -> int:
    """Exit 3 when rows were quarantined: the rest is stored, but the command did not do all it was asked."""
    if not report.quarantined:
        return 0
    print(f"error: {report.quarantined} of {report.rows} rows of {report.source} were quarantined, not ingested "
          "(reasons above, each row's in the quarantine table); correct them at the source and ingest the "
          "corrected rows", file=sys.stderr)
    return 3


def cmd_ingest_labels(args: argparse.Namespace) -> int:
    from core.services.ingest import ingest_labels
    from core.services.installation import open_store

    settings = _settings(args)
    report = ingest_labels(settings, open_store(settings), _operator(), path=Path(args.file))
    _emit(args, asdict(report), report.sentence)
    return _quarantined(report)


def cmd_monitor(args: argparse.Namespace) -> int:
    from core.services.installation import open_registry, open_store
    from core.services.monitoring import run_monitor

    settings = _settings(args)
    run = run_monitor(settings, open_store(settings), open_registry(settings), _operator())
    lines = [f"Monitoring run {run.id[:8]}: {len(run.windows)} window(s) computed, "
             f"{sum(b.new for b in run.alerts)} new alert(s), {len(run.alerts)} rule breach(es)."]
    lines += [f"  {b.severity:<8} {b.model} v{b.version} {b.window_start[:10]} {b.rule}"
              + ("" if b.new else " (alert already open)") for b in run.alerts]
    lines += [f"  skipped {reason}" for reason in run.skipped]
    lines += [f"  webhook {n['host']}: {'delivered' if n['ok'] else n['error']}" for n in run.notifications]
    _emit(args, run.as_json(), "\n".join(lines))
    if run.skipped:  # cron must see that monitoring did not do all it was asked
        print(f"error: monitoring skipped {len(run.skipped)} model version(s); their windows were not computed. "
              "Fix what each line says (a busy store: run `monitor` again) and run it again.", file=sys.stderr)
        return 1
    return 0
