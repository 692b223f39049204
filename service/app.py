"""The FastAPI application of `facegate serve`: routes under /api, OpenAPI docs at /docs, every error as JSON
{"error": "<one line>"}."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from enrollment.people import EnrollmentRefused
from enrollment.roster import PersonNotFound
from gate.config import Settings
from gate.errors import FaceGateError, NotFound
from service import capture, confirm, people, person, records, signin, visitors
from service.limits import BodyLimit
from service.parts import ServiceParts
from service.people import BYTES_PER_MB, outcome_out, refusal_message
from service.proxies import TrustedProxies
from service.throttle import SignInThrottle
from service.web import add_page

log = logging.getLogger(__name__)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _error(status: int, message: object, headers: Mapping[str, str] | None = None, **extra: object) -> JSONResponse:
    return JSONResponse({"error": _one_line(message), **extra}, status_code=status, headers=headers)


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return _error(error.status_code, error.detail, headers=error.headers)


async def _invalid_request(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return _error(422, f"{where}: {first.get('msg', 'invalid')}")


# The status of each kind of user error, the most specific first (the first class the error is an instance of)
STATUS_OF_ERROR: tuple[tuple[type[FaceGateError], int], ...] = (
    (EnrollmentRefused, 422),  # the photos were read and refused: nothing stored
    (NotFound, 404),
    (FaceGateError, 400),
)


def _status_of(error: FaceGateError) -> int:
    return next(status for kind, status in STATUS_OF_ERROR if isinstance(error, kind))


def _in_api_terms(error: FaceGateError) -> str:
    """The error's message without the command-line advice the CLI's messages carry."""
    if isinstance(error, EnrollmentRefused):
        return refusal_message(error)
    if isinstance(error, PersonNotFound):
        return f"no person with employee id {error.employee_id!r}"
    return str(error)


async def _user_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, FaceGateError)
    if isinstance(error, EnrollmentRefused):
        outcomes = [outcome_out(o).model_dump(mode="json") for o in error.outcomes]
        return _error(_status_of(error), _in_api_terms(error), outcomes=outcomes)
    return _error(_status_of(error), _in_api_terms(error))


# Each route sits under one of these, in this order on /docs
TAGS = [
    {"name": "session", "description": "Sign in (a session cookie and its CSRF token), sign out, who is asking."},
    {"name": "people", "description": "Who is enrolled: list, show, enrol from photos, deactivate, remove."},
    {"name": "events", "description": "What the gates decided: access events as JSON pages or CSV, their faces."},
    {"name": "capture", "description": "Enrol a person from a gate's camera: start, follow with a preview, cancel."},
    {"name": "gates", "description": "Each gate's last heartbeat: running, stopped or lost; its camera snapshot."},
    {"name": "model", "description": "The model in use and the threshold the gates decide with."},
    {"name": "visitors", "description": "The door's unknown visitors, grouped: dismiss them or enrol one as a person."},
]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.capture.close()
    app.state.parts.close()


def create_app(settings: Settings) -> FastAPI:
    """The API over the configured database and model; the network loads only when an enrolment needs it."""
    app = FastAPIOffline(  # FastAPI serving its /docs and /redoc assets itself: a site may have no internet
        title="FaceGate",
        summary="People, access events, gates and the model of a FaceGate site.",
        version="1",
        openapi_tags=TAGS,
        lifespan=_lifespan,
    )
    app.state.parts = ServiceParts(settings)
    app.state.throttle = SignInThrottle()
    app.state.hash_slots = signin.hash_slots()
    app.state.capture = capture.CaptureDesk()  # one capture from a gate's camera at a time
    routers = (signin, people, person, records, confirm, visitors, capture)
    for module in routers:
        app.include_router(module.router)
    add_page(app)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(FaceGateError, _user_error)  # every kind: STATUS_OF_ERROR
    # the form fields beside the photos are small: a megabyte on top of the photos' limit
    app.add_middleware(BodyLimit, upload_bytes=int((settings.service.max_upload_mb + 1) * BYTES_PER_MB))
    app.add_middleware(TrustedProxies, trusted=settings.service.trusted_proxies)  # outermost: runs first
    return app
