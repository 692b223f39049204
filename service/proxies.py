"""Who the client is behind a reverse proxy: X-Forwarded-For and X-Forwarded-Proto are believed only from the
proxies named in [service] trusted_proxies; from anyone else they are ignored, so a client cannot choose the
address its sign-in attempts are counted against."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """[service] trusted_proxies as networks (validated by gate.config already)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_in(address: str, trusted: Sequence[Network]) -> bool | None:
    """Whether `address` belongs to a trusted proxy; None when it is no IP address."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    return any(ip in network for network in trusted)


def _header(scope: Scope, name: bytes) -> str:
    """Every value of one request header, joined by commas (as HTTP joins repeated headers)."""
    return ",".join(value.decode("latin-1") for key, value in scope["headers"] if key.lower() == name)


def forwarded_client(peer: str, forwarded_for: str, trusted: Sequence[Network]) -> str:
    """The client's address: `peer` itself unless it is a trusted proxy; then the right-most X-Forwarded-For
    entry that is not a trusted proxy (entries further left were written by whoever the proxy heard from)."""
    if not trusted or not _is_in(peer, trusted):
        return peer
    for entry in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        trusted_entry = _is_in(entry, trusted)
        if trusted_entry is None:
            log.debug("X-Forwarded-For entry %r from %s is no IP address: the proxy is the client", entry, peer)
            return peer
        if not trusted_entry:
            return entry.strip("[]")
    return peer


class TrustedProxies:
    """Sets the request's client address (and scheme) from a trusted proxy's X-Forwarded-* headers."""

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app, self.trusted = app, networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope["client"][0] if scope["type"] == "http" and scope.get("client") else None
        if peer is not None and _is_in(peer, self.trusted):
            scope = {**scope, "client": (forwarded_client(peer, _header(scope, b"x-forwarded-for"), self.trusted), 0)}
            scheme = _header(scope, b"x-forwarded-proto").split(",")[-1].strip().lower()
            if scheme in ("http", "https"):
                scope["scheme"] = scheme
        await self.app(scope, receive, send)
