"""Is the process doing this piece of work still alive? A lock held for exactly as long as it is.

An evaluation's folder holds patient-level data while the worker runs, and an uploaded evaluation file sits on disk
while it is checked. If the process that owns either is killed (SIGKILL, a power cut), nothing in that process can
clean up. So the owner holds an exclusive `flock` on a file beside the data for as long as it works: the kernel
releases it when the last process holding the open file ends, however it ends. `reconcile` tries the lock: if it
gets it, nobody is working there any more, and what is left is debris to report and remove.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def hold(path: Path) -> int:
    """Take the lock on `path` (created if absent) and return its descriptor; it is held until every process that
    has the descriptor (the caller and any child it passed it to) has closed it or ended."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def release(fd: int) -> None:
    os.close(fd)


def abandoned(path: Path) -> bool:
    """True if nobody holds the lock on `path` (or it does not exist): whoever worked there has ended."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
