"""Whether a server could listen on host:port now, probed as the servers bind (`facegate serve`, a gate's badge
claims over http, `facegate doctor` asking for both): every address the host has, SO_REUSEADDR, IPv6 sockets
IPv6 only (as asyncio binds them), each bound and let go again."""

from __future__ import annotations

import errno
import socket

from gate.errors import FaceGateError


class PortInUse(FaceGateError):
    """Another program listens on the port; `where` names it (host:port, [v6 host]:port)."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where} is already in use")
        self.where = where


class HostUnknown(FaceGateError):
    """The host cannot be resolved to an address to listen on."""


def address_text(host: str, port: int) -> str:
    """host:port, an IPv6 host in brackets ([::1]:8080)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port_free(host: str, port: int) -> None:
    """Bind every address of host:port as a server will and let go again; PortInUse when another program holds
    one, HostUnknown when `host` does not resolve, a FaceGateError with the system's reason for anything else."""
    where = address_text(host, port)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise HostUnknown(f"cannot listen on {host}: {error.strerror}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise PortInUse(where) from None
                raise FaceGateError(f"cannot listen on {where}: {error.strerror}") from None
