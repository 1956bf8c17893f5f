"""`ingest` and `ingest-labels`: production predictions and their later outcomes into the store."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from core.cli import _emit, _operator, _settings
from core.errors import ValidationError


def cmd_ingest(args: argparse.Namespace) -> int:
    from core.services.ingest import ingest_predictions
    from core.services.installation import open_registry, open_store

    if args.version < 1:
        raise ValidationError(f"--version must be a registered version number (1, 2, …), not {args.version}")
    settings = _settings(args)
    report = ingest_predictions(settings, open_store(settings), open_registry(settings), _operator(),
                                model=args.model, version=args.version, path=Path(args.file),
                                deidentified=args.deidentified)
    _emit(args, asdict(report), report.sentence)
    return 0


def cmd_ingest_labels(args: argparse.Namespace) -> int:
    from core.services.ingest import ingest_labels
    from core.services.installation import open_store

    settings = _settings(args)
    report = ingest_labels(settings, open_store(settings), _operator(), path=Path(args.file))
    _emit(args, asdict(report), report.sentence)
    return 0
