"""Cross-process locks on files in MODELBOARD_HOME.

A promotion reads the policy, writes an intent, moves MLflow aliases and writes
the completion; two of those for one model must never interleave, whichever
processes (two Streamlit sessions, a CLI command) run them. `flock` on a lock
file excludes other processes and other open file descriptions in this one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import StoreBusy


@contextmanager
def exclusive(folder: Path, name: str, *, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold the lock called `name` (any text) in `folder`, waiting up to `timeout_s`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusy(f"another ModelBoard process has been changing {name} for {timeout_s:g} s; "
                                    "try again in a minute") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
