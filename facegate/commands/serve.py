"""`facegate serve`: the REST API over this site's database, enrolment and model (uvicorn)."""

from __future__ import annotations

import ipaddress
import logging

import typer

from facegate.context import AppContext

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(ctx: typer.Context) -> None:
    """Serve the admin page and the REST API.

    Listens on [service] host:port (default 127.0.0.1:8080): the page at /, the API's own docs at /docs. Sign in
    with an account from `facegate admin add`, or send a token from `facegate token add`."""
    import uvicorn

    from service import create_app
    from service.accounts import list_accounts

    context: AppContext = ctx.obj
    service = context.settings.service
    if not is_loopback(service.host):
        log.warning(
            "[service] host = %s: the API is reachable from the network; put TLS (a reverse proxy) in front of it",
            service.host,
        )
    if not any(account.state == "active" for account in list_accounts(context.database)):
        log.warning("no account can sign in to the page yet: create one with `facegate admin add NAME`")
    context.database.close()  # fail here, in one line, if the database cannot be opened; the app opens its own
    # X-Forwarded-* are believed only from [service] trusted_proxies, by the app itself (service.proxies);
    # uvicorn's own proxy_headers would believe them from 127.0.0.1 by default
    uvicorn.run(
        create_app(context.settings), host=service.host, port=service.port, log_config=None, proxy_headers=False
    )


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("serve")(serve)
