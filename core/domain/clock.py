"""Time in ModelBoard: naive UTC everywhere in the store, shown as UTC on screen."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Naive UTC timestamp: the store's TIMESTAMP columns are UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)
