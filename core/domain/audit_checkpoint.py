"""Checkpoints of the audit trail's head: what they say, how a log of them is read, what they prove.

The hash chain alone can be recomputed by anyone who can write the governance
store. So every audited transaction also appends the new head of the chain
(row, hash, time) to a checkpoint log kept outside the store's folder, signed
with a key that is not in the store. Two lines per transaction: `intent`
just before COMMIT and `commit` just after, so that a process killed between
the two is told apart from rows cut off by hand. Each line carries the digest
of the line before it, so only the newest line's signature needs checking to
vouch for the whole log (docs/decisions/0014).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from core.domain.audit_chain import GENESIS, AuditAnchor

Stage = Literal["intent", "commit"]
FORMAT = 1


class CheckpointProblem(ValueError):
    """The checkpoint log (or its mirror) is not what ModelBoard wrote: a sign of tampering or of loss."""


@dataclass(frozen=True)
class Checkpoint:
    """One line of the log: the head of the chain at one moment, signed."""

    n: int  # position in the log, from 1
    stage: Stage
    row_id: int  # 0 with GENESIS: the first checkpoint of a store whose trail was still empty
    row_hash: str
    at: datetime
    key_id: str  # which signing key, so a rotated key is named rather than reported as forgery
    prev: str  # digest of line n-1 (GENESIS for the first)
    signature: str = ""  # base64 Ed25519 over payload()

    def payload(self) -> bytes:
        """The bytes the signature covers: every field but the signature, canonical JSON."""
        content: dict[str, Any] = {
            "format": FORMAT, "n": self.n, "stage": self.stage, "row": self.row_id, "hash": self.row_hash,
            "at": self.at.isoformat(timespec="microseconds"), "key": self.key_id, "prev": self.prev,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def line(self) -> str:
        content = json.loads(self.payload()) | {"sig": self.signature}
        return json.dumps(content, sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """What the next line's `prev` must hold: the SHA-256 of this whole line, signature included."""
        return hashlib.sha256(self.line().encode("utf-8")).hexdigest()

    def describe(self, source: str) -> str:
        return f"checkpoint {self.n} in {source} (row {self.row_id}, {self.at:%Y-%m-%d %H:%M:%S} UTC)"

    def as_dict(self, source: str) -> dict[str, Any]:
        return {"n": self.n, "row": self.row_id, "hash": self.row_hash, "at": self.at.isoformat(),
                "key": self.key_id, "source": source}


def parse_line(text: str, source: str) -> Checkpoint:
    """One log line as a Checkpoint; anything else is reported with where it was found."""
    try:
        raw = json.loads(text)
        checkpoint = Checkpoint(
            n=int(raw["n"]), stage=raw["stage"], row_id=int(raw["row"]), row_hash=str(raw["hash"]),
            at=datetime.fromisoformat(raw["at"]), key_id=str(raw["key"]), prev=str(raw["prev"]),
            signature=str(raw["sig"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointProblem(f"{source} holds a line that is not a ModelBoard checkpoint ({exc})") from None
    if checkpoint.stage not in ("intent", "commit") or raw.get("format") != FORMAT or checkpoint.line() != text:
        raise CheckpointProblem(f"{source} holds a line that is not a ModelBoard checkpoint as written")
    return checkpoint


def next_checkpoint(previous: Checkpoint | None, stage: Stage, row_id: int, row_hash: str, at: datetime,
                    key_id: str) -> Checkpoint:
    """The unsigned line that follows `previous`."""
    return Checkpoint(n=1 if previous is None else previous.n + 1, stage=stage, row_id=row_id, row_hash=row_hash,
                      at=at, key_id=key_id, prev=GENESIS if previous is None else previous.digest())


def signed(checkpoint: Checkpoint, signature: str) -> Checkpoint:
    return replace(checkpoint, signature=signature)


def check_links(lines: Sequence[str], source: str) -> None:
    """Every line must follow the one before it: numbered in order, each naming the digest of the line before.
    A line edited, inserted or removed breaks this, and the newest line's signature covers the digests, so
    the text of the lines is checked here without parsing each (a log holds two lines per audited write)."""
    previous = GENESIS
    for n, raw in enumerate(lines, start=1):
        if f'"n":{n},' not in raw or f'"prev":"{previous}"' not in raw:
            raise CheckpointProblem(f"line {n} of {source} does not follow the line before it: the checkpoint "
                                    "log was edited, or lines were removed or inserted")
        previous = hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Coverage:
    """What a checked log vouches for: checkpointed rows' hashes (as anchors), and the newest row it covers."""

    anchors: tuple[AuditAnchor, ...]
    newest: Checkpoint | None  # the newest checkpoint whose transaction committed
    interrupted: Checkpoint | None = None  # a final intent whose transaction never committed (a killed process)


def newest_committed(lines: Sequence[str], source: str, row_exists: Callable[[int], bool]) -> Coverage:
    """The newest checkpoint that vouches for a committed transaction: the last `commit` line, or a final
    `intent` line whose row is in the store (the process stopped between COMMIT and writing `commit`). A final
    intent whose row is absent belongs to a transaction that never committed (a killed process, a failed
    COMMIT) and vouches for nothing; nor does an intent in the middle of the log."""
    interrupted: Checkpoint | None = None
    for n in range(len(lines), 0, -1):
        cp = parse_line(lines[n - 1], f"{source}, line {n}")
        if cp.stage == "commit" or (n == len(lines) and row_exists(cp.row_id)):
            anchors = (AuditAnchor(cp.row_id, cp.row_hash, cp.describe(source)),) if cp.row_id else ()
            return Coverage(anchors, cp, interrupted)
        if n == len(lines):
            interrupted = cp
    return Coverage((), None, interrupted)


def all_anchors(lines: Sequence[str], source: str, newest: Checkpoint | None) -> list[AuditAnchor]:
    """Every committed checkpoint as an anchor, to find the first row a rewrite touched (only read when the
    newest checkpoint already showed that the trail was changed)."""
    out: dict[int, AuditAnchor] = {}
    for n, raw in enumerate(lines, start=1):
        cp = parse_line(raw, f"{source}, line {n}")
        if cp.row_id and (cp.stage == "commit" or (newest is not None and cp.n == newest.n)):
            out[cp.row_id] = AuditAnchor(cp.row_id, cp.row_hash, cp.describe(source))
    return list(out.values())
