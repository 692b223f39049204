"""Face data sealed at rest: AES-256-GCM with a key kept in a file or an environment variable.

A sealed blob is PREFIX (4 magic bytes, 1 version byte), a random 12-byte nonce, then the ciphertext with its
16-byte tag. The magic read as a little-endian float32 is a NaN, so no embedding (finite floats) starts with it,
and a WebP crop starts with "RIFF". The key is 32 random bytes written as urlsafe base64 text. Files that hold
face data or the key are owner-only: `ensure_private` narrows a wider mode found on open, with a warning.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import ColumnElement, LargeBinary, and_, func, literal

from gate.config import Settings
from gate.errors import FaceGateError

log = logging.getLogger(__name__)

MAGIC = b"fg\xc1\xff"  # a float32 NaN, never the start of an embedding
VERSION = b"\x01"
PREFIX = MAGIC + VERSION
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = len(PREFIX) + NONCE_SIZE + TAG_SIZE  # 33: a sealed float32 vector's length is never a multiple of 4
KEY_SIZE = 32
KEY_HINT = "32 random bytes as urlsafe base64; `facegate keys new PATH` writes one"
PRIVATE_MODE = 0o600  # files holding face data, or the key to it: read and written by their owner only
WIDER_THAN_PRIVATE = 0o7777 & ~PRIVATE_MODE  # any of these bits set lets someone else in (or runs the file)
FINGERPRINT_LABEL = b"facegate key fingerprint\x00"  # a key's public name: what a backup says it needs


class Cipher:
    """Seals and unseals bytes with one AES-256-GCM key; `source` names where the key came from, for errors."""

    def __init__(self, key: bytes, source: str = "the configured key") -> None:
        if len(key) != KEY_SIZE:
            raise FaceGateError(f"{source}: not a valid key ({KEY_HINT})")
        self._aead = AESGCM(key)
        self.source = source
        # 16 hex digits of a labelled SHA-256 of the key: names it (which key a backup needs), reveals nothing of it
        self.fingerprint = hashlib.sha256(FINGERPRINT_LABEL + key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Cipher(source={self.source!r})"  # never the key

    def seal(self, data: bytes) -> bytes:
        """PREFIX + nonce + ciphertext and tag; a fresh random nonce each call."""
        nonce = os.urandom(NONCE_SIZE)
        return PREFIX + nonce + self._aead.encrypt(nonce, bytes(data), PREFIX)

    def unseal(self, blob: bytes, what: str = "the data") -> bytes:
        """The plain bytes of a sealed blob; a blob sealed with another key, or altered, is one FaceGateError."""
        if not is_sealed(blob):
            raise FaceGateError(f"{what} is not encrypted (no FaceGate prefix)")
        nonce = blob[len(PREFIX) : len(PREFIX) + NONCE_SIZE]
        try:
            return self._aead.decrypt(nonce, bytes(blob[len(PREFIX) + NONCE_SIZE :]), PREFIX)
        except InvalidTag:
            raise FaceGateError(f"{what}: encrypted with another key (or altered): check {self.source}") from None


def is_sealed(blob: bytes, plain_multiple: int = 1) -> bool:
    """Whether `blob` is sealed. With plain_multiple=4 (float32 vectors) a blob whose length is a multiple of 4
    is plain whatever its first bytes: sealed ones are OVERHEAD (33) bytes longer than their plain content."""
    if len(blob) < OVERHEAD or bytes(blob[: len(PREFIX)]) != PREFIX:
        return False
    return (len(blob) - OVERHEAD) % plain_multiple == 0


def sealed_clause(stored: ColumnElement[bytes], plain_multiple: int = 1) -> ColumnElement[bool]:
    """`is_sealed` in SQL (SQLite and PostgreSQL), over a column's stored bytes (type_coerce it to LargeBinary):
    counts and selects sealed rows without reading them into Python."""
    length = func.length(stored)
    clause = and_(func.substr(stored, 1, len(PREFIX)) == literal(PREFIX, LargeBinary), length >= OVERHEAD)
    return clause if plain_multiple == 1 else and_(clause, (length - OVERHEAD) % plain_multiple == 0)


def ensure_private(path: Path, what: str) -> None:
    """Make an existing file that others could read owner-only (0600, or 0400 if it was read-only), with one
    warning line naming it; a file we cannot change (not its owner) keeps its mode and gets a warning saying so.
    The one rule for the modes of files holding face data: databases, index files, their sidecars, the key."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # absent (not made yet) or unreadable: whoever opens it next says why
    if not mode & WIDER_THAN_PRIVATE:
        return
    private = mode & PRIVATE_MODE
    try:
        os.chmod(path, private)
    except OSError as error:
        log.warning(
            "%s %s can be read by other users (mode %o) and cannot be made %o (%s): chmod %o it as its owner",
            what, path, mode, PRIVATE_MODE, error.strerror, PRIVATE_MODE,
        )  # fmt: skip
        return
    log.warning("%s %s could be read by other users (mode %o): made it %o", what, path, mode, private)


