"""Sign-in sessions of people: a random session id in an HttpOnly cookie (kept server-side as its sha256, so
signing out or disabling the account ends it at once) and a CSRF token given at sign-in (the sign-in throttle is
service.throttle)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from gate.store import accounts as stored
from gate.store.database import Database
from gate.store.schema import utcnow
from service.accounts import Principal, check_role, sha256_hex

SESSION_BYTES = 32


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
    expires_at = utcnow() + timedelta(hours=hours)
    new = NewSession(secrets.token_urlsafe(SESSION_BYTES), secrets.token_urlsafe(SESSION_BYTES), expires_at)
    stored.start_session(database, sha256_hex(new.session_id), sha256_hex(new.csrf_token), account_id, expires_at)
    return new


def find_session(database: Database, session_id: str) -> SignedIn | None:
    """The signed-in account of a session id, or None when unknown, expired or the account is disabled."""
    found = stored.session_account(database, sha256_hex(session_id))
    if found is None:
        return None
    signed, account = found
    if signed.expires_at <= utcnow() or account.disabled:
        return None
    return SignedIn(Principal(account.name, check_role(account.role), "session"), signed.csrf_sha256)


def end_session(database: Database, session_id: str) -> None:
    stored.end_session(database, sha256_hex(session_id))
