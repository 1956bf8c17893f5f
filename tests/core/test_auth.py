"""Accounts, argon2 hashing, lockout, idle expiry and permission checks in core."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from core.adapters.store import Store
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.errors import AuthenticationFailed, PermissionDenied, SessionExpired, ValidationError
from core.services import auth
from core.services.audit import list_events

POLICY = auth.LoginPolicy(max_failed_logins=5, lockout_minutes=15, idle_timeout_minutes=15)
PASSWORD = "correct horse battery"


@pytest.fixture
def clinician(store: Store, operator: User) -> User:
    return auth.add_user(store, operator, username="ng", full_name="Dr. Alice Ng", role="clinician", password=PASSWORD)


def failure_message(store: Store, username: str, password: str) -> str:
    with pytest.raises(AuthenticationFailed) as info:
        auth.authenticate(store, POLICY, username, password)
    return str(info.value)


def test_password_is_stored_as_argon2id_hash(store: Store, clinician: User) -> None:
    stored = store.query_one("SELECT password_hash FROM users WHERE username = 'ng'")
    assert stored is not None
    assert stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in stored["password_hash"]


def test_login_succeeds_and_is_audited(store: Store, clinician: User, operator: User) -> None:
    session = auth.authenticate(store, POLICY, "ng", PASSWORD)
    assert session.user.username == "ng" and session.user.role == "clinician"
    events = list_events(store, operator)
    assert "login_succeeded" in set(events["action"])


def test_login_error_never_reveals_whether_the_user_exists(store: Store, clinician: User) -> None:
    wrong_password = failure_message(store, "ng", "not the password")
    no_such_user = failure_message(store, "nobody", "not the password")
    assert wrong_password == no_such_user
    assert "nobody" not in no_such_user and "Alice" not in wrong_password


def test_five_failures_lock_the_account_for_fifteen_minutes(store: Store, clinician: User, operator: User) -> None:
    normal_failure = failure_message(store, "ng", "wrong-1")
    for i in range(2, 6):
        failure_message(store, "ng", f"wrong-{i}")
    # Locked: even the right password fails, with the same message as any failure.
    assert failure_message(store, "ng", PASSWORD) == normal_failure
    locked = store.query_one("SELECT locked_until FROM users WHERE username = 'ng'")
    assert locked is not None and locked["locked_until"] is not None
    assert timedelta(minutes=14) < locked["locked_until"] - utc_now() <= timedelta(minutes=15)
    later = utc_now() + timedelta(minutes=16)
    assert auth.authenticate(store, POLICY, "ng", PASSWORD, now=later).user.username == "ng"
    reasons = [json.loads(d)["reason"] for d in list_events(store, operator)["detail"] if "reason" in d]
    assert "account locked" in reasons


def test_four_failures_then_success_resets_the_count(store: Store, clinician: User) -> None:
    for i in range(4):
        failure_message(store, "ng", f"wrong-{i}")
    auth.authenticate(store, POLICY, "ng", PASSWORD)
    for i in range(4):
        failure_message(store, "ng", f"again-{i}")
    assert auth.authenticate(store, POLICY, "ng", PASSWORD).user.username == "ng"


def test_admin_can_unlock(store: Store, clinician: User, operator: User) -> None:
    for i in range(5):
        failure_message(store, "ng", f"wrong-{i}")
    auth.unlock_user(store, operator, "ng")
    assert auth.authenticate(store, POLICY, "ng", PASSWORD).user.username == "ng"


def test_disabled_account_cannot_log_in(store: Store, clinician: User, operator: User) -> None:
    auth.set_user_active(store, operator, "ng", False)
    failure_message(store, "ng", PASSWORD)


def test_idle_session_expires(store: Store, clinician: User) -> None:
    session = auth.authenticate(store, POLICY, "ng", PASSWORD)
    alive = auth.touch_session(session, POLICY, now=session.last_active_at + timedelta(minutes=14))
    with pytest.raises(SessionExpired, match="15 minutes"):
        auth.touch_session(alive, POLICY, now=alive.last_active_at + timedelta(minutes=15, seconds=1))


def test_roles_are_enforced_in_core(store: Store, clinician: User) -> None:
    with pytest.raises(PermissionDenied, match="may not manage user accounts"):
        auth.add_user(store, clinician, username="eve", full_name="Eve", role="admin", password="x" * 20)
    with pytest.raises(PermissionDenied):
        auth.list_users(store, clinician)
    with pytest.raises(PermissionDenied, match="audit log"):
        list_events(store, clinician)
    assert store.query_one("SELECT * FROM users WHERE username = 'eve'") is None


@pytest.mark.parametrize("role,allowed", [
    ("clinician", {Permission.VIEW_REGISTRY, Permission.VIEW_PRODUCTION_LOG, Permission.SIGN_OFF,
                   Permission.ROLL_BACK, Permission.HANDLE_ALERTS}),
    ("data_scientist", {Permission.VIEW_REGISTRY, Permission.VIEW_PRODUCTION_LOG, Permission.SUBMIT_MODELS,
                        Permission.EDIT_MODEL_CARD, Permission.SIGN_OFF, Permission.HANDLE_ALERTS,
                        Permission.RUN_MONITORING}),
    # Auditors and administrators never sign or roll back.
    ("auditor", {Permission.VIEW_REGISTRY, Permission.VIEW_PRODUCTION_LOG, Permission.VIEW_AUDIT_LOG}),
    ("admin", set(Permission) - {Permission.SIGN_OFF, Permission.ROLL_BACK}),
])
def test_permission_matrix(role: str, allowed: set[Permission]) -> None:
    user = User(username="u", full_name="U", role=role)  # type: ignore[arg-type]
    for permission in Permission:
        if permission in allowed:
            require(user, permission)
        else:
            with pytest.raises(PermissionDenied):
                require(user, permission)


def test_new_account_validation_lists_every_problem(store: Store, operator: User) -> None:
    with pytest.raises(ValidationError) as info:
        auth.add_user(store, operator, username="Bad Name", full_name="", role="surgeon", password="short")
    message = str(info.value)
    for fragment in ("username must be", "full name must be", "at least 12 characters", "unknown role 'surgeon'"):
        assert fragment in message


def test_duplicate_username_refused(store: Store, clinician: User, operator: User) -> None:
    with pytest.raises(ValidationError, match="already taken"):
        auth.add_user(store, operator, username="ng", full_name="Other", role="auditor", password=PASSWORD)


def test_exports_are_audited_and_need_audit_rights(store: Store, clinician: User, operator: User) -> None:
    from core.services.audit import AuditQuery, record_export

    with pytest.raises(PermissionDenied):
        record_export(store, clinician, what="audit log CSV", rows=3, filters=AuditQuery())
    record_export(store, operator, what="audit log CSV", rows=3, filters=AuditQuery(actor="ng"))
    exported = list_events(store, operator, AuditQuery(action="exported"))
    assert len(exported) == 1 and json.loads(exported["detail"][0])["filters"]["actor"] == "ng"
