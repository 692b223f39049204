"""Who may use the API: admin accounts (argon2 password hashes) and API tokens (kept as their sha256 only), each
with a role: "admin" changes who is enrolled, "viewer" only reads."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gate.errors import FaceGateError
from gate.store import accounts as stored
from gate.store.database import Database
from gate.store.schema import MAX_ACCOUNT_NAME, AdminAccount

log = logging.getLogger(__name__)

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
MAX_NAME_LENGTH = MAX_ACCOUNT_NAME
MIN_PASSWORD_LENGTH = 10
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 256 random bits, 43 characters

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: an account signed in (kind "session") or a token (kind "token")."""

    name: str
    role: Role
    kind: Literal["session", "token"]


@dataclass(frozen=True)
class CredentialInfo:
    """An account or a token as listed: never its hash."""

    name: str
    role: str
    created_at: datetime
    state: str  # "active", "disabled" (account), "revoked" (token)
    last_used_at: datetime | None = None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _clean_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH or any(c.isspace() for c in cleaned):
        raise FaceGateError(f"name must be 1 to {MAX_NAME_LENGTH} characters without spaces, got {name!r}")
    return cleaned


def check_role(role: str) -> Role:
    """`role` as a Role; a one-line FaceGateError for any other text (a row edited by hand, a typo)."""
    if role not in ROLES:
        raise FaceGateError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def add_account(database: Database, name: str, password: str, role: str = "admin") -> None:
    """Create an account; its password is stored as an argon2 hash."""
    name, role = _clean_name(name), check_role(role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise FaceGateError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if not stored.add_account(database, name, _hasher.hash(password), role):
        raise FaceGateError(f"an account named {name!r} exists already")
    log.info("account %s added (%s)", name, role)


def list_accounts(database: Database) -> list[CredentialInfo]:
    return [
        CredentialInfo(a.name, a.role, a.created_at, "disabled" if a.disabled else "active")
        for a in stored.accounts(database)
    ]


def disable_account(database: Database, name: str) -> None:
    """Disable an account: it can no longer sign in, and its open sessions stop working."""
    if not stored.disable_account(database, name):
        raise FaceGateError(f"no account named {name!r} (see `facegate admin list`)")
    log.info("account %s disabled", name)


def check_password(database: Database, name: str, password: str) -> AdminAccount | None:
    """The enabled account with this name and password, else None (as slow for an unknown name)."""
    account = stored.find_account(database, name)
    try:
        _hasher.verify(account.password_hash if account else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    return account if account is not None and not account.disabled else None


def add_token(database: Database, name: str, role: str = "viewer") -> str:
    """Create an API token and return it: this is the only time it can be seen (only its sha256 is stored)."""
    name, role = _clean_name(name), check_role(role)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    if not stored.add_token(database, name, sha256_hex(token), role):
        raise FaceGateError(f"a token named {name!r} exists already (revoked tokens keep their name)")
    log.info("token %s added (%s)", name, role)
    return token


def list_tokens(database: Database) -> list[CredentialInfo]:
    return [
        CredentialInfo(t.name, t.role, t.created_at, "revoked" if t.revoked_at else "active", t.last_used_at)
        for t in stored.tokens(database)
    ]


def revoke_token(database: Database, name: str) -> None:
    if not stored.revoke_token(database, name):
        raise FaceGateError(f"no token named {name!r} (see `facegate token list`)")
    log.info("token %s revoked", name)


def token_principal(database: Database, token: str) -> Principal | None:
    """Who a bearer token belongs to (and its last use noted), or None for an unknown or revoked token."""
    row = stored.use_token(database, sha256_hex(token))
    return None if row is None else Principal(row.name, check_role(row.role), "token")
