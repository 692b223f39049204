"""Signing in and out: POST /api/session (name and password) sets the session cookie and returns the CSRF token.
Each attempt is counted by the throttle (service.throttle) before its password is checked, and only a few
password hashes (argon2: deliberately slow and memory-hungry) run at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from service.accounts import MAX_NAME_LENGTH, AdminAccount, Principal, check_password
from service.auth import CSRF_COOKIE, SESSION_COOKIE, changer, parts_of, principal
from service.responses import Caller, SessionStarted, SignedOut, refusals
from service.sessions import end_session, start_session
from service.throttle import SignInThrottle

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/session", tags=["session"])

MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but a megabyte "password" is only load
MAX_CONCURRENT_HASHES = 2  # each argon2 check takes a core and 64 MiB for a few tens of milliseconds
HASH_WAIT_S = 2.0  # an attempt waits this long for a free hash before it is answered 429


class SignIn(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


def hash_slots() -> asyncio.Semaphore:
    """The bound on password checks running at once (one per app: app.state.hash_slots)."""
    return asyncio.Semaphore(MAX_CONCURRENT_HASHES)


def _set_cookies(response: Response, session_id: str, csrf_token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.set_cookie(CSRF_COOKIE, csrf_token, max_age=max_age, samesite="strict", secure=secure, path="/")


def _too_many(message: str, retry_after: str) -> HTTPException:
    return HTTPException(429, f"{message}: try again in {retry_after} s", headers={"Retry-After": retry_after})


async def _checked(request: Request, credentials: SignIn, address: str) -> AdminAccount | None:
    """The account when the password is right; the check waits for one of the few hash slots (429 if none)."""
    throttle: SignInThrottle = request.app.state.throttle
    slots: asyncio.Semaphore = request.app.state.hash_slots
    try:
        async with asyncio.timeout(HASH_WAIT_S):
            await slots.acquire()
    except TimeoutError:
        throttle.not_checked(credentials.name, address)
        raise _too_many("the server is busy checking other sign-ins", "1") from None
    try:
        database = parts_of(request).database
        account = await run_in_threadpool(check_password, database, credentials.name, credentials.password)
    finally:
        slots.release()
    log.info("password checked for %r from %s: %s", credentials.name, address, "right" if account else "refused")
    return account


@router.post("", responses=refusals(401, 413, 422, 429))
async def sign_in(credentials: SignIn, request: Request, response: Response) -> SessionStarted:
    """Sign in with name and password: an HttpOnly session cookie, and the CSRF token for changes. Too many
    attempts at one name from one address wait longer each time (429 with Retry-After)."""
    throttle: SignInThrottle = request.app.state.throttle
    address = request.client.host if request.client else "unknown"
    refusal = throttle.admit(credentials.name, address)
    if refusal is not None:
        raise _too_many(refusal.message, refusal.retry_after)
    account = await _checked(request, credentials, address)
    if account is None:
        raise HTTPException(401, "wrong name or password, or the account is disabled")
    throttle.succeeded(credentials.name, address)
    parts = parts_of(request)
    hours = parts.settings.service.session_hours
    new = await run_in_threadpool(start_session, parts.database, account.id, hours)
    _set_cookies(response, new.session_id, new.csrf_token, int(hours * 3600), request.url.scheme == "https")
    return SessionStarted(name=account.name, role=account.role, csrf_token=new.csrf_token, expires_at=new.expires_at)


@router.get("", responses=refusals(401))
def who_am_i(caller: Annotated[Principal, Depends(principal)]) -> Caller:
    """The caller's name, role and how they are signed in."""
    return Caller(name=caller.name, role=caller.role, kind=caller.kind)


@router.post("/logout", responses=refusals(401, 403, 422))
def sign_out(request: Request, response: Response, caller: Annotated[Principal, Depends(changer)]) -> SignedOut:
    """End this session (the cookie stops working at once, also if copied elsewhere)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if caller.kind == "session" and session_id:
        end_session(parts_of(request).database, session_id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return SignedOut(signed_out=caller.name)
