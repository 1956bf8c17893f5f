"""The promotion policy of a use case: which gates a version must pass and who must sign.

It is part of the use-case YAML (section `promotion`), so it is versioned with
the use case and every decision records "use case NAME vN" as its policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.domain.access import ROLES, Role
from core.domain.signoff import SIGNER_GROUPS, SignerRequirement

DEFAULT_SIGNERS = (SignerRequirement("clinician", 2), SignerRequirement("data_scientist", 1))


@dataclass(frozen=True)
class PromotionPolicy:
    """Defaults: two clinicians and one data scientist (none of them the submitter), signatures valid for
    90 days, every required card field filled, every criterion met or accepted by a clinical lead."""

    signers: tuple[SignerRequirement, ...] = DEFAULT_SIGNERS
    signoff_valid_days: int = 90
    require_complete_card: bool = True
    exception_roles: tuple[Role, ...] = ("clinical_lead",)  # who may accept a failed criterion; () = nobody

    def sentences(self) -> list[str]:
        who = " and ".join(r.sentence for r in self.signers)
        lines = [f"Signed by {who}, none of them the person who submitted or built the version.",
                 f"Signatures count for {self.signoff_valid_days} days and only while the evaluation, the model "
                 "card and the model's files are the ones that were signed.",
                 "The evaluation is complete and no critical alert is open on the version."]
        lines.append("Every required model-card field is filled." if self.require_complete_card else
                     "Model-card completeness is not required by this policy.")
        accepters = " or ".join(r.replace("_", " ") for r in self.exception_roles)
        lines.append("Every use-case criterion is met" + (
            f", or a failed one is accepted in a signed statement by a {accepters}." if accepters else
            "; no exceptions."))
        return lines


KNOWN_KEYS = {"signers", "signoff_valid_days", "require_complete_card", "exception_roles"}


def parse_policy(raw: Any, problems: list[str]) -> PromotionPolicy:
    """Read the `promotion` section; missing keys take the defaults; problems are appended, not raised."""
    if raw is None:
        return PromotionPolicy()
    if not isinstance(raw, dict):
        problems.append("promotion must be a mapping, e.g. {signers: {clinician: 2, data_scientist: 1}}")
        return PromotionPolicy()
    problems += [f"promotion.{k} is not a known setting (known: {', '.join(sorted(KNOWN_KEYS))})"
                 for k in raw if k not in KNOWN_KEYS]
    days = raw.get("signoff_valid_days", 90)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        problems.append(f"promotion.signoff_valid_days must be a whole number of days from 1 to 3650, not {days!r}")
        days = 90
    complete = raw.get("require_complete_card", True)
    if not isinstance(complete, bool):
        problems.append(f"promotion.require_complete_card must be true or false, not {complete!r}")
        complete = True
    return PromotionPolicy(_signers(raw.get("signers"), problems), days, complete,
                           _exception_roles(raw.get("exception_roles", ["clinical_lead"]), problems))


def _signers(raw: Any, problems: list[str]) -> tuple[SignerRequirement, ...]:
    if raw is None:
        return DEFAULT_SIGNERS
    if not isinstance(raw, dict) or not raw:
        problems.append("promotion.signers must map a signer group to a count, e.g. {clinician: 2, data_scientist: 1}")
        return DEFAULT_SIGNERS
    out = []
    for group, count in raw.items():
        if group not in SIGNER_GROUPS:
            problems.append(f"promotion.signers.{group} is not a signer group (choose from "
                            f"{', '.join(SIGNER_GROUPS)}; auditors and administrators never sign)")
        elif isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10:
            problems.append(f"promotion.signers.{group} must be a whole number from 1 to 10, not {count!r}")
        else:
            out.append(SignerRequirement(group, count))
    return tuple(out) or DEFAULT_SIGNERS


def _exception_roles(raw: Any, problems: list[str]) -> tuple[Role, ...]:
    allowed = [r for r in ROLES if r in ("clinician", "clinical_lead")]
    if not isinstance(raw, list) or any(r not in allowed for r in raw):
        problems.append(f"promotion.exception_roles must be a list drawn from {allowed} (or [] for none), not {raw!r}")
        return ("clinical_lead",)
    return tuple(r for r in allowed if r in raw)


def to_document(policy: PromotionPolicy) -> dict[str, Any]:
    return {"signers": {r.group: r.count for r in policy.signers},
            "signoff_valid_days": policy.signoff_valid_days,
            "require_complete_card": policy.require_complete_card,
            "exception_roles": list(policy.exception_roles)}



