"""Accounts, login and session expiry.

Passwords are hashed with argon2id. Repeated failures lock an account for a
while; the login error is the same whether the user exists, the password is
wrong or the account is locked, so the login form cannot be used to discover
accounts. Idle sessions expire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.adapters.store import Store
from core.config import Settings
from core.domain.access import Permission, Role, Session, User, parse_role, require, require_signed_in
from core.domain.clock import utc_now
from core.errors import AuthenticationFailed, NotFound, SessionExpired, ValidationError
from core.services.audit import record_event

LOGIN_FAILED = (
    "Login failed: the username or password is wrong, or the account is locked after "
    "repeated failures. Check both and try again; a locked account opens again after "
    "{minutes} minutes, or an administrator can unlock it."
)
USERNAME_RULE = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True)
class LoginPolicy:
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    idle_timeout_minutes: int = 15

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(settings.max_failed_logins, settings.lockout_minutes, settings.idle_timeout_minutes)


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against when the user is unknown, so timing tells nothing."""
    return _hasher().hash("modelboard-no-such-user")


def _password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def validate_new_account(username: str, full_name: str, role: str, password: str) -> Role:
    """Check every field of a new account at once and say what to fix."""
    problems = []
    if not USERNAME_RULE.match(username):
        problems.append(
            "username must be 2–32 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter"
        )
    if not full_name.strip() or len(full_name) > 100 or any(ord(c) < 32 for c in full_name):
        problems.append("full name must be 1–100 printable characters (it appears on signatures)")
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    try:
        checked_role = parse_role(role)
    except ValidationError as exc:
        problems.append(str(exc))
    if problems:
        raise ValidationError("; ".join(problems))
    return checked_role


def _user_from_row(row: dict[str, Any]) -> User:
    return User(
        username=row["username"],
        full_name=row["full_name"],
        role=parse_role(row["role"]),
        active=bool(row["active"]),
        locked_until=row["locked_until"],
        last_login_at=row["last_login_at"],
    )


def add_user(store: Store, actor: User, *, username: str, full_name: str, role: str, password: str) -> User:
    """Create an account (administrators only); the event is audited."""
    require(actor, Permission.MANAGE_USERS)
    checked_role = validate_new_account(username, full_name, role, password)
    password_hash = _hasher().hash(password)
    with store.transaction() as cur:
        if cur.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise ValidationError(f"username {username!r} is already taken: choose another")
        cur.execute(
            "INSERT INTO users (username, full_name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            [username, full_name.strip(), checked_role, password_hash, utc_now()],
        )
        record_event(cur, actor=actor.username, action="user_added", target=username,
                     detail={"role": checked_role, "full_name": full_name.strip()})
    return User(username=username, full_name=full_name.strip(), role=checked_role)


def get_user(store: Store, username: str) -> User | None:
    row = store.query_one("SELECT * FROM users WHERE username = ?", [username])
    return _user_from_row(row) if row else None


def list_users(store: Store, viewer: User) -> list[User]:
    require(viewer, Permission.MANAGE_USERS)
    return [_user_from_row(r) for r in store.query("SELECT * FROM users ORDER BY role, username")]


def locked_accounts(store: Store, viewer: User, *, now: datetime | None = None) -> list[User]:
    """Accounts locked right now after repeated failed logins (administrators only)."""
    require(viewer, Permission.MANAGE_USERS)
    rows = store.query("SELECT * FROM users WHERE locked_until > ? ORDER BY username", [now or utc_now()])
    return [_user_from_row(r) for r in rows]


def unlock_user(store: Store, actor: User, username: str) -> None:
    """Clear failed attempts and any lock (administrators only)."""
    require(actor, Permission.MANAGE_USERS)
    with store.transaction() as cur:
        if not cur.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise NotFound(f"no account named {username!r}")
        cur.execute("UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE username = ?", [username])
        record_event(cur, actor=actor.username, action="user_unlocked", target=username)


def set_user_active(store: Store, actor: User, username: str, active: bool) -> None:
    """Disable or re-enable an account; accounts are never deleted (signatures name them)."""
    require(actor, Permission.MANAGE_USERS)
    if username == actor.username and not active:
        raise ValidationError("you cannot disable your own account: ask another administrator")
    with store.transaction() as cur:
        if not cur.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise NotFound(f"no account named {username!r}")
        cur.execute("UPDATE users SET active = ? WHERE username = ?", [active, username])
        record_event(cur, actor=actor.username, action="user_enabled" if active else "user_disabled",
                     target=username)


