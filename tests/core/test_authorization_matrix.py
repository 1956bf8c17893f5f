"""The authorization matrix: every service that takes a `User`, called as anonymous, as each role and as a
disabled account, against the documented table in docs/authorization.md.

Arguments are dummies built from the annotations, so an allowed call usually ends in NotFound or
ValidationError: that still shows the permission check let the caller through. A denied call gets stand-ins
for the store, the registry and the settings that fail the test if touched, so the check must come first.
Rules that depend on the data (self-approval, signing as someone else) keep their own tests.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import pytest

import core.services
from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import Settings, load_settings
from core.domain.access import ROLE_PERMISSIONS, ROLES, Permission, Role, User
from core.domain.model_card import ModelCard
from core.errors import PermissionDenied
from core.services.audit import AuditQuery
from core.services.auth import LoginPolicy
from core.services.installation import open_registry, open_store
from core.services.signoff import SignatureRequest
from core.services.submission import SubmissionRequest

DOC = Path(__file__).resolve().parents[2] / "docs" / "authorization.md"
CALLERS: tuple[str, ...] = (*ROLES, "anonymous")
USER = re.compile(r"\bUser\b")
GOVERNANCE = re.compile(r"\b(Store|Registry|Settings|Session)\b")  # what reads or writes governance data


def _services() -> Iterator[tuple[str, Callable[..., Any]]]:
    for info in sorted(pkgutil.iter_modules(core.services.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"core.services.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not name.startswith("_"):
                yield f"{info.name}.{name}", fn


def _annotation(p: inspect.Parameter) -> str:
    a = p.annotation
    return a if isinstance(a, str) else getattr(a, "__name__", repr(a))


def _user_parameter(fn: Callable[..., Any]) -> str | None:
    found = [p.name for p in inspect.signature(fn).parameters.values() if USER.search(_annotation(p))]
    return found[0] if found else None


WITH_USER = {key: fn for key, fn in _services() if _user_parameter(fn)}
WITHOUT_USER = {key for key, fn in _services() if not _user_parameter(fn)
                and any(GOVERNANCE.search(_annotation(p)) for p in inspect.signature(fn).parameters.values())}


def _tables() -> list[list[dict[str, str]]]:
    """Every Markdown table of the doc, as rows keyed by header (backticks stripped)."""
    tables: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            tables.append([])
        elif not set("".join(cells)) <= set("-: "):
            tables[-1].append(dict(zip(header, cells, strict=True)))
    return tables


def _documented() -> tuple[dict[str, dict[str, str]], set[str]]:
    matrix: dict[str, dict[str, str]] = {}
    exempt: set[str] = set()
    for rows in _tables():
        for row in rows:
            if set(CALLERS) <= row.keys():
                assert row["service"] not in matrix, f"{row['service']} has two rows in {DOC.name}"
                matrix[row["service"]] = row
            elif "why it has no check of its own" in row:
                exempt.add(row["service"])
    return matrix, exempt


MATRIX, EXEMPT = _documented()


def test_every_service_that_takes_a_user_has_a_row() -> None:
    assert not set(WITH_USER) - set(MATRIX), f"add a row to {DOC.name} for {sorted(set(WITH_USER) - set(MATRIX))}"
    assert not set(MATRIX) - set(WITH_USER), f"{DOC.name} lists services that do not exist or take no user: " \
                                             f"{sorted(set(MATRIX) - set(WITH_USER))}"
    bad = {k: v for k, row in MATRIX.items() for c, v in row.items() if c in CALLERS and v not in ("allowed", "denied")}
    assert not bad, f"cells must read 'allowed' or 'denied': {bad}"


def test_every_service_without_a_user_says_why() -> None:
    assert not WITHOUT_USER - EXEMPT, (f"{sorted(WITHOUT_USER - EXEMPT)} read or write governance data without a "
                                       f"User: take one and check it, or say why not in {DOC.name}")
    assert not EXEMPT - WITHOUT_USER, f"{DOC.name} explains services that now take a user or are gone: " \
                                      f"{sorted(EXEMPT - WITHOUT_USER)}"


@pytest.mark.parametrize("service", sorted(MATRIX))
def test_the_table_follows_the_permission_it_names(service: str) -> None:
    """The 'checks' column and the role cells agree with ROLE_PERMISSIONS; anonymous is denied everywhere."""
    row = MATRIX[service]
    checks = row["checks"]
    if checks == "signed in":
        expected: set[str] = set(ROLES)
    else:
        assert checks in Permission.__members__, f"{service}: unknown permission {checks!r}"
        expected = {r for r in ROLES if Permission[checks] in ROLE_PERMISSIONS[r]}
    assert {r for r in ROLES if row[r] == "allowed"} == expected, f"{service}: row disagrees with {checks}"
    assert row["anonymous"] == "denied"


class Tripwire:
    """Stands for the store, registry or settings in a denied call: touching it means the check came too late."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the service used the {self._what} ({name}) before checking permission")


