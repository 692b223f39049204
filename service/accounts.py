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
from sqlalchemy import CheckConstraint, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from gate.errors import FaceGateError
from gate.store.database import Base, Database, UTCDateTime, utcnow

log = logging.getLogger(__name__)

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
MAX_NAME_LENGTH = 100
MIN_PASSWORD_LENGTH = 10
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 256 random bits, 43 characters

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AdminAccount(Base):
    """A person who signs in to the API or the page; only the argon2 hash of the password is kept."""

    __tablename__ = "admin_accounts"
    __table_args__ = (CheckConstraint("role IN ('admin', 'viewer')", name="ck_admin_accounts_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled: Mapped[bool] = mapped_column(default=False)


class ApiToken(Base):
    """A machine's bearer token; the token itself is shown once at creation, only its sha256 is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("role IN ('admin', 'viewer')", name="ck_api_tokens_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


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


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise FaceGateError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role  # type: ignore[return-value]


def add_account(database: Database, name: str, password: str, role: str = "admin") -> None:
    """Create an account; its password is stored as an argon2 hash."""
    name, role = _clean_name(name), _check_role(role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise FaceGateError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    try:
        with database.session() as session:
            session.add(AdminAccount(name=name, password_hash=_hasher.hash(password), role=role, disabled=False))
    except IntegrityError:
        raise FaceGateError(f"an account named {name!r} exists already") from None
    log.info("account %s added (%s)", name, role)


def list_accounts(database: Database) -> list[CredentialInfo]:
    with database.session() as session:
        rows = session.scalars(select(AdminAccount).order_by(AdminAccount.name))
        return [CredentialInfo(a.name, a.role, a.created_at, "disabled" if a.disabled else "active") for a in rows]


def disable_account(database: Database, name: str) -> None:
    """Disable an account: it can no longer sign in, and its open sessions stop working."""
    with database.session() as session:
        account = session.scalar(select(AdminAccount).where(AdminAccount.name == name))
        if account is None:
            raise FaceGateError(f"no account named {name!r} (see `facegate admin list`)")
        account.disabled = True
    log.info("account %s disabled", name)


def check_password(database: Database, name: str, password: str) -> AdminAccount | None:
    """The enabled account with this name and password, else None (as slow for an unknown name)."""
    with database.session() as session:
        account = session.scalar(select(AdminAccount).where(AdminAccount.name == name))
        try:
            _hasher.verify(account.password_hash if account else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        return account if account is not None and not account.disabled else None


def add_token(database: Database, name: str, role: str = "viewer") -> str:
    """Create an API token and return it: this is the only time it can be seen (only its sha256 is stored)."""
    name, role = _clean_name(name), _check_role(role)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        with database.session() as session:
            session.add(ApiToken(name=name, token_sha256=sha256_hex(token), role=role))
    except IntegrityError:
        raise FaceGateError(f"a token named {name!r} exists already (revoked tokens keep their name)") from None
    log.info("token %s added (%s)", name, role)
    return token


def list_tokens(database: Database) -> list[CredentialInfo]:
    with database.session() as session:
        rows = session.scalars(select(ApiToken).order_by(ApiToken.name))
        return [
            CredentialInfo(t.name, t.role, t.created_at, "revoked" if t.revoked_at else "active", t.last_used_at)
            for t in rows
        ]


def revoke_token(database: Database, name: str) -> None:
    with database.session() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.name == name))
        if token is None:
            raise FaceGateError(f"no token named {name!r} (see `facegate token list`)")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
    log.info("token %s revoked", name)


def token_principal(database: Database, token: str) -> Principal | None:
    """Who a bearer token belongs to (and its last use noted), or None for an unknown or revoked token."""
    with database.session() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == sha256_hex(token)))
        if row is None or row.revoked_at is not None:
            return None
        row.last_used_at = utcnow()
        return Principal(row.name, _check_role(row.role), "token")
