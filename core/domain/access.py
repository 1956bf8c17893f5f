"""Who may do what: roles, permissions and the check every service makes.

Pages hide what a role cannot use, but that is a courtesy; the rule lives here
and every service calls `require` before it reads or writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Literal, get_args

from core.errors import PermissionDenied, ValidationError

Role = Literal["clinician", "clinical_lead", "data_scientist", "auditor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

ROLE_LABELS: dict[Role, str] = {
    "clinician": "Clinician",
    "clinical_lead": "Clinical lead",
    "data_scientist": "Data scientist",
    "auditor": "Auditor",
    "admin": "Administrator",
}

CLINICAL_ROLES: frozenset[Role] = frozenset({"clinician", "clinical_lead"})  # the people who review and sign


class Permission(Enum):
    VIEW_REGISTRY = "view registered models"
    VIEW_PRODUCTION_LOG = "view production monitoring"
    VIEW_AUDIT_LOG = "view the audit log"
    MANAGE_USERS = "manage user accounts"
    MANAGE_USE_CASES = "define use cases and their criteria"
    SUBMIT_MODELS = "submit model versions for review"
    EDIT_MODEL_CARD = "edit model card narratives"
    SIGN_OFF = "sign off model versions (approve, reject, request changes)"
    ROLL_BACK = "roll the production model back to the previous version"
    HANDLE_ALERTS = "acknowledge alerts"
    RECONCILE = "reconcile the registry with the governance store"
    RUN_MONITORING = "run production monitoring"
    MAINTAIN_INSTALLATION = "back up the installation or rebuild the demo"


# Auditors and administrators never sign: an auditor checks the record, an administrator runs the system.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "clinician": frozenset({Permission.VIEW_REGISTRY, Permission.VIEW_PRODUCTION_LOG, Permission.SIGN_OFF,
                            Permission.ROLL_BACK, Permission.HANDLE_ALERTS}),
    # A clinician who also owns the clinical side of use cases: intended use, threshold, minimum criteria.
    "clinical_lead": frozenset(
        {Permission.VIEW_REGISTRY, Permission.VIEW_PRODUCTION_LOG, Permission.MANAGE_USE_CASES,
         Permission.SIGN_OFF, Permission.ROLL_BACK, Permission.HANDLE_ALERTS}
    ),
    "data_scientist": frozenset(
        {Permission.VIEW_REGISTRY, Permission.VIEW_PRODUCTION_LOG, Permission.SUBMIT_MODELS,
         Permission.EDIT_MODEL_CARD, Permission.SIGN_OFF, Permission.HANDLE_ALERTS, Permission.RUN_MONITORING}
    ),
    "auditor": frozenset(
        {Permission.VIEW_REGISTRY, Permission.VIEW_PRODUCTION_LOG, Permission.VIEW_AUDIT_LOG}
    ),
    "admin": frozenset(
        {
            Permission.VIEW_REGISTRY,
            Permission.VIEW_PRODUCTION_LOG,
            Permission.VIEW_AUDIT_LOG,
            Permission.MANAGE_USERS,
            Permission.MANAGE_USE_CASES,
            Permission.SUBMIT_MODELS,
            Permission.EDIT_MODEL_CARD,
            Permission.HANDLE_ALERTS,
            Permission.RECONCILE,
            Permission.RUN_MONITORING,
            Permission.MAINTAIN_INSTALLATION,
        }
    ),
}


@dataclass(frozen=True)
class User:
    """A person who can log in. The password hash never leaves the store adapter."""

    username: str
    full_name: str
    role: Role
    active: bool = True
    locked_until: datetime | None = None
    last_login_at: datetime | None = None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class Session:
    """A logged-in user and when they were last active (naive UTC)."""

    user: User
    started_at: datetime
    last_active_at: datetime


SIGN_IN_FIRST = "Sign in first: only a signed-in ModelBoard account may {what}."
ACCOUNT_DISABLED = ("{name}'s account is disabled, so it may not {what}. "
                    "Ask an administrator to enable it again if that is a mistake.")


def can(user: User | None, permission: Permission) -> bool:
    """Whether `user` may use `permission`; nobody signed in (None) and a disabled account may use none."""
    return user is not None and user.active and permission in ROLE_PERMISSIONS[user.role]


def require_signed_in(user: User | None, what: str = "use ModelBoard") -> User:
    """Raise PermissionDenied unless `user` is a signed-in, active account (None means nobody signed in)."""
    if user is None:
        raise PermissionDenied(SIGN_IN_FIRST.format(what=what))
    if not user.active:
        raise PermissionDenied(ACCOUNT_DISABLED.format(name=user.full_name, what=what))
    return user


def require(user: User | None, permission: Permission) -> None:
    """Raise PermissionDenied unless `user` is signed in, active, and their role grants `permission`."""
    signed_in = require_signed_in(user, permission.value)
    if not can(signed_in, permission):
        raise PermissionDenied(
            f"{signed_in.full_name} ({ROLE_LABELS[signed_in.role].lower()}) may not {permission.value}. "
            "Ask an administrator if your role should allow it."
        )


def parse_role(value: str) -> Role:
    """Turn user input into a Role, or say which roles exist."""
    for role in ROLES:
        if value == role:
            return role
    raise ValidationError(f"unknown role {value!r}: choose one of {', '.join(ROLES)}")


def command_line_operator(os_user: str) -> User:
    """The actor for CLI commands. Whoever can run them can read and write the
    store file directly, so the CLI acts with administrator rights and the audit
    log names the operating-system account that ran it."""
    return User(username=f"cli:{os_user}", full_name=f"Command-line operator ({os_user})", role="admin")
