"""Which version of a model a person should see first, and which versions wait for their signature.

A picker that opens on the newest version shows a clinician an unevaluated v3 with a Sign form under it, and
an auditor a version nobody uses. The rule, in order (issue 14, "sensible defaults"):

1. the version awaiting THIS person's action: evaluated, not in production, not retired or withdrawn, and
   this person may sign it now (their permission and role count for the use case's policy, they did not
   submit or build it, and no signature of theirs counts for its current evidence) — the newest such first;
2. else the version in production;
3. else the newest evaluated version;
4. else the newest version.

A version asked for explicitly (a link from Home carries ?model=…&version=…) wins over all of these.
Every option is labelled in words ("v2 — awaits your review", "v1 — in production").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.domain.access import Permission, Role, User, can, require
from core.domain.clock import utc_now
from core.domain.models import ModelVersionSummary
from core.domain.signoff import SIGNER_GROUPS, standing
from core.domain.usecase import UseCase
from core.errors import ModelBoardError, NotFound
from core.services.review import EvaluatedVersion, evaluated_versions
from core.services.signoff import current_evidence, signatures_for, submitters
from core.services.usecases import use_case_for_model

Reason = Literal["asked", "awaits_you", "in_production", "newest_evaluated", "newest"]
FINISHED = frozenset({"retired", "rolled_back"})  # replaced or withdrawn: nothing left to review
STATUS_WORDS = {"in_review": "in clinical review", "approved": "approved", "rejected": "rejected",
                "changes_requested": "changes requested", "retired": "retired (replaced in production)",
                "rolled_back": "withdrawn (rolled back)", "review_required": "review required"}


@dataclass(frozen=True)
class VersionOption:
    """One version as a picker lists it, with what it means for the person looking."""

    model: str
    version: int
    status: str  # the registry's review status tag (core.domain.models.STATUS_LABELS)
    in_production: bool
    evaluated: bool
    awaits_you: bool = False
    signed_by_you: bool = False
    submitted_by_you: bool = False

    @property
    def words(self) -> str:
        """What the version is to this person, e.g. "awaits your review", "in production"."""
        if self.awaits_you:
            return "awaits your review"
        if self.in_production:
            return "in production" + (", review required" if self.status == "review_required" else "")
        if not self.evaluated:
            return "not yet evaluated"
        status = STATUS_WORDS.get(self.status, "evaluated")
        if self.submitted_by_you:
            return f"{status}, submitted by you"
        return f"{status}, you have signed" if self.signed_by_you else status

    @property
    def label(self) -> str:
        return f"v{self.version} — {self.words}"


@dataclass(frozen=True)
class VersionMenu:
    """A model's versions, newest first, and the one to open on."""

    model: str
    options: tuple[VersionOption, ...]
    index: int
    reason: Reason

    @property
    def default(self) -> VersionOption:
        return self.options[self.index]

    def option(self, version: int) -> VersionOption:
        return next(o for o in self.options if o.version == version)


@dataclass(frozen=True)
class EvaluationMenu:
    """Every evaluated version (the review pages' picker), each with its option, and the one to open on."""

    evaluations: tuple[EvaluatedVersion, ...]
    options: tuple[VersionOption, ...]
    index: int
    reason: Reason


def choose_default(options: Sequence[VersionOption], *, asked: int | None = None,
                   asked_model: str | None = None) -> tuple[int, Reason]:
    """The index to open on (the module's rule); `options` are newest first, so the first match is the newest.
    `asked` (with `asked_model` when the options span models) wins when it is one of the options."""
    if not options:
        raise ValueError("no version to choose from")
    own = [o for o in options if o.model == asked_model]
    if own and len(own) < len(options):  # the model asked for, among several
        index, reason = choose_default(own, asked=asked)
        return options.index(own[index]), reason
    if asked is not None:
        for i, option in enumerate(options):
            if option.version == asked:
                return i, "asked"
    rules: tuple[tuple[Reason, Callable[[VersionOption], bool]], ...] = (
        ("awaits_you", lambda o: o.awaits_you), ("in_production", lambda o: o.in_production),
        ("newest_evaluated", lambda o: o.evaluated))
    for reason, matches in rules:
        for i, option in enumerate(options):
            if matches(option):
                return i, reason
    return 0, "newest"


def version_menu(store: Store, registry: Registry, viewer: User, model: str, *,
                 asked: int | None = None) -> VersionMenu:
    """A model's versions for a picker (newest first), labelled for `viewer`, and the one to open on."""
    require(viewer, Permission.VIEW_REGISTRY)
    evaluated = {e.version for e in evaluated_versions(store, viewer) if e.model == model}
    summaries = sorted(registry.list_versions(model), key=lambda v: -v.version)
    roles = _signing_roles(store, viewer, model)
    options = tuple(_option(store, registry, viewer, s, s.version in evaluated, roles) for s in summaries)
    if not options:
        raise NotFound(f"model {model!r} has no versions in the registry")
    index, reason = choose_default(options, asked=asked)
    return VersionMenu(model, options, index, reason)


