"""Electronic signatures and the promotion policy's arithmetic, without storage.

A signature binds a person's decision to exactly what they were shown: the
SHA-256 of the model card, of the evaluation and of the model's artifacts.
When any of those changes, or the signature is older than the policy allows,
it stops counting (it is never deleted). See DOMAIN.md, Part 11.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, get_args

from core.domain.access import CLINICAL_ROLES, ROLE_LABELS, Role

Decision = Literal["approve", "reject", "request_changes"]
DECISIONS: tuple[Decision, ...] = get_args(Decision)
Kind = Literal["sign_off", "exception", "rollback"]

DECISION_LABELS: dict[str, str] = {
    "approve": "Approved",
    "reject": "Rejected",
    "request_changes": "Changes requested",
    "accept_exception": "Accepted a failed criterion",
    "rollback": "Rolled back",
}
SIGNER_GROUPS: dict[str, frozenset[Role]] = {
    "clinician": CLINICAL_ROLES,  # a clinical lead is a clinician too
    "clinical_lead": frozenset({"clinical_lead"}),
    "data_scientist": frozenset({"data_scientist"}),
}
GROUP_LABELS = {"clinician": "clinicians", "clinical_lead": "clinical leads", "data_scientist": "data scientists"}
# The promotion policy's gates, in the order the Sign-off page lists them.
USE_CASE_GATE, EVALUATION_GATE, CRITERIA_GATE = "Use case and policy", "Evaluation complete", "Use-case criteria"
CARD_GATE, ALERT_GATE = "Model card complete", "No open critical alert"
GATE_NAMES: tuple[str, ...] = (USE_CASE_GATE, EVALUATION_GATE, CRITERIA_GATE, CARD_GATE, ALERT_GATE)


@dataclass(frozen=True)
class Evidence:
    """What a version's review rests on right now; a signature is valid only while these still match."""

    evaluation_id: str | None
    evaluation_sha256: str | None
    card_sha256: str
    artifact_sha256: str


@dataclass(frozen=True)
class Signature:
    id: str
    model: str
    version: int
    kind: str
    decision: str
    signer: str
    full_name: str
    role: str
    meaning: str
    rationale: str
    signed_at: datetime
    evaluation_id: str | None
    evaluation_sha256: str | None
    card_sha256: str | None
    artifact_sha256: str
    policy: str
    criteria: tuple[str, ...] = ()
    acknowledged_gates: tuple[str, ...] = ()  # gates that failed when an approval was given, acknowledged by its signer

    @property
    def role_label(self) -> str:
        return next((label for role, label in ROLE_LABELS.items() if role == self.role), self.role)

    def manifestation(self) -> str:
        """Printed name, role, UTC date and time, and the meaning (21 CFR 11.50), with what was signed."""
        what = DECISION_LABELS.get(self.decision, self.decision)
        bound = [f"card {self.card_sha256[:8]}…" if self.card_sha256 else "",
                 f"evaluation {self.evaluation_sha256[:8]}…" if self.evaluation_sha256 else "",
                 f"model artifacts {self.artifact_sha256[:8]}…"]
        criteria = f" [{'; '.join(self.criteria)}]" if self.criteria else ""
        return (f"{self.full_name} ({self.role_label}) — {what}: \u201c{self.meaning}\u201d{criteria} — "
                f"{self.signed_at:%Y-%m-%d %H:%M:%S} UTC — signed {', '.join(b for b in bound if b)}"
                + (f" — {self.acknowledgement}" if self.acknowledged_gates else ""))

    @property
    def acknowledgement(self) -> str:
        """The signer's acknowledgement, in words, of the gates that failed when they approved ("" if none)."""
        if not self.acknowledged_gates:
            return ""
        count = len(self.acknowledged_gates)
        return (f"approved knowing that {count} gate{'s' if count != 1 else ''} failed: "
                f"{'; '.join(self.acknowledged_gates)}")


@dataclass(frozen=True)
class Standing:
    """A signature as it counts today: valid, or why not."""

    signature: Signature
    valid: bool
    reason: str = ""


def standing(signature: Signature, evidence: Evidence, *, now: datetime, valid_days: int) -> Standing:
    """Expired after `valid_days`; voided when the evaluation, card or artifacts changed since signing."""
    if signature.evaluation_sha256 != evidence.evaluation_sha256:
        return Standing(signature, False, "voided: the evaluation changed after signing")
    if signature.card_sha256 != evidence.card_sha256:
        return Standing(signature, False, "voided: the model card changed after signing")
    if signature.artifact_sha256 != evidence.artifact_sha256:
        return Standing(signature, False, "voided: the model's files changed after signing")
    if now - signature.signed_at > timedelta(days=valid_days):
        return Standing(signature, False, f"expired: older than {valid_days} days")
    return Standing(signature, True)


@dataclass(frozen=True)
class SignerRequirement:
    group: str  # a key of SIGNER_GROUPS
    count: int

    @property
    def sentence(self) -> str:
        return f"at least {self.count} {GROUP_LABELS[self.group] if self.count != 1 else self.group.replace('_', ' ')}"


