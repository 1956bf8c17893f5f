"""python -m core.worker EVALUATION_ID: the evaluation worker process.

The only ModelBoard process that loads (unpickles) models, always through
MLflow's own loader and only for registered versions. It reports progress as
JSON lines on stdout and fails with a one-line reason on stderr.
See docs/decisions/0005-evaluation-worker.md.
"""

from __future__ import annotations

import json
import re
import sys

from core.config import load_settings, quiet_mlflow


def _progress(step: str, fraction: float) -> None:
    print(json.dumps({"step": step, "fraction": round(fraction, 3)}), flush=True)


def main(argv: list[str]) -> int:
    quiet_mlflow()
    if len(argv) != 1 or not re.fullmatch(r"[0-9a-f]{32}", argv[0]):
        print("error: usage: python -m core.worker EVALUATION_ID (32 hex digits)", file=sys.stderr)
        return 2
    from core.errors import ModelBoardError
    from core.services import evaluation
    from core.services.installation import open_registry, open_store

    settings = load_settings()
    try:
        evaluation.run(settings, open_store(settings), open_registry(settings), argv[0], _progress)
    except ModelBoardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _progress("Evaluation complete", 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
