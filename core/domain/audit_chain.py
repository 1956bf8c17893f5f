"""The audit trail's hash chain: what a row's hash covers and how a chain is checked.

Each audit row stores the SHA-256 of its canonical JSON content, and that
content includes the previous row's hash. Editing a row changes its hash;
deleting, inserting or reordering rows breaks the link to the next row. The
check is pure so the CLI, the Audit page and the tests share it.

A chain alone can be recomputed from scratch by whoever can write the store
file. So each promotion and rollback also writes the hash of its intent row
into MLflow (an anchor: a registered-model tag); the check compares every
anchor with the chain, so rewriting or cutting the trail before the newest
anchor is caught unless the MLflow store is rewritten as well
(docs/decisions/0008).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of the first row
ANCHOR_TAG_PREFIX = "modelboard.audit_anchor."


@dataclass(frozen=True)
class AuditAnchor:
    """A row's hash written outside the store (an MLflow tag): the chain must still hold that row as it was."""

    row_id: int
    row_hash: str
    source: str  # where it was written, in words: "MLflow tag modelboard.audit_anchor.… of sepsis-icu"

    def tag_value(self) -> str:
        return f"{self.row_id}:{self.row_hash}"


def parse_anchor(value: str, source: str) -> AuditAnchor:
    """Read an anchor tag's value `ROW_ID:SHA256`; a value that is not one is itself a sign of tampering."""
    row_id, _, digest = value.partition(":")
    if not row_id.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{source} holds {value[:80]!r}, not a ModelBoard anchor (ROW_ID:SHA256)")
    return AuditAnchor(int(row_id), digest, source)


def canonical_content(row_id: int, occurred_at: datetime, actor: str, action: str, target: str | None,
                      model_name: str | None, model_version: int | None, detail: str | None, *,
                      prev_hash: str) -> str:
    """The exact text a row's hash covers: the JSON of its fields with sorted keys, no spaces, the stored detail
    text as is — what `json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes.

    Written out field by field with json's own string encoder because `audit verify` recomputes it for every
    row: a quarter of the time json.dumps takes (tests/core/test_audit_chain.py holds the two equal)."""
    return (f'{{"action":{_text(action)},"actor":{_text(actor)},"detail":{_text(detail)},"id":{int(row_id)},'
            f'"model_name":{_text(model_name)},"model_version":{_number(model_version)},'
            f'"occurred_at":"{occurred_at.isoformat(timespec="microseconds")}","prev_hash":{_text(prev_hash)},'
            f'"target":{_text(target)}}}')


_encode_string = json.encoder.encode_basestring  # the C encoder json.dumps uses with ensure_ascii=False


def _text(value: str | None) -> str:
    return "null" if value is None else str(_encode_string(value))


