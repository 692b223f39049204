"""Sign-in sessions of people: a random session id in an HttpOnly cookie (kept server-side as its sha256, so
signing out or disabling the account ends it at once), a CSRF token given at sign-in, and the sign-in rate limit."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from gate.store import Base, Database, UTCDateTime, utcnow
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


class SignInLimiter:
    """At most `failures` failed sign-ins per `window_s` for one name, and the same for one client address; the
    count is per server process (kept in memory)."""

    def __init__(self, failures: int = 5, window_s: float = 300.0) -> None:
        self.failures, self.window_s = failures, window_s
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen[key]
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked(self, name: str, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for key in list(self._seen):  # names and addresses whose failures are past the window are forgotten
                if not self._recent(key, now):
                    del self._seen[key]
            return any(len(self._seen.get(key, ())) >= self.failures for key in (f"name:{name}", f"addr:{address}"))

    def failed(self, name: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"name:{name}", f"addr:{address}"):
                self._recent(key, now).append(now)
