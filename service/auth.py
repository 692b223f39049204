"""Who is asking: a bearer token (machines) or a session cookie with, for changes, its CSRF header (people); the
role a route needs. Anything else is refused with 401 (unknown) or 403 (known, not allowed)."""

from __future__ import annotations

from fastapi import HTTPException, Request

from service.accounts import Principal, token_principal
from service.parts import ServiceParts
from service.sessions import find_session

SESSION_COOKIE = "facegate_session"
CSRF_COOKIE = "facegate_csrf"  # readable by the page's script, which sends it back as the CSRF header
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def parts_of(request: Request) -> ServiceParts:
    return request.app.state.parts


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorised("Authorization must be 'Bearer <token>'")
    return token.strip()


def principal(request: Request) -> Principal:
    """The caller, or 401. A cookie-authenticated change (POST, DELETE...) must carry the session's CSRF token."""
    database = parts_of(request).database
    token = _bearer(request)
    if token is not None:
        found = token_principal(database, token)
        if found is None:
            raise _unauthorised("unknown or revoked API token")
        return found
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        raise _unauthorised("sign in (POST /api/session) or send an API token (Authorization: Bearer ...)")
    signed_in = find_session(database, session_id)
    if signed_in is None:
        raise _unauthorised("the session has expired or ended: sign in again")
    if request.method not in SAFE_METHODS and not signed_in.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (the csrf_token given at sign-in)")
    return signed_in.principal


def admin(request: Request) -> Principal:
    """The caller, who must have the admin role (a viewer only reads)."""
    caller = principal(request)
    if caller.role != "admin":
        raise HTTPException(403, f"{caller.name} has the {caller.role} role: only an admin may change the roster")
    return caller
