"""Who is asking: a bearer token (machines) or a session cookie with, for changes, its CSRF header (people); the
role a route needs. Anything else is refused with 401 (unknown) or 403 (known, not allowed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from service.accounts import Principal, token_principal
from service.parts import ServiceParts
from service.sessions import find_session

SESSION_COOKIE = "facegate_session"
CSRF_COOKIE = "facegate_csrf"  # readable by the page's script, which sends it back as the CSRF header
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# The two ways in, as /docs shows them (its Authorize button): either one will do. Neither refuses by itself
# (auto_error=False): `principal` answers a caller who sent neither in the API's own terms.
TOKEN = HTTPBearer(
    scheme_name="token",
    description="an API token (`facegate token add`), sent as Authorization: Bearer <token>",
    auto_error=False,
)
SESSION = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="session",
    description=f"the cookie POST /api/session sets; a change (POST, DELETE) sent with it also needs the {CSRF_HEADER} "
    "header, the csrf_token of the sign-in",
    auto_error=False,
)


def parts_of(request: Request) -> ServiceParts:
    return request.app.state.parts


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _bearer(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The bearer token, None when no Authorization header came, or 401 for any other kind of Authorization."""
    if credentials is None and "Authorization" in request.headers:
        raise _unauthorised("Authorization must be 'Bearer <token>'")
    return credentials.credentials.strip() if credentials is not None else None


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(TOKEN)],
    session_id: Annotated[str | None, Security(SESSION)],
) -> Principal:
    """The caller, or 401. A cookie-authenticated change (POST, DELETE...) must carry the session's CSRF token."""
    database = parts_of(request).database
    token = _bearer(request, credentials)
    if token is not None:
        found = token_principal(database, token)
        if found is None:
            raise _unauthorised("unknown or revoked API token")
        return found
    if not session_id:
        raise _unauthorised("sign in (POST /api/session) or send an API token (Authorization: Bearer ...)")
    signed_in = find_session(database, session_id)
    if signed_in is None:
        raise _unauthorised("the session has expired or ended: sign in again")
    if request.method not in SAFE_METHODS and not signed_in.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (the csrf_token given at sign-in)")
    return signed_in.principal


CsrfHeader = Annotated[
    str | None,
    Header(
        alias=CSRF_HEADER, description="with the session cookie: the csrf_token of the sign-in (a token needs none)"
    ),
]


def changer(caller: Annotated[Principal, Depends(principal)], _csrf_token: CsrfHeader = None) -> Principal:
    """The caller of a change. The CSRF header is declared here so that /docs offers a field for it; `principal`
    checks it, for every change whatever its route declares."""
    return caller


def admin(caller: Annotated[Principal, Depends(changer)]) -> Principal:
    """The caller of a change, who must have the admin role (a viewer only reads)."""
    if caller.role != "admin":
        raise HTTPException(403, f"{caller.name} has the {caller.role} role: only an admin may change the roster")
    return caller
