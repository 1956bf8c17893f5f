"""The checkpoint log on disk and the key that signs it (docs/decisions/0014).

The log is a file of JSON lines outside MODELBOARD_HOME; the key is an Ed25519
private key in a file only its owner may read (created on first use), or given
as MODELBOARD_AUDIT_KEY from a secret store. Appends happen while the store's
write lock is held, and under an OS lock on the log as well, so lines never
interleave; each line is flushed and fsync'ed before the transaction goes on.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import os
import stat
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.domain.audit_checkpoint import (
    Checkpoint,
    CheckpointProblem,
    Stage,
    check_links,
    next_checkpoint,
    parse_line,
    signed,
)
from core.errors import ConfigurationError

_TAIL_BYTES = 4096  # more than one line; a line is about 400 bytes


class SigningKey:
    """The checkpoint signing key; `key_id` names it in every line without revealing it."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(public).hexdigest()[:16]

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self._private.sign(data)).decode("ascii")

    def verifies(self, signature: str, data: bytes) -> bool:
        try:
            self._private.public_key().verify(base64.b64decode(signature, validate=True), data)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


def key_from_secret(secret: str) -> SigningKey:
    """MODELBOARD_AUDIT_KEY: the 32-byte Ed25519 seed, base64-encoded."""
    try:
        seed = base64.b64decode(secret.strip(), validate=True)
        return SigningKey(Ed25519PrivateKey.from_private_bytes(seed))
    except (binascii.Error, ValueError):
        raise ConfigurationError("MODELBOARD_AUDIT_KEY is not a base64-encoded 32-byte Ed25519 key: create one with "
                                 "`python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\"`"
                                 ) from None


def key_from_file(path: Path, *, create: bool) -> SigningKey:
    """The key in `path` (PEM, PKCS#8), refused if others may read it; created there, owner-only, if absent."""
    if not path.exists():
        if not create:
            raise ConfigurationError(f"the audit checkpoint key {path} does not exist")
        return _create_key(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"the audit checkpoint key {path} may be read by other users "
                                 f"(mode {stat.filemode(mode)}): run `chmod 600 {path}`")
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"the audit checkpoint key {path} cannot be read ({exc}): restore it from "
                                 "the backup of the keys, or point MODELBOARD_AUDIT_KEY_FILE at it") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigurationError(f"the audit checkpoint key {path} is not an Ed25519 key")
    return SigningKey(private)


def _create_key(path: Path) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return key_from_file(path, create=False)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the audit checkpoint key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    return SigningKey(private)


class CheckpointLog:
    """The append-only file of signed checkpoints."""

    def __init__(self, path: Path, key: SigningKey) -> None:
        self.path = path
        self.key = key

    @property
    def source(self) -> str:
        return f"the checkpoint log {self.path}"

    def exists(self) -> bool:
        return self.path.exists()

    def append(self, stage: Stage, row_id: int, row_hash: str, at: datetime) -> Checkpoint:
        """Sign the next line and write it durably; a torn last line (a process killed mid-write) is dropped."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            previous = self._last_line(fd)
            line = next_checkpoint(previous, stage, row_id, row_hash, at, self.key.key_id)
            line = signed(line, self.key.sign(line.payload()))
            os.write(fd, (line.line() + "\n").encode("utf-8"))
            os.fsync(fd)
            return line
        finally:
            os.close(fd)  # closing releases the lock

    def _last_line(self, fd: int) -> Checkpoint | None:
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        start = max(0, size - _TAIL_BYTES)
        tail = os.pread(fd, size - start, start)
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            os.ftruncate(fd, start + cut + 1 if cut >= 0 else start)
            tail = tail[: cut + 1] if cut >= 0 else b""
            if not tail:
                return None if start == 0 else self._last_line(fd)
        last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
        return parse_line(last, self.source)

    def read(self) -> list[str]:
        """Every complete line, checked to follow one another; a trailing torn line is left out."""
        data = self.path.read_bytes() if self.path.exists() else b""
        text = data.decode("utf-8", errors="replace")
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        lines = text.splitlines()
        check_links(lines, self.source)
        return lines

    def check_signature(self, checkpoint: Checkpoint, source: str) -> None:
        """The newest line vouches for all before it (each names the digest of its predecessor)."""
        if checkpoint.key_id != self.key.key_id:
            raise CheckpointProblem(f"{checkpoint.describe(source)} was signed with key {checkpoint.key_id}, not with "
                                    f"the configured key {self.key.key_id}: point MODELBOARD_AUDIT_KEY_FILE at the "
                                    "key that signed it (a key rotation), or the checkpoint was forged")
        if not self.key.verifies(checkpoint.signature, checkpoint.payload()):
            raise CheckpointProblem(f"the signature of {checkpoint.describe(source)} does not verify: the checkpoint "
                                    "was forged or edited")
