"""python -m core.cli: ModelBoard's command line.

Translates arguments into service calls, and errors into a one-line reason on
stderr with a non-zero exit code (1: the command failed, 2: bad arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from core.config import load_settings, quiet_mlflow
from core.domain.access import ROLES, User, command_line_operator
from core.errors import ModelBoardError, ValidationError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        words = self.prog.split()
        command = f" {words[-1]}" if len(words) > 1 else ""
        self.exit(2, f"error: {message} (see `python -m core.cli{command} --help`)\n")


def _operator() -> User:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return command_line_operator(name)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


def _settings(args: argparse.Namespace) -> Any:
    home = Path(args.home) if getattr(args, "home", None) else None
    return load_settings(home=home)


def cmd_demo(args: argparse.Namespace) -> int:
    from core.services.demo import build_demo, demo_needed

    overrides = {"MODELBOARD_DATABASE_URL": args.database_url, "MLFLOW_TRACKING_URI": args.tracking_uri,
                 "MLFLOW_REGISTRY_URI": args.tracking_uri}
    home = Path(args.home) if getattr(args, "home", None) else None
    settings = load_settings(env=dict(os.environ) | {k: v for k, v in overrides.items() if v}, home=home)
    if args.if_missing and not demo_needed(settings):
        _emit(args, {"built": False, "home": str(settings.home)}, f"MODELBOARD_HOME {settings.home} is set up already.")
        return 0
    if args.seed < 0:
        raise ValidationError(f"--seed must be zero or positive, not {args.seed}")
    progress = None if args.json else (lambda msg: print(msg, flush=True))
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints run links when it logs to a server: not our output
        summary = build_demo(settings, _operator(), seed=args.seed, progress=progress)
    lines = [f"Demo built in {summary.home} (seed {summary.seed}): {', '.join(summary.versions)}.",
             f"{summary.prediction_rows} production predictions written. Timings (s): {summary.timings_s}",
             "Demo users (username / password / role):"]
    lines += [f"  {u:<8} {pw:<22} {role:<15} {name}" for u, name, role, pw in summary.users]
    _emit(args, {"built": True, **asdict(summary)}, "\n".join(lines))
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            raise ValidationError("the two passwords differ: run the command again")
        return first
    line = sys.stdin.readline()
    if not line:
        raise ValidationError("no password on standard input: pipe it in, e.g. `printf '%s\\n' \"$PW\" | …`")
    return line.rstrip("\r\n")


def cmd_users(args: argparse.Namespace) -> int:
    from core.services import auth
    from core.services.installation import open_store

    store = open_store(_settings(args))
    operator = _operator()
    if args.action == "add":
        user = auth.add_user(store, operator, username=args.username, full_name=args.full_name,
                             role=args.role, password=_read_password())
        _emit(args, asdict(user), f"Added {user.full_name} ({user.username}) as {user.role}.")
    elif args.action == "list":
        users = auth.list_users(store, operator)
        text = "\n".join(f"{u.username:<12} {u.role:<15} {'active' if u.active else 'disabled':<9} {u.full_name}"
                         for u in users) or "No users yet."
        _emit(args, [asdict(u) for u in users], text)
    elif args.action == "unlock":
        auth.unlock_user(store, operator, args.username)
        _emit(args, {"unlocked": args.username}, f"Unlocked {args.username}.")
    else:
        active = args.action == "enable"
        auth.set_user_active(store, operator, args.username, active)
        _emit(args, {"username": args.username, "active": active}, f"{args.action.capitalize()}d {args.username}.")
    return 0


def cmd_usecase(args: argparse.Namespace) -> int:
    from core.domain.usecase import to_document
    from core.services import usecases
    from core.services.installation import open_store

    store = open_store(_settings(args))
    operator = _operator()
    if args.action == "import":
        path = Path(args.target)
        if not path.is_file():
            raise ValidationError(f"{path} is not a file: give the path of a use-case YAML file")
        use_case, created = usecases.import_use_case(store, operator, path.read_text(encoding="utf-8"))
        verb = "Imported" if created else "Unchanged:"
        _emit(args, {"created": created, **to_document(use_case)},
              f"{verb} use case {use_case.name} v{use_case.version}.")
    elif args.action == "export":
        text = usecases.export_yaml(store, operator, args.target, args.version)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            print(text, end="")
    else:
        found = usecases.list_use_cases(store, operator)
        _emit(args, [to_document(u) for u in found],
              "\n".join(f"{u.name} v{u.version}: {u.title} (models: {', '.join(u.models)})" for u in found)
              or "No use cases yet.")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from core.services.installation import open_registry, open_store
    from core.services.submission import SubmissionRequest, submit_version

    settings = _settings(args)
    if args.version is None and not args.run:
        raise ValidationError("give --version N (a registered version) or --run RUN_ID (a run to register)")
    if args.version is not None and args.version < 1:
        raise ValidationError(f"--version must be a registered version number (1, 2, …), not {args.version}")
    sensitive = tuple(c.strip() for c in args.sensitive.split(",") if c.strip()) if args.sensitive else None
    request = SubmissionRequest(model=args.model, version=args.version or 0, run_id=args.run,
                                eval_data=Path(args.eval_data) if args.eval_data else None, label=args.label,
                                sensitive=sensitive, deidentified=args.deidentified, complete_case=args.complete_case)

    def progress(step: str, fraction: float) -> None:
        if not args.json:
            print(f"[{fraction * 100:3.0f}%] {step}", file=sys.stderr, flush=True)

    from core.domain.criteria import verdict_word

    stored = submit_version(settings, open_store(settings), open_registry(settings), _operator(),
                            request, progress=progress)
    result = stored.result
    summary = {k: result.get(k) for k in ("model", "version", "threshold", "overall", "subgroups", "criteria",
                                           "criteria_passed", "scoring", "complete_case")} | {
        "evaluation_id": stored.id, "reused": stored.reused}
    failed = [c for c in result.get("criteria", []) if not c["passed"]]
    text = "\n".join([f"{args.model} v{stored.version} evaluated ({'reused' if stored.reused else 'new'} "
                      f"evaluation {stored.id}); now in clinical review.",
                      "  " + str((result.get("scoring") or {}).get("sentence", ""))]
                     + [f"  {verdict_word(c)}  {c['criterion']}: {c['observed']} "
                        f"(required {c['required']})" for c in result.get("criteria", [])])
    _emit(args, summary, text)
    return 3 if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from core.services.installation import installation_facts, open_registry, open_store

    settings = _settings(args)
    facts = installation_facts(open_store(settings))
    models = open_registry(settings).list_models()
    payload = {"home": str(settings.home), "tracking_uri": settings.tracking_uri, **asdict(facts),
               "models": [{"name": m.name, "versions": m.version_count, "aliases": m.aliases} for m in models]}
    text = "\n".join([f"home: {settings.home}", f"schema version: {facts.schema_version}",
                      f"demo: {'yes' if facts.is_demo else 'no'}"]
                     + [f"{m.name}: {m.version_count} versions, aliases {m.aliases}" for m in models])
    _emit(args, payload, text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="core.cli", description="ModelBoard command line")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--home", help="MODELBOARD_HOME to use (default: $MODELBOARD_HOME or data/local)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        return p

    demo = command("demo", "wipe MODELBOARD_HOME (only a demo or empty one) and build the embedded demo")
    demo.add_argument("--seed", type=int, default=7, help="random seed; the same seed gives the same data")
    demo.add_argument("--if-missing", action="store_true", help="do nothing if a finished demo or real store is there")
    demo.add_argument("--database-url", help="build it into this PostgreSQL database (hospital profile; an empty or "
                      "demo database only); default: $MODELBOARD_DATABASE_URL, else the DuckDB file")
    demo.add_argument("--tracking-uri", help="log its models to this MLflow server (one that holds no other "
                      "models); default: $MLFLOW_TRACKING_URI, else the embedded store")
    demo.set_defaults(func=cmd_demo)

    users = command("users", "manage accounts (the password is read from standard input)")
    users.add_argument("action", choices=["add", "list", "unlock", "disable", "enable"])
    users.add_argument("name", nargs="?", help="username for unlock, disable and enable")
    users.add_argument("--username")
    users.add_argument("--full-name", default="")
    users.add_argument("--role", choices=ROLES)
    users.set_defaults(func=cmd_users)

    usecase = command("usecase", "import, export or list use cases (YAML)")
    usecase.add_argument("action", choices=["import", "export", "list"])
    usecase.add_argument("target", nargs="?", help="FILE.yaml to import, or NAME to export")
    usecase.add_argument("--version", type=int, help="version to export (default: the latest)")
    usecase.add_argument("--out", help="write the export to this file instead of printing it")
    usecase.set_defaults(func=cmd_usecase)

    submit = command("submit", "evaluate a registered version for clinical review (exit 3 if a criterion fails)")
    submit.add_argument("--model", required=True, help="registered model name")
    submit.add_argument("--version", type=int, help="registered version number")
    submit.add_argument("--run", help="an MLflow run id whose model is not registered yet (ModelBoard registers it)")
    submit.add_argument("--eval-data", help="CSV or Parquet evaluation set (default: the one logged with the run)")
    submit.add_argument("--label", help="outcome column (default: the use case's label)")
    submit.add_argument("--sensitive", help="comma-separated sensitive attribute columns (default: the use case's)")
    submit.add_argument("--deidentified", action="store_true",
                        help="declare the data de-identified although identifier-like columns were found (audited)")
    submit.add_argument("--complete-case", action="store_true",
                        help="evaluate only patients with every model input present (for a model that cannot take "
                             "missing values; the model card records how many were left out)")
    submit.set_defaults(func=cmd_submit)

    status = command("status", "show the installation: store schema, demo or not, registered models")
    status.set_defaults(func=cmd_status)

    reconcile = command("reconcile", "finish or roll back interrupted promotions and report aliases moved outside "
                                     "ModelBoard (exit 1 if any were found)")
    reconcile.set_defaults(func=_lazy("core.cli_governance", "cmd_reconcile"))

    backup = command("backup", "copy the governance store, its signed audit checkpoints and the embedded MLflow store "
                               "into a new folder (the signing key is kept apart)")
    backup.add_argument("--out", required=True, help="a new or empty folder outside MODELBOARD_HOME")
    backup.set_defaults(func=_lazy("core.cli_governance", "cmd_backup"))
    restore = command("restore", "put a backup back into an empty MODELBOARD_HOME (same path) and verify its audit "
                                 "trail (exit 1 if it does not verify)")
    restore.add_argument("--from", dest="source", required=True, help="the folder `backup` wrote")
    restore.set_defaults(func=_lazy("core.cli_governance", "cmd_restore"))

    verify = command("verify", "recompute the artifact hash of every production version and check the aliases "
                               "(exit 1 on any finding)")
    verify.set_defaults(func=_lazy("core.cli_governance", "cmd_verify"))

    sign = command("sign", "sign off a model version as yourself (the signature password is read from standard "
                           "input); an approval that completes the policy moves 'production' at once")
    sign.add_argument("--model", required=True, help="registered model name")
    sign.add_argument("--version", type=int, required=True, help="registered version number")
    sign.add_argument("--username", required=True, help="your ModelBoard username (the signature's first component)")
    sign.add_argument("--decision", choices=["approve", "reject", "request_changes"], required=True)
    sign.add_argument("--meaning", help="what your signature means (default: a standard wording for the decision)")
    sign.add_argument("--rationale", required=True, help="why, in 10 to 4,000 characters")
    sign.add_argument("--acknowledge-failing-gates", action="store_true",
                      help="approve although gates of the policy fail (criteria not met, card incomplete, a critical "
                           "alert open): your approval is recorded with the failing gates and does not move "
                           "production until they are resolved; without this flag such an approval is refused")
    sign.set_defaults(func=_lazy("core.cli_governance", "cmd_sign"))

    ingest = command("ingest", "add a CSV/Parquet file of production predictions (encounter_id, predicted_at, the "
                               "model's inputs, score, decision); re-ingesting adds nothing; bad rows are quarantined "
                               "(exit 3 if any was)")
    ingest.add_argument("file", help="FILE.csv or FILE.parquet")
    ingest.add_argument("--model", required=True, help="registered model name")
    ingest.add_argument("--version", type=int, required=True, help="the registered version that made the predictions")
    ingest.add_argument("--deidentified", action="store_true",
                        help="declare the data de-identified although identifier-like columns were found (audited)")
    ingest.add_argument("--backfill", action="store_true",
                        help="declare the file history from before the version was registered in MLflow (a model "
                             "that ran before ModelBoard): earlier timestamps are accepted, not quarantined (audited)")
    ingest.set_defaults(func=_lazy("core.cli_monitoring", "cmd_ingest"))

    labels = command("ingest-labels", "add outcomes that arrived later (encounter_id, outcome 0/1, optionally "
                                      "model_name and labelled_at); bad rows are quarantined (exit 3 if any was)")
    labels.add_argument("file", help="FILE.csv or FILE.parquet")
    labels.set_defaults(func=_lazy("core.cli_monitoring", "cmd_ingest_labels"))

    monitor = command("monitor", "compute every monitoring window not yet computed (drift, score drift, estimated "
                                 "and realised performance), raise alerts by the use case's rules; safe from cron")
    monitor.set_defaults(func=_lazy("core.cli_monitoring", "cmd_monitor"))

    audit = command("audit", "verify the audit trail, answer 'which version held production at T', export evidence")
    audit.add_argument("action", choices=["verify", "as-of", "export"])
    audit.add_argument("--model", help="registered model name (as-of, export)")
    audit.add_argument("--at", help="ISO time, UTC, e.g. 2026-10-03T08:00 (as-of)")
    audit.add_argument("--version", type=int, help="version number (export)")
    audit.add_argument("--out", help="FILE.zip to write the evidence package to (export)")
    audit.set_defaults(func=_lazy("core.cli_audit", "cmd_audit"))
    return parser


def _lazy(module: str, name: str) -> Any:
    """A command implemented in another module, imported only when that command runs."""
    def run(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), name)(args))
    return run


def _check_users_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "audit":
        needs = {"verify": (), "as-of": ("model", "at"), "export": ("model", "version", "out")}[args.action]
        missing = [f"--{n}" for n in needs if getattr(args, n) is None]
        if missing:
            parser.error(f"audit {args.action} needs {', '.join(missing)}")
    if args.command == "usecase" and args.action in ("import", "export") and not args.target:
        parser.error(f"usecase {args.action} needs {'a FILE.yaml' if args.action == 'import' else 'a NAME'}")
    if args.command != "users":
        return
    if args.action == "add":
        missing = [flag for flag, value in (("--username", args.username), ("--full-name", args.full_name),
                                            ("--role", args.role)) if not value]
        if missing:
            parser.error(f"users add needs {', '.join(missing)}")
    elif args.action in ("unlock", "disable", "enable"):
        args.username = args.name or args.username
        if not args.username:
            parser.error(f"users {args.action} needs a USERNAME")


def main(argv: Sequence[str] | None = None) -> int:
    quiet_mlflow()  # MLflow's INFO lines and telemetry are not for operators
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_users_args(parser, args)
    try:
        code = int(args.func(args))
    except ModelBoardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except Exception as exc:  # a bug: one line for the operator, the traceback only on request
        if os.environ.get("MODELBOARD_DEBUG"):
            raise
        print(f"error: ModelBoard stopped on an unexpected error ({type(exc).__name__}: {str(exc)[:200]}). "
              "Its writes are all-or-nothing, so nothing half-done was kept; run `reconcile` and `audit verify`, "
              "and report this with the command you ran (MODELBOARD_DEBUG=1 shows the details).", file=sys.stderr)
        return 70
    return _mirror_checkpoint(args, code)


def _mirror_checkpoint(args: argparse.Namespace, code: int) -> int:
    """A command that talked to MLflow leaves the audit log's newest checkpoint mirrored there (docs/decisions/0014);
    one that did not (users, ingest) does not start an MLflow client just for that."""
    from core.adapters.registry import registry_was_opened

    if not registry_was_opened():
        return code
    from core.domain.audit_checkpoint import CheckpointProblem
    from core.services.audit_verification import mirror_checkpoint
    from core.services.installation import open_store, registry_if_present

    try:
        settings = _settings(args)
        registry = registry_if_present(settings)
        if settings.store_path.exists() and registry is not None:
            mirror_checkpoint(open_store(settings), registry)
    except (ModelBoardError, CheckpointProblem) as exc:
        print(f"error: the audit checkpoint could not be mirrored into MLflow: {exc}", file=sys.stderr)
        return code or 1
    return code


if __name__ == "__main__":
    sys.exit(main())
