"""`facegate serve`: the REST API over this site's database, enrolment and model (uvicorn)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Annotated

import typer

from facegate.context import AppContext
from gate.config import ServiceSettings, validated
from gate.errors import FaceGateError
from gate.runtime.ports import HostUnknown, PortInUse, check_port_free

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_busy_port(host: str, port: int) -> None:
    """The port free, or one line saying what to change (rather than uvicorn's error and exit status 3)."""
    try:
        check_port_free(host, port)
    except PortInUse as taken:
        raise FaceGateError(f"{taken.where} is already in use; pick another with --port or [service] port") from None
    except HostUnknown as unknown:
        raise FaceGateError(f"{unknown}; check --host or [service] host") from None


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen on this address (default: [service] host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Listen on this port (default: [service] port).")
    ] = None,
) -> None:
    """Serve the admin page and the REST API.

    Listens on [service] host:port (default 127.0.0.1:8080), or --host/--port: the page at /, the API's own docs
    at /docs. Sign in with an account from `facegate admin add`, or send a token from `facegate token add`."""
    import uvicorn

    from service import create_app
    from service.accounts import list_accounts

    context: AppContext = ctx.obj
    overrides = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    configured = context.settings.service.model_dump()
    service = validated(ServiceSettings, {**configured, **overrides}, "serve", {"host": "--host", "port": "--port"})
    context.require_config()
    refuse_busy_port(service.host, service.port)  # before the database: a port taken is the one line printed
    if not is_loopback(service.host):
        log.warning(
            "%s: the API is reachable from the network; put TLS (a reverse proxy) in front of it",
            f"--host {host}" if host else f"[service] host = {service.host}",
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