class Arguments:
    """Dummy arguments built from annotations: tripwires for a denied call, the module's one empty installation
    (opened on first use, as the `settings` and `store` fixtures open it) for an allowed one."""

    def __init__(self, base: Path) -> None:
        self.base = base

    @cached_property
    def _installed(self) -> tuple[Settings, Store]:
        # The store exists before any service sees the settings, so an allowed build_demo refuses to wipe it.
        settings = load_settings(env={}, home=self.base / "home")
        return settings, open_store(settings)

    @property
    def settings(self) -> Settings:
        return self._installed[0]

    @property
    def store(self) -> Store:
        return self._installed[1]

    @cached_property
    def registry(self) -> Registry:
        return open_registry(self.settings)

    def build(self, annotation: str, *, armed: bool) -> Any:
        plain = annotation.removesuffix(" | None")
        real: dict[str, Callable[[], Any]] = {
            "Store": lambda: self.store, "Registry": lambda: self.registry, "Settings": lambda: self.settings,
            "LoginPolicy": lambda: LoginPolicy.from_settings(self.settings),
        }
        if plain in real:
            return Tripwire(plain) if armed else real[plain]()
        dummies: dict[str, Callable[[], Any]] = {
            "str": lambda: "matrix-dummy", "int": lambda: 1, "float": lambda: 0.5, "bool": lambda: False,
            "bytes": lambda: b"", "Path": lambda: self.base / "backup", "datetime": lambda: datetime(2026, 1, 1),
            "dict[str, str]": dict, "AuditQuery": AuditQuery,
            "SubmissionRequest": lambda: SubmissionRequest("matrix-dummy", 1),
            "SignatureRequest": lambda: SignatureRequest("matrix-dummy", 1, "approve", "approve", "a dummy reason",
                                                         "matrix-dummy", "matrix-dummy", "0" * 64, None),
            "ModelCard": lambda: ModelCard("matrix-dummy", 1, {}),
        }
        if plain not in dummies:
            pytest.fail(f"teach test_authorization_matrix to build a {annotation!r} argument")
        return dummies[plain]()


@pytest.fixture(scope="module")
def arguments(tmp_path_factory: pytest.TempPathFactory) -> Arguments:
    return Arguments(tmp_path_factory.mktemp("matrix"))


def _call(fn: Callable[..., Any], arguments: Arguments, caller: User | None, *, armed: bool) -> None:
    parameters = inspect.signature(fn).parameters.values()
    args = {p.name: caller if USER.search(_annotation(p)) else arguments.build(_annotation(p), armed=armed)
            for p in parameters if USER.search(_annotation(p)) or p.default is inspect.Parameter.empty}
    positional = [args.pop(p.name) for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY
                  and p.name in args]
    fn(*positional, **args)


def _user(role: Role, *, active: bool = True) -> User:
    return User(username=f"matrix-{role}", full_name=f"Matrix {role}", role=role, active=active)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("service", sorted(WITH_USER))
def test_service_as_caller_matches_the_table(service: str, caller: str, arguments: Arguments) -> None:
    fn = WITH_USER[service]
    user = None if caller == "anonymous" else _user(cast(Role, caller))
    if MATRIX[service][caller] == "denied":
        with pytest.raises(PermissionDenied) as denied:
            _call(fn, arguments, user, armed=True)
        if user is None:
            assert "Sign in first" in str(denied.value)
        return
    try:
        _call(fn, arguments, user, armed=False)
    except PermissionDenied as exc:
        pytest.fail(f"{service} denied {caller}, which {DOC.name} allows: {exc}")
    except Exception:  # noqa: BLE001, S110 - dummy arguments; anything but PermissionDenied means the check passed
        pass


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("service", sorted(WITH_USER))
def test_a_disabled_account_is_denied_everything(service: str, role: Role, arguments: Arguments) -> None:
    with pytest.raises(PermissionDenied, match="account is disabled"):
        _call(WITH_USER[service], arguments, _user(role, active=False), armed=True)


def test_a_disabled_account_is_not_a_role_problem() -> None:
    """The message tells a disabled person what happened, not that their role lacks a permission."""
    from core.domain.access import require

    with pytest.raises(PermissionDenied, match="Matrix admin's account is disabled"):
        require(replace(_user("admin"), active=False), Permission.VIEW_REGISTRY)
