"""The admin's web page: one static page (service/static) whose script talks to the JSON API with the signed-in
session. The page itself holds no data, so it is served to anyone; every piece of data behind it needs a session
(the API refuses a signed-out visitor, and the page then shows only its sign-in form)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"

# The page loads nothing from elsewhere and runs no inline script; it cannot be framed (clickjacking).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",  # a new release's page and script are fetched again
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


class PageHeaders:
    """Adds PAGE_HEADERS to the page's static files (its script, style and icon)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += [(name.lower().encode(), value.encode()) for name, value in PAGE_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_page(app: FastAPI) -> None:
    """Serve the page at / and its files under /static."""
    app.include_router(router)
    app.mount("/static", PageHeaders(StaticFiles(directory=STATIC)), name="static")