def _account_row(cur: Any, username: str) -> dict[str, Any] | None:
    """The account's stored row (hash included), read inside the caller's transaction."""
    rel = cur.execute("SELECT * FROM users WHERE username = ?", [username])
    names = [d[0] for d in rel.description or []]
    fetched = rel.fetchone()
    return dict(zip(names, fetched, strict=False)) if fetched else None


def authenticate(store: Store, policy: LoginPolicy, username: str, password: str,
                 *, now: datetime | None = None) -> Session:
    """Check a login; on success return a fresh Session, else raise AuthenticationFailed."""
    now = now or utc_now()
    failure = AuthenticationFailed(LOGIN_FAILED.format(minutes=policy.lockout_minutes))
    username = username.strip().lower()[:64]
    with store.transaction() as cur:
        row = _account_row(cur, username)
        if row is None or not row["active"]:
            _password_matches(_dummy_hash(), password)
            reason = "unknown user" if row is None else "account disabled"
            record_event(cur, actor=username or "?", action="login_failed", detail={"reason": reason})
        elif row["locked_until"] is not None and row["locked_until"] > now:
            _password_matches(row["password_hash"], password)
            record_event(cur, actor=username, action="login_failed", detail={"reason": "account locked"})
        elif not _password_matches(row["password_hash"], password):
            _register_failure(cur, row, policy, now)
        else:
            cur.execute(
                "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_login_at = ? WHERE username = ?",
                [now, username],
            )
            record_event(cur, actor=username, action="login_succeeded")
            user = replace(_user_from_row(row), locked_until=None, last_login_at=now)
            return Session(user=user, started_at=now, last_active_at=now)
    raise failure


SIGNATURE_FAILED = ("Signature not accepted: the username or password is wrong, or the account is locked. "
                    "Enter your own username and password again; after {attempts} wrong attempts the account is "
                    "locked like a failed login.")


def confirm_identity(store: Store, policy: LoginPolicy, signer: User, username: str, password: str,
                     *, purpose: str, now: datetime | None = None) -> None:
    """Both signature components again (21 CFR 11.200): the signer's own username and password. A wrong one is
    audited and counts towards the same lockout as a failed login; success is not a login and writes nothing."""
    require_signed_in(signer, purpose)
    now = now or utc_now()
    failure = AuthenticationFailed(SIGNATURE_FAILED.format(attempts=policy.max_failed_logins))
    given = username.strip().lower()[:64]
    with store.transaction() as cur:
        row = _account_row(cur, signer.username)
        if row is None or not row["active"] or given != signer.username:
            _password_matches(_dummy_hash(), password)
            record_event(cur, actor=signer.username, action="signature_failed",
                         detail={"purpose": purpose, "reason": "username is not the signer's own"
                                 if row is not None and row["active"] else "account not active"})
        elif row["locked_until"] is not None and row["locked_until"] > now:
            _password_matches(row["password_hash"], password)
            record_event(cur, actor=signer.username, action="signature_failed",
                         detail={"purpose": purpose, "reason": "account locked"})
        elif not _password_matches(row["password_hash"], password):
            _register_failure(cur, row, policy, now, action="signature_failed", purpose=purpose)
        else:
            cur.execute("UPDATE users SET failed_attempts = 0 WHERE username = ?", [signer.username])
            return
    raise failure


def _register_failure(cur: Any, row: dict[str, Any], policy: LoginPolicy, now: datetime,
                      *, action: str = "login_failed", purpose: str | None = None) -> None:
    attempts = int(row["failed_attempts"]) + 1
    locked_until = now + timedelta(minutes=policy.lockout_minutes) if attempts >= policy.max_failed_logins else None
    cur.execute(
        "UPDATE users SET failed_attempts = ?, locked_until = ? WHERE username = ?",
        [0 if locked_until else attempts, locked_until, row["username"]],
    )
    detail: dict[str, Any] = {"reason": "wrong password", "attempt": attempts}
    if purpose:
        detail["purpose"] = purpose
    if locked_until:
        detail["locked_until"] = locked_until.isoformat()
    record_event(cur, actor=row["username"], action=action, detail=detail)


def touch_session(session: Session, policy: LoginPolicy, *, now: datetime | None = None) -> Session:
    """Keep an active session alive, or raise SessionExpired after the idle limit."""
    now = now or utc_now()
    if now - session.last_active_at > timedelta(minutes=policy.idle_timeout_minutes):
        raise SessionExpired(
            f"You were logged out after {policy.idle_timeout_minutes} minutes without activity. Please log in again."
        )
    return replace(session, last_active_at=now)


def refresh_session_user(store: Store, session: Session) -> Session:
    """Re-read the account so a disabled user or changed role takes effect at once."""
    user = get_user(store, session.user.username)
    if user is None or not user.active:
        raise SessionExpired("Your account is no longer active. Ask an administrator.")
    return replace(session, user=user)
