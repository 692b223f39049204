"""Request bodies limited by what arrives, not by what the headers declare: every byte read from the client is
counted (chunked bodies too), and a body over its route's limit is refused with 413 as soon as it passes it."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SMALL_BODY_BYTES = 8 * 1024  # sign-in and every other JSON route: a name and a password fit many times over
UPLOAD_ROUTES = frozenset({("POST", "/api/people")})  # the enrolment form with its photos


class BodyTooLarge(HTTPException):
    """A request body past its route's limit (raised while the body is read, so nothing more is read)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def _refusal(limit: int, is_upload: bool) -> str:
    if is_upload:
        return f"the request exceeds [service] max_upload_mb ({limit / (1 << 20):.1f} MB with its form fields)"
    return f"the request body exceeds {limit} bytes, the most this route takes"


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; -1 when it is present but not a number, None when absent."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class BodyLimit:
    """Counts the bytes of each request body as they are received: the enrolment upload may have `upload_bytes`,
    every other route SMALL_BODY_BYTES. A body declared (Content-Length) over its limit is refused unread."""

    def __init__(self, app: ASGIApp, upload_bytes: int) -> None:
        self.app, self.upload_bytes = app, upload_bytes

    def limit_for(self, scope: Scope) -> tuple[int, str]:
        """The most bytes a request to this route may send, and the one-line refusal when it sends more."""
        is_upload = (scope["method"], scope["path"].rstrip("/")) in UPLOAD_ROUTES
        limit = self.upload_bytes if is_upload else SMALL_BODY_BYTES
        return limit, _refusal(limit, is_upload)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, refusal = self.limit_for(scope)
        declared = _declared_length(scope)
        if declared is not None and not 0 <= declared <= limit:
            await _refuse(scope, receive, send, refusal)
            return
        response_started = False

        async def send_watched(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _counted(receive, limit, refusal), send_watched)
        except BodyTooLarge as error:  # raised where no exception handler answered it
            if response_started:
                raise
            await _refuse(scope, receive, send, str(error.detail))


def _counted(receive: Receive, limit: int, refusal: str) -> Receive:
    """`receive`, raising BodyTooLarge once the body's bytes so far exceed `limit`."""
    received = 0

    async def receive_counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(refusal)
        return message

    return receive_counted


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    await JSONResponse({"error": message}, status_code=413)(scope, receive, send)