def new_key_text() -> str:
    """A fresh random key as urlsafe base64 text (44 characters)."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=8 * KEY_SIZE)).decode("ascii")


def parse_key(text: str, source: str) -> Cipher:
    """The cipher of a key written as urlsafe base64 text; anything else is one FaceGateError naming `source`."""
    try:
        key = base64.b64decode(text.strip(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise FaceGateError(f"{source}: not a valid key ({KEY_HINT})") from None
    return Cipher(key, source)


def new_private_file(path: Path) -> int:
    """A descriptor of a new owner-only (0600, whatever the umask) file at `path`, opened for writing; FileExistsError
    when anything is there, a link included (never followed)."""
    handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY, PRIVATE_MODE)
    os.fchmod(handle, PRIVATE_MODE)
    return handle


def write_private_file(path: Path, text: str, what: str) -> None:
    """Write `text` to a new owner-only (0600) file, fsynced; an existing file is never overwritten (a key or a
    secret others depend on). `what` names the file in the one-line errors."""
    path = Path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = new_private_file(path)
    except FileExistsError:
        raise FaceGateError(f"{path} exists: a {what} is never overwritten (what depends on it needs it)") from None
    except OSError as error:
        raise FaceGateError(f"cannot create {what} {path}: {error.strerror}") from None
    try:
        os.write(handle, text.encode("utf-8"))
        os.fsync(handle)
    finally:
        os.close(handle)


def write_key_file(path: Path) -> None:
    """Write a fresh key to a new file, owner-only (0600); an existing file is never overwritten."""
    write_private_file(path, new_key_text() + "\n", "key file")


def read_private_file(path: Path, source: str, label: str, maker: str, encoding: str = "utf-8") -> str:
    """A secret's file as text (a key, a reader's secret), its mode tightened to owner-only (`label` names it in
    the log); a FaceGateError naming `source` when it is missing (`maker` is the command that writes one) or
    unreadable."""
    try:
        text = path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise FaceGateError(f"{source}: no such file (`{maker}` writes one)") from None
    except (OSError, UnicodeDecodeError) as error:
        detail = getattr(error, "strerror", None) or f"not {encoding} text"
        raise FaceGateError(f"cannot read {source}: {detail}") from None
    ensure_private(path, label)
    return text


def environment_text(name: str, source: str) -> str:
    """The value of environment variable `name`; a FaceGateError naming `source` when it is not set."""
    text = os.environ.get(name)
    if text is None:
        raise FaceGateError(f"{source}: the environment variable is not set")
    return text


def read_key_file(path: Path, source: str, what: str = "key file") -> Cipher:
    """The key in the owner-only file at `path` (`source` names it in errors, `what` the setting it came from)."""
    text = read_private_file(path, source, what, "facegate keys new PATH", encoding="ascii")
    return parse_key(text, source)


def load_cipher(settings: Settings) -> Cipher | None:
    """The cipher of the configured key ([encryption] key_file or key_env), or None when neither is set."""
    config = settings.encryption
    if config.key_file and config.key_env:
        raise FaceGateError("set encryption.key_file or encryption.key_env, not both")
    if config.key_file:
        path = settings.resolve(config.key_file)
        return read_key_file(path, f"encryption.key_file {path}", "encryption.key_file")
    if config.key_env:
        source = f"encryption.key_env {config.key_env}"
        text = environment_text(config.key_env, source)
        if not text.strip():
            raise FaceGateError(f"{source}: the environment variable is empty")
        return parse_key(text, source)
    return None