def _number(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def reference_canonical_content(row_id: int, occurred_at: datetime, actor: str, action: str, target: str | None,
                                model_name: str | None, model_version: int | None, detail: str | None, *,
                                prev_hash: str) -> str:
    """The rule in its plain form (json.dumps); the tests compare canonical_content with it."""
    content: dict[str, Any] = {
        "id": int(row_id), "occurred_at": occurred_at.isoformat(timespec="microseconds"), "actor": actor,
        "action": action, "target": target, "model_name": model_name,
        "model_version": None if model_version is None else int(model_version), "detail": detail,
        "prev_hash": prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(row_id: int, occurred_at: datetime, actor: str, action: str, target: str | None,
             model_name: str | None, model_version: int | None, detail: str | None, *, prev_hash: str) -> str:
    text = canonical_content(row_id, occurred_at, actor, action, target, model_name, model_version, detail,
                             prev_hash=prev_hash)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainVerification:
    """The result `audit verify` prints: ok, how many rows were checked, and the first bad row if any."""

    ok: bool
    rows: int
    first_bad_row: int | None = None
    reason: str | None = None
    head: str = GENESIS  # the last row's hash: write it down to detect later truncation
    anchors: int = 0  # how many anchors (checkpoints, MLflow tags) were compared with the chain
    anchored: bool = False  # a signed checkpoint kept outside the store vouches for the chain up to its last row
    checkpoint: dict[str, Any] | None = None  # the newest checkpoint checked: n, row, hash, at, key, source
    unanchored_because: str | None = None  # why nothing vouches for the chain, in words
    interrupted: str | None = None  # a transaction whose process stopped before it committed, in words

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "first_bad_row": self.first_bad_row, "reason": self.reason,
                "head": self.head, "anchors": self.anchors, "anchored": self.anchored, "checkpoint": self.checkpoint,
                "unanchored_because": self.unanchored_because, "interrupted": self.interrupted}

    @property
    def sentence(self) -> str:
        if not self.ok:
            where = f"at row {self.first_bad_row}" if self.first_bad_row is not None else "outside the store"
            return f"The audit trail has been tampered with {where}: {self.reason}"
        intact = f"The audit trail is intact: {self.rows} rows, each linked to the one before"
        if self.anchored and self.checkpoint is not None:
            return (f"{intact}, up to checkpoint {self.checkpoint['n']} signed {self.checkpoint['at'][:19]} "
                    f"(row {self.checkpoint['row']}) in {self.checkpoint['source']}.")
        return (f"{intact}, but it is NOT anchored ({self.unanchored_because}): someone able to write the "
                "governance store could rewrite it without this check noticing (docs/decisions/0014).")


def verify_rows(rows: Iterable[tuple[Any, ...]], anchors: Iterable[AuditAnchor] = (), *,
                covered_to: int | None = None, covered_by: str = "") -> ChainVerification:
    """Check rows (id, occurred_at, actor, action, target, model_name, model_version, detail, prev_hash,
    row_hash) in id order, and each anchor against its row; report the first row that does not fit and how
    many rows there are. With `covered_to`, a row after it was written without a checkpoint (`covered_by`
    names the newest one): rows added to the store by hand."""
    by_row = _by_row(anchors)
    previous, count, last_id = GENESIS, 0, 0
    first_bad: tuple[int, str] | None = None
    seen: set[int] = set()
    for row in rows:
        row_id, stored_hash = int(row[0]), row[9]
        count += 1
        if first_bad is None:
            first_bad = (_problem(row, row_id, last_id, previous) or _unanchored(by_row.get(row_id), stored_hash)
                         or _uncovered(row_id, covered_to, covered_by))
        if row_id in by_row:
            seen.add(row_id)
        previous, last_id = stored_hash, row_id
    missing = sorted(set(by_row) - seen)
    if first_bad is None and missing:
        anchor = by_row[missing[0]]
        first_bad = (anchor.row_id, f"row {anchor.row_id}, whose hash was written to {anchor.source}, is missing: "
                                    "rows were deleted or the newest ones cut off")
    if first_bad is not None:
        return ChainVerification(False, count, first_bad[0], first_bad[1], anchors=len(by_row))
    return ChainVerification(True, count, head=previous, anchors=len(by_row))


def _uncovered(row_id: int, covered_to: int | None, covered_by: str) -> tuple[int, str] | None:
    if covered_to is None or row_id <= covered_to:
        return None
    return row_id, (f"row {row_id} comes after the newest checkpoint ({covered_by}): it was added without "
                    "ModelBoard's signing key, i.e. written into the store by hand")


def _by_row(anchors: Iterable[AuditAnchor]) -> dict[int, AuditAnchor]:
    """One anchor per row; two that disagree about a row cannot both be genuine, so the row fails its check."""
    out: dict[int, AuditAnchor] = {}
    for anchor in anchors:
        known = out.get(anchor.row_id)
        if known is not None and known.row_hash != anchor.row_hash:
            anchor = AuditAnchor(anchor.row_id, "disagreeing anchors", f"{known.source} and {anchor.source}")
        out[anchor.row_id] = anchor
    return out


def _unanchored(anchor: AuditAnchor | None, stored_hash: str) -> tuple[int, str] | None:
    if anchor is None or anchor.row_hash == stored_hash:
        return None
    return anchor.row_id, (f"row {anchor.row_id} no longer has the hash written to {anchor.source} when it was "
                           "recorded: the trail was rewritten (and its hashes recomputed) at or before this row")


def _problem(row: tuple[Any, ...], row_id: int, last_id: int, previous: str) -> tuple[int, str] | None:
    if row_id <= last_id:
        return row_id, f"row {row_id} comes after row {last_id} (reordered)"
    if row[8] != previous:
        return row_id, (f"row {row_id} does not link to the row before it: a row was deleted, inserted or "
                        "reordered just before it")
    if row_hash(*row[:8], prev_hash=row[8]) != row[9]:
        return row_id, f"the content of row {row_id} does not match its hash: the row was edited after it was written"
    return None