def evaluation_menu(store: Store, registry: Registry, viewer: User, *, model: str | None = None,
                    version: int | None = None) -> EvaluationMenu:
    """Every evaluated version (newest evaluation of each), labelled for `viewer`, and the one to open on:
    the same rule as `version_menu`, across models in the order the review pages list them."""
    require(viewer, Permission.VIEW_REGISTRY)
    evaluations = tuple(evaluated_versions(store, viewer))
    summaries: dict[str, dict[int, ModelVersionSummary]] = {}
    roles: dict[str, frozenset[Role]] = {}
    options = []
    for evaluation in evaluations:
        if evaluation.model not in summaries:
            summaries[evaluation.model] = _summaries(registry, evaluation.model)
            roles[evaluation.model] = _signing_roles(store, viewer, evaluation.model)
        summary = summaries[evaluation.model].get(evaluation.version)
        options.append(_option(store, registry, viewer, summary, True, roles[evaluation.model]) if summary else
                       VersionOption(evaluation.model, evaluation.version, "registered", False, True))
    if not options:
        return EvaluationMenu((), (), 0, "newest")
    index, reason = choose_default(options, asked=version, asked_model=model)
    return EvaluationMenu(evaluations, tuple(options), index, reason)


def waiting_for(store: Store, registry: Registry, viewer: User) -> list[VersionOption]:
    """Every version that awaits `viewer`'s signature (Home's "v2 waits for your review"), by model, newest first."""
    require(viewer, Permission.VIEW_REGISTRY)
    if not can(viewer, Permission.SIGN_OFF):
        return []
    found: list[VersionOption] = []
    by_model: dict[str, set[int]] = {}
    for e in evaluated_versions(store, viewer):
        by_model.setdefault(e.model, set()).add(e.version)
    for model, versions in sorted(by_model.items()):
        roles = _signing_roles(store, viewer, model)
        summaries = _summaries(registry, model)
        for version in sorted(versions, reverse=True):
            if version in summaries:
                option = _option(store, registry, viewer, summaries[version], True, roles)
                if option.awaits_you:
                    found.append(option)
    return found


def _summaries(registry: Registry, model: str) -> dict[int, ModelVersionSummary]:
    try:
        return {s.version: s for s in registry.list_versions(model)}
    except ModelBoardError:
        return {}  # a model gone from the registry: reconcile's checks speak for it


def _signing_roles(store: Store, viewer: User, model: str) -> frozenset[Role]:
    """The roles whose approval the model's policy counts (none without a use case: nobody can sign then)."""
    try:
        use_case: UseCase = use_case_for_model(store, viewer, model)
    except NotFound:
        return frozenset()
    return frozenset(role for r in use_case.promotion.signers for role in SIGNER_GROUPS[r.group])


def _option(store: Store, registry: Registry, viewer: User, summary: ModelVersionSummary, evaluated: bool,
            roles: frozenset[Role]) -> VersionOption:
    in_production = "production" in summary.aliases
    option = VersionOption(summary.name, summary.version, summary.status, in_production, evaluated)
    may_sign = can(viewer, Permission.SIGN_OFF) and viewer.role in roles
    if not (may_sign and evaluated and not in_production and summary.status not in FINISHED):
        return option
    if viewer.username in submitters(store, registry, summary.name, summary.version):
        return VersionOption(summary.name, summary.version, summary.status, False, True, submitted_by_you=True)
    signed = _signed_current_evidence(store, registry, viewer, summary.name, summary.version)
    return VersionOption(summary.name, summary.version, summary.status, False, True, awaits_you=not signed,
                         signed_by_you=signed)


def _signed_current_evidence(store: Store, registry: Registry, viewer: User, model: str, version: int) -> bool:
    """Whether a sign-off of `viewer`'s still counts. Most people have not signed at all, so the card and the
    model's files (the costly part) are fingerprinted only when they have."""
    mine = [s for s in signatures_for(store, viewer, model, version)
            if s.signer == viewer.username and s.kind == "sign_off"]
    if not mine:
        return False
    evidence, _card, _evaluation = current_evidence(store, registry, viewer, model, version)
    try:
        days = use_case_for_model(store, viewer, model).promotion.signoff_valid_days
    except NotFound:
        days = 90
    now = utc_now()
    return any(standing(s, evidence, now=now, valid_days=days).valid for s in mine)
