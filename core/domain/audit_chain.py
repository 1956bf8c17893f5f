"""The audit trail's hash chain: what a row's hash covers and how a chain is checked.

Each audit row stores the SHA-256 of its canonical JSON content, and that
content includes the previous row's hash. Editing a row changes its hash;
deleting, inserting or reordering rows breaks the link to the next row. The
check is pure so the CLI, the Audit page and the tests share it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of the first row


def canonical_content(row_id: int, occurred_at: datetime, actor: str, action: str, target: str | None,
                      model_name: str | None, model_version: int | None, detail: str | None, *,
                      prev_hash: str) -> str:
    """The exact text a row's hash covers: sorted keys, no spaces, the stored detail text as is."""
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

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "first_bad_row": self.first_bad_row, "reason": self.reason,
                "head": self.head}

    @property
    def sentence(self) -> str:
        if self.ok:
            return f"The audit trail is intact: {self.rows} rows, each linked to the one before."
        return f"The audit trail has been tampered with at row {self.first_bad_row}: {self.reason}"


def verify_rows(rows: Iterable[tuple[Any, ...]]) -> ChainVerification:
    """Check rows (id, occurred_at, actor, action, target, model_name, model_version, detail, prev_hash,
    row_hash) in id order; report the first row that does not fit and how many rows there are."""
    previous, count, last_id = GENESIS, 0, 0
    first_bad: tuple[int, str] | None = None
    for row in rows:
        row_id, stored_hash = int(row[0]), row[9]
        count += 1
        if first_bad is None:
            first_bad = _problem(row, row_id, last_id, previous)
        previous, last_id = stored_hash, row_id
    if first_bad is not None:
        return ChainVerification(False, count, first_bad[0], first_bad[1])
    return ChainVerification(True, count, head=previous)


def _problem(row: tuple[Any, ...], row_id: int, last_id: int, previous: str) -> tuple[int, str] | None:
    if row_id <= last_id:
        return row_id, f"row {row_id} comes after row {last_id} (reordered)"
    if row[8] != previous:
        return row_id, (f"row {row_id} does not link to the row before it: a row was deleted, inserted or "
                        "reordered just before it")
    if row_hash(*row[:8], prev_hash=row[8]) != row[9]:
        return row_id, f"the content of row {row_id} does not match its hash: the row was edited after it was written"
    return None
