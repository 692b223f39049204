"""Admin accounts, API tokens and sign-in sessions as stored (only hashes of passwords, tokens and session ids):
each function is one transaction. What a name may be, how a password is hashed and what a refusal says are the
service's (service.accounts, service.sessions)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gate.store.database import Database
from gate.store.schema import AdminAccount, AdminSession, ApiToken, utcnow


def _add_unique(database: Database, row: AdminAccount | ApiToken) -> bool:
    """Store a new row; False (nothing stored) when its name is taken."""
    try:
        with database.session() as session:
            session.add(row)
    except IntegrityError:
        return False
    return True


def add_account(database: Database, name: str, password_hash: str, role: str) -> bool:
    """Store a new enabled account; False (nothing stored) when the name is taken."""
    return _add_unique(database, AdminAccount(name=name, password_hash=password_hash, role=role, disabled=False))


def accounts(database: Database) -> list[AdminAccount]:
    """Every account, by name."""
    with database.session() as session:
        return list(session.scalars(select(AdminAccount).order_by(AdminAccount.name)))


def find_account(database: Database, name: str) -> AdminAccount | None:
    with database.session() as session:
        return session.scalar(select(AdminAccount).where(AdminAccount.name == name))


def disable_account(database: Database, name: str) -> bool:
    """Mark an account disabled (its sessions stop working with it); False when there is no such account."""
    with database.session() as session:
        account = session.scalar(select(AdminAccount).where(AdminAccount.name == name))
        if account is None:
            return False
        account.disabled = True
    return True


def add_token(database: Database, name: str, token_sha256: str, role: str) -> bool:
    """Store a new token by its sha256; False (nothing stored) when the name is taken (revoked tokens keep it)."""
    return _add_unique(database, ApiToken(name=name, token_sha256=token_sha256, role=role))


def tokens(database: Database) -> list[ApiToken]:
    """Every token, revoked ones too, by name."""
    with database.session() as session:
        return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


def revoke_token(database: Database, name: str) -> bool:
    """Revoke a token (once: a second revocation keeps the first time); False when there is no such token."""
    with database.session() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.name == name))
        if token is None:
            return False
        if token.revoked_at is None:
            token.revoked_at = utcnow()
    return True


def use_token(database: Database, token_sha256: str) -> ApiToken | None:
    """The unrevoked token with this sha256, its use noted; None for an unknown or revoked one."""
    with database.session() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_sha256))
        if token is None or token.revoked_at is not None:
            return None
        token.last_used_at = utcnow()
        return token


def start_session(
    database: Database, token_sha256: str, csrf_sha256: str, account_id: int, expires_at: datetime
) -> None:
    """Store a sign-in session by the sha256 of its id and CSRF token; sessions already expired are deleted."""
    with database.session() as session:
        session.execute(delete(AdminSession).where(AdminSession.expires_at < utcnow()))
        session.add(
            AdminSession(
                token_sha256=token_sha256, csrf_sha256=csrf_sha256, account_id=account_id, expires_at=expires_at
            )
        )


def session_account(database: Database, token_sha256: str) -> tuple[AdminSession, AdminAccount] | None:
    """The session with this sha256 and its account (expired or disabled alike), or None."""
    query = (
        select(AdminSession, AdminAccount)
        .join(AdminAccount, AdminAccount.id == AdminSession.account_id)
        .where(AdminSession.token_sha256 == token_sha256)
    )
    with database.session() as session:
        row = session.execute(query).first()
        return None if row is None else (row[0], row[1])


def end_session(database: Database, token_sha256: str) -> None:
    with database.session() as session:
        session.execute(delete(AdminSession).where(AdminSession.token_sha256 == token_sha256))
