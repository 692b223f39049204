"""Sign-in sessions of people: a random session id in an HttpOnly cookie (kept server-side as its sha256, so
signing out or disabling the account ends it at once) and a CSRF token given at sign-in (the sign-in throttle is
service.throttle)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from gate.store.database import Base, Database, UTCDateTime, utcnow
from service.accounts import AdminAccount, Principal, sha256_hex

SESSION_BYTES = 32


class AdminSession(Base):
    """One signed-in browser: the sha256 of its session id and of its CSRF token, until it expires."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_sha256: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("admin_accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class NewSession:
    """What the browser is given at sign-in: the session id (cookie) and the CSRF token (header)."""

    session_id: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    csrf_sha256: str

    def csrf_ok(self, header: str | None) -> bool:
        """Whether a request's X-CSRF-Token is this session's (compared in constant time)."""
        return header is not None and hmac.compare_digest(sha256_hex(header), self.csrf_sha256)


def start_session(database: Database, account_id: int, hours: float) -> NewSession:
    """A new session for an account (expired sessions are deleted on the way)."""
    now = utcnow()
    expires_at = now + timedelta(hours=hours)
    new = NewSession(secrets.token_urlsafe(SESSION_BYTES), secrets.token_urlsafe(SESSION_BYTES), expires_at)
    with database.session() as session:
        session.execute(delete(AdminSession).where(AdminSession.expires_at < now))
        session.add(
            AdminSession(
                token_sha256=sha256_hex(new.session_id),
                csrf_sha256=sha256_hex(new.csrf_token),
                account_id=account_id,
                expires_at=new.expires_at,
            )
        )
    return new


def find_session(database: Database, session_id: str) -> SignedIn | None:
    """The signed-in account of a session id, or None when unknown, expired or the account is disabled."""
    query = (
        select(AdminSession, AdminAccount)
        .join(AdminAccount, AdminAccount.id == AdminSession.account_id)
        .where(AdminSession.token_sha256 == sha256_hex(session_id))
    )
    with database.session() as session:
        row = session.execute(query).first()
        if row is None:
            return None
        signed, account = row
        if signed.expires_at <= utcnow() or account.disabled:
            return None
        return SignedIn(Principal(account.name, account.role, "session"), signed.csrf_sha256)  # type: ignore[arg-type]


def end_session(database: Database, session_id: str) -> None:
    with database.session() as session:
        session.execute(delete(AdminSession).where(AdminSession.token_sha256 == sha256_hex(session_id)))
