"""Signing in and out: POST /api/session (name and password) sets the session cookie and returns the CSRF token;
failed attempts are limited per name and per client address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from service.accounts import MAX_NAME_LENGTH, Principal, check_password
from service.auth import CSRF_COOKIE, SESSION_COOKIE, parts_of, principal
from service.sessions import end_session, start_session

router = APIRouter(prefix="/api/session", tags=["session"])

MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but a megabyte "password" is only load


class SignIn(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class SessionOut(BaseModel):
    name: str
    role: str
    csrf_token: str = Field(description="send it back as the X-CSRF-Token header of every change")
    expires_at: str


def _set_cookies(response: Response, session_id: str, csrf_token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.set_cookie(CSRF_COOKIE, csrf_token, max_age=max_age, samesite="strict", secure=secure, path="/")


@router.post("", response_model=SessionOut)
def sign_in(credentials: SignIn, request: Request, response: Response) -> SessionOut:
    """Sign in with name and password: an HttpOnly session cookie, and the CSRF token for changes."""
    parts = parts_of(request)
    limiter = request.app.state.limiter
    address = request.client.host if request.client else "unknown"
    if limiter.blocked(credentials.name, address):
        raise HTTPException(429, "too many failed sign-ins: wait a few minutes", headers={"Retry-After": "300"})
    account = check_password(parts.database, credentials.name, credentials.password)
    if account is None:
        limiter.failed(credentials.name, address)
        raise HTTPException(401, "wrong name or password, or the account is disabled")
    hours = parts.settings.service.session_hours
    new = start_session(parts.database, account.id, hours)
    _set_cookies(response, new.session_id, new.csrf_token, int(hours * 3600), request.url.scheme == "https")
    return SessionOut(
        name=account.name, role=account.role, csrf_token=new.csrf_token, expires_at=new.expires_at.isoformat()
    )


@router.get("")
def who_am_i(caller: Annotated[Principal, Depends(principal)]) -> dict:
    """The caller's name, role and how they are signed in."""
    return {"name": caller.name, "role": caller.role, "kind": caller.kind}


@router.post("/logout")
def sign_out(request: Request, response: Response, caller: Annotated[Principal, Depends(principal)]) -> dict:
    """End this session (the cookie stops working at once, also if copied elsewhere)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if caller.kind == "session" and session_id:
        end_session(parts_of(request).database, session_id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return {"signed_out": caller.name}