@dataclass(frozen=True)
class QuorumSlot:
    requirement: SignerRequirement
    signed_by: tuple[str, ...]

    @property
    def filled(self) -> bool:
        return len(self.signed_by) >= self.requirement.count


@dataclass(frozen=True)
class Quorum:
    slots: tuple[QuorumSlot, ...]

    @property
    def reached(self) -> bool:
        return all(s.filled for s in self.slots)

    @property
    def sentence(self) -> str:
        parts = [f"{len(s.signed_by)} of {s.requirement.count} {GROUP_LABELS[s.requirement.group]}"
                 + (f" ({', '.join(s.signed_by)})" if s.signed_by else "") for s in self.slots]
        return "; ".join(parts)


def quorum(requirements: tuple[SignerRequirement, ...], approvals: list[Signature]) -> Quorum:
    """Fill each requirement with distinct approvers; one approval fills one place only, and the narrowest
    requirement (fewest eligible roles) is filled first so a clinical lead is not spent as a clinician."""
    order = sorted(range(len(requirements)), key=lambda i: len(SIGNER_GROUPS[requirements[i].group]))
    filled: dict[int, list[str]] = {i: [] for i in order}
    used: set[str] = set()
    for approval in sorted(approvals, key=lambda s: s.signed_at):
        if approval.signer in used:
            continue
        for i in order:
            req = requirements[i]
            if approval.role in SIGNER_GROUPS[req.group] and len(filled[i]) < req.count:
                filled[i].append(approval.full_name)
                used.add(approval.signer)
                break
    return Quorum(tuple(QuorumSlot(requirements[i], tuple(filled[i])) for i in range(len(requirements))))


@dataclass(frozen=True)
class Gate:
    """One condition of the promotion policy, with its result in words."""

    name: str
    passed: bool
    explanation: str


@dataclass(frozen=True)
class PromotionReadiness:
    gates: tuple[Gate, ...]
    quorum: Quorum
    blocking: tuple[Standing, ...] = field(default_factory=tuple)  # valid rejections / change requests

    @property
    def ready(self) -> bool:
        return all(g.passed for g in self.gates) and self.quorum.reached and not self.blocking


@dataclass(frozen=True)
class ApprovalOutlook:
    """What an approval by one person would do now, said before they sign (issue 14, "signing with eyes open")."""

    passing: tuple[str, ...]
    failing: tuple[str, ...]
    sentence: str

    @property
    def needs_acknowledgement(self) -> bool:
        """Approving while a gate fails is allowed, but only knowingly: the signer ticks an acknowledgement."""
        return bool(self.failing)

    @property
    def acknowledgement_label(self) -> str:
        count = len(self.failing)
        return (f"I have read that {count} gate{'s' if count != 1 else ''} fail{'' if count != 1 else 's'}: "
                f"{'; '.join(self.failing)}. My approval is recorded but does not move production while "
                f"{'they fail' if count != 1 else 'it fails'}.")


def approval_outlook(readiness: PromotionReadiness, requirements: tuple[SignerRequirement, ...],
                     approvals: list[Signature], signer: Signature, *, production_version: int | None,
                     exception_roles: tuple[Role, ...] = ()) -> ApprovalOutlook:
    """The gates that pass and fail, and whether `signer`'s approval (a signature not yet written) would be
    recorded only, or be the last one needed so production moves at once. `approvals` are the valid approvals
    so far; the quorum is worked out as promotion works it out, with the new approval added."""
    failing = tuple(g.name for g in readiness.gates if not g.passed)
    passing = tuple(g.name for g in readiness.gates if g.passed)
    after = quorum(requirements, [*approvals, signer])
    if failing:
        sentence = _held_by_gates(failing, exception_roles)
    elif readiness.blocking:
        sentence = ("Your approval is recorded; production will not change while a valid rejection or change "
                    "request stands.")
    elif after.reached:
        kept = f", and v{production_version} is kept as 'previous'" if production_version else ""
        sentence = f"Your approval is the last one needed: production moves to v{signer.version} at once{kept}."
    else:
        missing = " and ".join(_still_needed(s) for s in after.slots if not s.filled)
        sentence = f"Your approval is recorded; production moves to v{signer.version} once {missing} also approve."
    return ApprovalOutlook(passing, failing, sentence)


def _held_by_gates(failing: tuple[str, ...], exception_roles: tuple[Role, ...]) -> str:
    accepters = " or ".join(r.replace("_", " ") for r in exception_roles)
    gates = "the failing gate is" if len(failing) == 1 else f"the {len(failing)} failing gates are"
    unless = ""
    if CRITERIA_GATE in failing and accepters:
        unless = (f" or a {accepters} signs an exception" if len(failing) == 1 else
                  f" (a {accepters} may accept the failed criteria in a signed exception)")
    return f"Your approval is recorded; production will not change until {gates} resolved{unless}."


def _still_needed(slot: QuorumSlot) -> str:
    count = slot.requirement.count - len(slot.signed_by)
    group = slot.requirement.group
    return f"{count} more {GROUP_LABELS[group] if count != 1 else group.replace('_', ' ')}"
