"""A property-based stateful test (Hypothesis) of the governance workflow: sign, accept an exception, promote,
roll back, re-submit, edit the card, and an administrator's account changes, in random orders.

Hypothesis draws sequences of these actions against real services on a real installation (a copy of the reviewed
demo: DuckDB governance store and MLflow sqlite registry in a temporary folder). Before each action the test
predicts the outcome from its own model of the rules, written from DOMAIN.md, docs/decisions/0009 and the role
table (never by calling the service that decides): accepted, or refused with PermissionDenied, ValidationError,
AuthenticationFailed or NotFound; and whether an approval promotes. After every step it checks, reading the
store and the MLflow registry directly:

- no sign-off or exception signed by the version's submitter or builder (self-approval);
- no signature by someone who was an auditor or administrator when signing (role from the audit trail);
- every promotion had, at its moment, a quorum of valid approvals from distinct people of the policy's groups,
  no valid rejection, and every failed criterion accepted by a valid exception;
- MLflow's `production` alias is the one the model expects, and points at a version ModelBoard promoted or
  rolled back to (or the baseline it adopted); its own record agrees;
- the audit chain verifies (checkpoints and anchors included) and its ids have no gap;
- promotions move intent → completed | rolled_back only, and version statuses move only in allowed orders,
  the version in production never labelled as rejected or in review.

Evaluating a model takes the worker many seconds, so no rule runs it: the module evaluates sepsis-icu v3 once
(v2 comes evaluated with `reviewed_demo`), and "submit" is modelled as re-submitting an evaluated version,
which reuses the stored evaluation. Copying a demo takes far longer than an example, so the module copies it
once, snapshots the three folders (home, checkpoint log, key) and restores them in place before each example.
ModelBoard has no service that changes a user's role yet; the test changes the row and audits it as such a
service would (`change_role`). While an example runs, the test holds one store cursor open so services reuse
the open DuckDB file instead of opening it for every query (same behaviour, ten times faster).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from core.config import Settings
from core.domain.access import User, command_line_operator
from core.domain.models import STATUS_TAG
from core.domain.policy import PromotionPolicy
from core.domain.signoff import GATE_NAMES
from core.errors import AuthenticationFailed, ModelBoardError, NotFound, PermissionDenied, ValidationError
from core.services.audit import record_event
from core.services.audit_verification import verify_chain
from core.services.auth import get_user, set_user_active, unlock_user
from core.services.demo import DEMO_USERS
from core.services.installation import open_registry, open_store
from core.services.model_card import build_card, card_sha256, save_narratives
from core.services.promotion import promote_if_ready, roll_back
from core.services.signoff import SignatureRequest, accept_exception, sign
from core.services.submission import SubmissionRequest, latest_evaluation, submit_version
from core.services.usecases import use_case_for_model
from tests.conftest import copy_demo

MODEL, BASELINE, VERSIONS = "sepsis-icu", 1, (2, 3)
OPERATOR = command_line_operator("pytest")
PASSWORDS = {username: password for username, _name, _role, password in DEMO_USERS}
USERNAMES = tuple(PASSWORDS)
ROLES = ("clinician", "clinical_lead", "data_scientist", "auditor", "admin")
MAX_FAILED = 5  # the default login policy: the fifth wrong password locks the account

# The role table (DOMAIN.md, docs/decisions/0009): who may do what.
SIGNING_ROLES = frozenset({"clinician", "clinical_lead", "data_scientist"})  # never auditors or administrators
ROLLBACK_ROLES = frozenset({"clinician", "clinical_lead"})
SUBMITTING_ROLES = frozenset({"data_scientist", "admin"})
CARD_EDITING_ROLES = frozenset({"data_scientist", "admin"})
ADMIN_ROLES = frozenset({"admin"})
# The policy's signer groups: a clinical lead is a clinician too.
GROUPS = {"clinician": frozenset({"clinician", "clinical_lead"}), "clinical_lead": frozenset({"clinical_lead"}),
          "data_scientist": frozenset({"data_scientist"})}

# Version statuses (MLflow tag modelboard.status) and the moves between them that the workflow allows.
REVIEW = frozenset({"in_review", "rejected", "changes_requested"})
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    "registered": frozenset({"in_review", "approved"}),
    **{s: REVIEW | {"approved"} for s in REVIEW},
    "approved": frozenset({"retired", "rolled_back", "review_required"}),
    "retired": frozenset({"approved", "rolled_back"}) | REVIEW,
    "rolled_back": frozenset({"approved", "retired"}) | REVIEW,
    "review_required": frozenset({"approved", "retired", "rolled_back"}),
}
LIVE_STATUSES = frozenset({"approved", "review_required"})

EXAMPLES = int(os.environ.get("MODELBOARD_PROPERTY_EXAMPLES", "20"))
STEPS = int(os.environ.get("MODELBOARD_PROPERTY_STEPS", "15"))


@dataclass(frozen=True)
class Installation:
    settings: Settings
    snapshot: dict[Path, Path]  # live folder → its pristine copy
    failed: dict[int, frozenset[str]]  # the criteria each version's evaluation failed
    passed: dict[int, frozenset[str]]
    policy: PromotionPolicy
    builders: dict[int, str]  # mlflow.user of each version's run


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory, reviewed_demo: Settings) -> Installation:
    """The reviewed demo with v3 evaluated too, every required card field of v2 and v3 filled (by Lee, their
    builder), and a pristine copy of its folders to restore before each example."""
    root = tmp_path_factory.mktemp("governance-properties")
    settings = copy_demo(reviewed_demo, root / "home")
    submit_version(settings, open_store(settings), open_registry(settings), OPERATOR, SubmissionRequest(MODEL, 3))
    return prepared(settings, root / "pristine")


def prepared(settings: Settings, pristine: Path) -> Installation:
    store, registry = open_store(settings), open_registry(settings)
    lee = _account(store, "lee")
    failed, passed, builders = {}, {}, {}
    for version in VERSIONS:
        card = build_card(store, registry, lee, MODEL, version)
        save_narratives(store, lee, MODEL, version, {f.key: f"{f.label}: written for the property test."
                                                     for f in card.missing_required})
        evaluation = latest_evaluation(store, lee, MODEL, version)
        assert evaluation is not None
        failed[version] = frozenset(c["criterion"] for c in evaluation.result["criteria"] if not c["passed"])
        passed[version] = frozenset(c["criterion"] for c in evaluation.result["criteria"] if c["passed"])
        run_id = registry.client.get_model_version(MODEL, str(version)).run_id
        builders[version] = registry.client.get_run(run_id).data.tags["mlflow.user"]
    assert all(failed.values()), "the demo's v2 and v3 fail fairness criteria: exceptions are part of the test"
    policy = use_case_for_model(store, lee, MODEL).promotion
    store.execute("CHECKPOINT")
    folders = (settings.home, settings.audit_log_path.parent, settings.audit_key_path.parent)
    snapshot = {folder: pristine / folder.name for folder in folders}
    for live, copy in snapshot.items():
        shutil.copytree(live, copy)
    return Installation(settings, snapshot, failed, passed, policy, builders)


def _account(store: Any, username: str) -> User:
    user = get_user(store, username)
    assert user is not None, username
    return user


def _restore(live: Path, pristine: Path) -> None:
    """Put `live` back as `pristine` in place (same files, so MLflow's pooled sqlite connection sees the old
    content on its next read), removing whatever the example added."""
    keep = set()
    for source in sorted(pristine.rglob("*")):
        relative = source.relative_to(pristine)
        keep.add(relative)
        target = live / relative
        if source.is_dir():
            target.mkdir(exist_ok=True)
        else:
            shutil.copyfile(source, target)
    for path in sorted(live.rglob("*"), reverse=True):
        if path.relative_to(live) not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


# -- the model ---------------------------------------------------------------------------------------------------
@dataclass
class Account:
    full_name: str
    role: str
    active: bool = True
    failed: int = 0
    locked: bool = False


@dataclass(frozen=True)
class Signed:
    signer: str
    role: str
    version: int
    kind: str  # sign_off | exception | rollback
    decision: str
    criteria: frozenset[str]
    revision: int  # the card revision it was given for


@dataclass
class Model:
    """What the rules say the installation holds, kept by the test alone."""

    accounts: dict[str, Account]
    submitters: dict[int, set[str]]
    revision: dict[int, int] = field(default_factory=lambda: dict.fromkeys(VERSIONS, 0))
    signed: list[Signed] = field(default_factory=list)
    production: int = BASELINE
    previous: int | None = None
    history: list[int] = field(default_factory=lambda: [BASELINE])  # production values ModelBoard set or adopted
    promotions: int = 0

    def valid(self, version: int, kind: str) -> list[Signed]:
        return [s for s in self.signed if s.version == version and s.kind == kind
                and s.revision == self.revision[version]]

    def quorum(self, policy: PromotionPolicy, version: int) -> bool:
        approvers = {s.signer: s.role for s in self.valid(version, "sign_off") if s.decision == "approve"}
        return fills(policy, approvers)

    def ready(self, policy: PromotionPolicy, version: int, failed: frozenset[str]) -> bool:
        blocked = any(s.decision in ("reject", "request_changes") for s in self.valid(version, "sign_off"))
        accepted = {c for s in self.valid(version, "exception") if s.role in policy.exception_roles
                    for c in s.criteria}
        return not blocked and failed <= accepted and self.quorum(policy, version)

    def rollback_target(self) -> int | None:
        """The `previous` alias, else the last version ModelBoard itself put in production other than the
        current one (docs/decisions/0009; the model moves no alias out of band)."""
        if self.previous is not None:
            return self.previous
        return next((v for v in reversed(self.history) if v != self.production), None)


def fills(policy: PromotionPolicy, approvers: dict[str, str]) -> bool:
    """Whether distinct approvers can fill every place the policy asks for (a bipartite matching)."""
    places = [r.group for r in policy.signers for _ in range(r.count)]
    taken: dict[int, str] = {}  # place → approver

    def assign(person: str, seen: set[int]) -> bool:
        for i, group in enumerate(places):
            if approvers[person] in GROUPS[group] and i not in seen:
                seen.add(i)
                if i not in taken or assign(taken[i], seen):
                    taken[i] = person
                    return True
        return False

    for person in approvers:
        assign(person, set())
    return len(taken) == len(places)


# -- strategies (biased towards the reviewers, so that quorums are reached within a few steps) ---------------------
anyone = st.sampled_from(USERNAMES)
reviewer = st.sampled_from(("ng", "okafor", "patel", "diaz", "ng", "okafor", "diaz", "lee", "kim"))
version_ = st.sampled_from((2, 2, 3))
decision_ = st.sampled_from(("approve",) * 6 + ("reject", "request_changes"))
password_ok = st.sampled_from((True,) * 5 + (False,))


class GovernanceMachine(RuleBasedStateMachine):
    installation: Installation  # set by the test before it runs the machine
    seen: Counter[str] = Counter()  # what the examples did, over the whole run (reported, and checked for coverage)

    def __init__(self) -> None:
        super().__init__()
        inst = self.installation
        for live, pristine in inst.snapshot.items():
            _restore(live, pristine)
        self.settings = inst.settings
        self.store, self.registry = open_store(self.settings), open_registry(self.settings)
        self._held = self.store.cursor()
        self._held.__enter__()
        accounts = {u: Account(name, role) for u, name, role, _pw in DEMO_USERS}
        self.model = Model(accounts, {v: {OPERATOR.username, inst.builders[v]} for v in VERSIONS})
        self.fingerprints: dict[tuple[int, int], tuple[str, str]] = {}
        self.seen_status: dict[int, str] = {}
        self.seen_promotions: dict[str, tuple[str, Any]] = {}

    def teardown(self) -> None:
        self._held.__exit__(None, None, None)

    # -- helpers -----------------------------------------------------------------------------------------------
    def user(self, username: str) -> User:
        """The account as the app's session would hold it (refreshed from the store on every page)."""
        a = self.model.accounts[username]
        return User(username, a.full_name, a.role, a.active)  # type: ignore[arg-type]

    def identity(self, username: str, roles: frozenset[str], password_ok: bool) -> type[ModelBoardError] | None:
        """Permission first (nothing read or written), then both signature components: a wrong password counts
        towards the lockout, a locked account is refused whatever the password, a right one clears the count."""
        a = self.model.accounts[username]
        if not a.active or a.role not in roles:
            return PermissionDenied
        if a.locked:
            return AuthenticationFailed
        if not password_ok:
            a.failed += 1
            if a.failed >= MAX_FAILED:
                a.failed, a.locked = 0, True
            return AuthenticationFailed
        a.failed = 0
        return None

    def allowed(self, username: str, roles: frozenset[str]) -> set[type[ModelBoardError]]:
        a = self.model.accounts[username]
        return set() if a.active and a.role in roles else {PermissionDenied}

    def attempt(self, refusals: set[type[ModelBoardError]], action: Callable[[], Any]) -> Any:
        """Run `action`; it must be refused with one of `refusals` (the model's reasons), or succeed if none."""
        try:
            result = action()
        except ModelBoardError as exc:
            assert refusals, f"refused with {type(exc).__name__}, the model expected success: {exc}"
            assert type(exc) in refusals, f"refused with {type(exc).__name__}, the model expected one of " \
                                          f"{sorted(r.__name__ for r in refusals)}: {exc}"
            self.seen[f"refused: {type(exc).__name__}"] += 1
            return exc
        self.seen["accepted"] += 1
        assert not refusals, f"accepted, the model expected {sorted(r.__name__ for r in refusals)}"
        return result

    def request(self, who: str, version: int, decision: str, password: str,
                criteria: tuple[str, ...] = ()) -> SignatureRequest:
        """What the sign-off page sends: the fingerprints of the card and evaluation it displayed."""
        key = (version, self.model.revision[version])
        if key not in self.fingerprints:
            viewer = command_line_operator("pytest")  # never disabled or demoted by a rule, unlike any demo account
            card = build_card(self.store, self.registry, viewer, MODEL, version)
            evaluation = latest_evaluation(self.store, viewer, MODEL, version)
            assert evaluation is not None
            self.fingerprints[key] = (card_sha256(card), evaluation.id)
        card_hash, evaluation_id = self.fingerprints[key]
        return SignatureRequest(MODEL, version, decision, "approved for clinical use in the adult ICU",
                                "Reviewed the card, the subgroup results and the comparison with production.",
                                who, password, card_hash, evaluation_id, criteria,
                                acknowledged_gates=GATE_NAMES)  # ticked whenever shown (its own test elsewhere)

    def password(self, who: str, ok: bool) -> str:
        return PASSWORDS[who] if ok else PASSWORDS[who] + "-wrong"

    def expect_promotion(self, version: int, promotion: Any) -> None:
        model, inst = self.model, self.installation
        due = model.production != version and model.ready(inst.policy, version, inst.failed[version])
        assert (promotion is not None) == due, (f"v{version} {'was' if promotion else 'was not'} promoted; the "
                                                f"model says it {'should' if due else 'should not'} be")
        if due:
            assert promotion.state == "completed" and promotion.from_version == model.production
            model.previous, model.production = model.production, version
            model.history.append(version)
            model.promotions += 1
            self.seen[f"promoted v{version}"] += 1

    # -- rules -------------------------------------------------------------------------------------------------
    @initialize(approvers=st.lists(st.sampled_from(("ng", "okafor", "diaz", "patel")), unique=True),
                exception=st.booleans())
    def review_under_way(self, approvers: list[str], exception: bool) -> None:
        """Some of v2's reviewers have approved already (so that the steps spend their time around quorum)."""
        if exception:
            self.exception("patel", 2, "all", True)
        for who in approvers:
            self._sign(who, 2, "approve", True)

    @rule(who=reviewer, version=version_, decision=decision_, ok=password_ok)
    def sign_off(self, who: str, version: int, decision: str, ok: bool) -> None:
        self._sign(who, version, decision, ok)

    @rule(who=anyone, version=version_, decision=st.sampled_from(("approve", "reject", "request_changes")),
          ok=st.booleans())
    def anyone_signs(self, who: str, version: int, decision: str, ok: bool) -> None:
        self._sign(who, version, decision, ok)

    def _sign(self, who: str, version: int, decision: str, ok: bool) -> None:
        model = self.model
        problem = self.identity(who, SIGNING_ROLES, ok)
        refusals = {problem} if problem else set()
        if not problem:
            if who in model.submitters[version]:
                refusals.add(PermissionDenied)  # separation of duties
            if any(s.signer == who for s in model.valid(version, "sign_off")):
                refusals.add(ValidationError)  # one person signs a version once
            if model.production == version:
                refusals.add(ValidationError)  # in production: no sign-off signature changes that (roll back)
        result = self.attempt(refusals, lambda: sign(
            self.settings, self.store, self.registry, self.user(who),
            self.request(who, version, decision, self.password(who, ok))))
        if refusals:
            return
        model.signed.append(Signed(who, model.accounts[who].role, version, "sign_off", decision, frozenset(),
                                   model.revision[version]))
        if decision == "approve":
            self.expect_promotion(version, result[1])
        else:
            assert result[1] is None

    @rule(who=st.sampled_from(("patel", "patel", "ng", "diaz", "lee", "kim")), version=version_,
          which=st.sampled_from(("all", "all", "all", "one", "passed", "none")), ok=password_ok)
    def exception(self, who: str, version: int, which: str, ok: bool) -> None:
        model, inst = self.model, self.installation
        failed = sorted(inst.failed[version])
        criteria = {"all": tuple(failed), "one": tuple(failed[:1]), "none": (),
                    "passed": (*failed[:1], *sorted(inst.passed[version])[:1])}[which]
        problem = self.identity(who, SIGNING_ROLES, ok)
        refusals = {problem} if problem else set()
        if not problem:
            if model.accounts[who].role not in inst.policy.exception_roles:
                refusals.add(PermissionDenied)
            if not criteria or not set(criteria) <= inst.failed[version]:
                refusals.add(ValidationError)
            if who in model.submitters[version]:
                refusals.add(PermissionDenied)
            if any(s.signer == who for s in model.valid(version, "exception")):
                refusals.add(ValidationError)
        self.attempt(refusals, lambda: accept_exception(
            self.settings, self.store, self.registry, self.user(who),
            self.request(who, version, "approve", self.password(who, ok), criteria)))
        if not refusals:
            model.signed.append(Signed(who, model.accounts[who].role, version, "exception", "accept_exception",
                                       frozenset(criteria), model.revision[version]))

    @rule(who=anyone, version=version_)
    def promote(self, who: str, version: int) -> None:
        """Promotion asked for directly (what an approval does after signing): only if the policy is met."""
        refusals = self.allowed(who, SIGNING_ROLES)
        result = self.attempt(refusals, lambda: promote_if_ready(self.settings, self.store, self.registry,
                                                                 self.user(who), MODEL, version))
        if not refusals:
            self.expect_promotion(version, result)

    @rule(who=st.sampled_from(("ng", "okafor", "patel", "diaz", "kim")), ok=password_ok)
    def rollback(self, who: str, ok: bool) -> None:
        model = self.model
        problem = self.identity(who, ROLLBACK_ROLES, ok)
        target = model.rollback_target()
        refusals = {problem} if problem else set() if target is not None else {NotFound}
        result = self.attempt(refusals, lambda: roll_back(
            self.settings, self.store, self.registry, self.user(who), MODEL, username=who,
            password=self.password(who, ok), rationale="Alert burden doubled overnight on the ward."))
        if refusals:
            return
        assert target is not None and result.to_version == target and result.from_version == model.production
        if model.previous in (target, model.production):
            model.previous = None
        model.production = target
        model.history.append(target)
        self.seen[f"rolled back to v{target}"] += 1
        model.signed.append(Signed(who, model.accounts[who].role, target, "rollback", "rollback", frozenset(), -1))

    @rule(who=st.sampled_from(("lee", "diaz", "admin", "ng")), version=version_)
    def resubmit(self, who: str, version: int) -> None:
        """Submitting an evaluated version again reuses its evaluation: nothing changes, no signature voided."""
        refusals = self.allowed(who, SUBMITTING_ROLES)
        result = self.attempt(refusals, lambda: submit_version(self.settings, self.store, self.registry,
                                                               self.user(who), SubmissionRequest(MODEL, version)))
        if not refusals:
            assert result.reused

    @rule(who=st.sampled_from(("lee", "diaz", "admin", "okafor")), version=version_)
    def edit_card(self, who: str, version: int) -> None:
        """A narrative rewritten: every signature given for the earlier card stops counting."""
        refusals = self.allowed(who, CARD_EDITING_ROLES)
        revision = self.model.revision[version] + 1
        self.attempt(refusals, lambda: save_narratives(self.store, self.user(who), MODEL, version, {
            "update_schedule": f"Reviewed yearly and after any monitoring alert (revision {revision})."}))
        if not refusals:
            self.model.revision[version] = revision

    @rule(actor=st.sampled_from(("admin", "admin", "admin", "kim", "patel")),
          account=st.sampled_from(("ng", "okafor", "patel", "diaz", "lee", "kim", "admin")), active=st.booleans())
    def set_active(self, actor: str, account: str, active: bool) -> None:
        a = self.model.accounts[actor]
        refusals: set[type[ModelBoardError]] = set()
        if not a.active or a.role not in ADMIN_ROLES:
            refusals.add(PermissionDenied)
        elif account == actor and not active:
            refusals.add(ValidationError)  # nobody disables their own account
        self.attempt(refusals, lambda: set_user_active(self.store, self.user(actor), account, active))
        if not refusals:
            self.model.accounts[account].active = active

    @rule(account=st.sampled_from(("ng", "okafor", "patel", "diaz", "lee", "kim")), role=st.sampled_from(ROLES))
    def change_role(self, account: str, role: str) -> None:
        """An administrator changes a role (no ModelBoard service does this yet: the row changes, audited)."""
        before = self.model.accounts[account].role
        with self.store.transaction() as cur:
            cur.execute("UPDATE users SET role = ? WHERE username = ?", [role, account])
            record_event(cur, actor="admin", action="user_role_changed", target=account,
                         detail={"from": before, "role": role})
        self.model.accounts[account].role = role

    @rule(account=st.sampled_from(("ng", "okafor", "patel", "diaz")))
    def unlock(self, account: str) -> None:
        unlock_user(self.store, self.user("admin"), account)  # the administrator is never disabled or demoted
        self.model.accounts[account].failed, self.model.accounts[account].locked = 0, False

    # -- invariants --------------------------------------------------------------------------------------------
    @invariant()
    def governance_holds(self) -> None:
        self.check_aliases()
        self.check_signers()
        self.check_promotions()
        self.check_audit_chain()
        self.check_states()

    def check_aliases(self) -> None:
        aliases = {a: int(v) for a, v in self.registry.client.get_registered_model(MODEL).aliases.items()}
        assert aliases.get("production") == self.model.production, (aliases, self.model.production)
        assert aliases.get("previous") == self.model.previous, (aliases, self.model.previous)
        production = aliases["production"]
        moved_there = self.store.query_one(
            "SELECT 1 AS x FROM promotions WHERE model_name = ? AND to_version = ? AND state = 'completed'",
            [MODEL, production])
        assert moved_there or production == BASELINE, f"v{production} is in production without a promotion"
        recorded = self.store.query_one(
            "SELECT version FROM alias_history WHERE model_name = ? AND alias = 'production' AND kind <> "
            "'out_of_band' ORDER BY id DESC LIMIT 1", [MODEL])
        assert recorded == {"version": production}, f"ModelBoard's record {recorded} ≠ MLflow v{production}"

    def roles_at(self) -> Callable[[str, datetime], str | None]:
        """Each account's role at a moment, read from the audit trail (added with a role, then changed)."""
        rows = self.store.query(
            "SELECT target, occurred_at, action, json_extract_string(detail, '$.role') AS role FROM audit_events "
            "WHERE action IN ('user_added', 'user_role_changed') ORDER BY id")

        def role(username: str, at: datetime) -> str | None:
            return next((r["role"] for r in reversed(rows) if r["target"] == username and r["occurred_at"] <= at),
                        None)
        return role

    def submitters(self, version: int) -> set[str]:
        rows = self.store.query(
            "SELECT submitted_by AS who FROM evaluations WHERE model_name = ? AND model_version = ? UNION "
            "SELECT actor FROM audit_events WHERE model_name = ? AND model_version = ? AND action IN "
            "('run_registered', 'model_uploaded', 'version_submitted')", [MODEL, version, MODEL, version])
        return {r["who"] for r in rows} | {self.installation.builders[version]}

    def check_signers(self) -> None:
        role_at = self.roles_at()
        rows = self.store.query("SELECT * FROM signatures WHERE model_name = ? ORDER BY signed_at", [MODEL])
        assert len(rows) == len(self.model.signed), "the store holds a signature the model did not expect"
        submitters = {v: self.submitters(v) for v in VERSIONS}
        for row in rows:
            version, signer = int(row["model_version"]), row["signer"]
            if row["kind"] in ("sign_off", "exception"):
                assert signer not in submitters[version], f"self-approval: {signer} signed v{version}"
            true_role = role_at(signer, row["signed_at"])
            assert true_role == row["role"], f"{signer} signed as {row['role']} while {true_role}"
            assert true_role not in ("auditor", "admin"), f"{signer}, {true_role}, signed v{version}"

    def check_promotions(self) -> None:
        rows = self.store.query("SELECT * FROM promotions WHERE model_name = ? ORDER BY started_at", [MODEL])
        assert sum(r["kind"] == "promotion" for r in rows) == self.model.promotions
        for row in rows:
            if row["kind"] == "promotion":
                self.check_quorum_at(int(row["to_version"]), row["started_at"])

    def check_quorum_at(self, version: int, at: datetime) -> None:
        """At the moment of promotion: valid approvals fill the policy, nothing valid blocks, every failed
        criterion is accepted. Valid = not older than the policy allows, and neither the card nor the
        evaluation changed between signing and that moment (per the audit trail and the evaluations table)."""
        policy, role_at = self.installation.policy, self.roles_at()
        edits = [r["occurred_at"] for r in self.store.query(
            "SELECT occurred_at FROM audit_events WHERE action = 'model_card_edited' AND model_name = ? AND "
            "model_version = ?", [MODEL, version])]
        evaluated = [r["finished_at"] for r in self.store.query(
            "SELECT finished_at FROM evaluations WHERE model_name = ? AND model_version = ? AND status = 'complete'",
            [MODEL, version])]
        signatures = self.store.query("SELECT * FROM signatures WHERE model_name = ? AND model_version = ? AND "
                                      "signed_at <= ?", [MODEL, version, at])
        valid = [s for s in signatures if s["kind"] in ("sign_off", "exception")
                 and at - s["signed_at"] <= timedelta(days=policy.signoff_valid_days)
                 and not any(s["signed_at"] < t <= at for t in edits + evaluated)]
        approvers: dict[str, str] = {}
        for s in valid:
            role = role_at(s["signer"], s["signed_at"])
            if s["kind"] == "sign_off" and s["decision"] == "approve" and role is not None:
                approvers.setdefault(s["signer"], role)
        assert fills(policy, approvers), f"v{version} promoted at {at} with approvals only from {approvers}"
        blocking = [s["signer"] for s in valid if s["decision"] in ("reject", "request_changes")]
        assert not blocking, f"v{version} promoted at {at} over valid rejections by {blocking}"
        accepted = {c for s in valid if s["kind"] == "exception"
                    and role_at(s["signer"], s["signed_at"]) in policy.exception_roles
                    for c in json.loads(s["criteria"] or "[]")}
        missing = self.installation.failed[version] - accepted
        assert not missing, f"v{version} promoted at {at} with failed criteria nobody accepted: {missing}"

    def check_audit_chain(self) -> None:
        verification = verify_chain(self.store, self.registry)
        assert verification.ok, f"audit chain broken at row {verification.first_bad_row}: {verification.reason}"
        span = self.store.query_one("SELECT min(id) AS first, max(id) AS last, count(*) AS n FROM audit_events")
        assert span is not None and span["first"] == 1 and span["last"] == span["n"], f"gap in the audit ids: {span}"

    def check_states(self) -> None:
        for row in self.store.query("SELECT id, state, finished_at FROM promotions"):
            before = self.seen_promotions.get(row["id"])
            if before is not None:
                assert before[0] == row["state"] or (before[0] == "intent"
                                                     and row["state"] in ("completed", "rolled_back")), \
                    f"promotion {row['id']} went from {before[0]} to {row['state']}"
                assert before[1] is None or before[1] == row["finished_at"], f"promotion {row['id']} finished twice"
            self.seen_promotions[row["id"]] = (row["state"], row["finished_at"])
        for version in (BASELINE, *VERSIONS):
            tags = self.registry.client.get_model_version(MODEL, str(version)).tags or {}
            status = tags.get(STATUS_TAG, "registered")
            before = self.seen_status.get(version)
            if before is not None and before != status:
                # the baseline held production untagged: the promotion that replaces it retires it
                allowed = ALLOWED_MOVES[before] | ({"retired"} if version == BASELINE else frozenset())
                assert status in allowed, f"v{version} moved from {before!r} to {status!r}"
            self.seen_status[version] = status
            if version == self.model.production:
                assert status in LIVE_STATUSES or (version == BASELINE and status == "registered"), \
                    f"v{version} is in production but labelled {status!r}"


def test_governance_workflow_holds_its_rules(installation: Installation) -> None:
    """Random sequences of the workflow's actions never break the rules of sign-off and promotion."""
    GovernanceMachine.installation = installation
    run_state_machine_as_test(GovernanceMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
