"""Tests of the one port probe `facegate serve` and `facegate doctor` share: real sockets held and let go, an
IPv6 wildcard probed as asyncio binds it (IPv6 only), so the two commands cannot disagree."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gate.runtime.doctor import check_port
from gate.runtime.ports import HostUnknown, PortInUse, address_text, check_port_free


@contextmanager
def held_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port another program listens on, for the block's length."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as holder:
        holder.bind((host, 0))
        holder.listen()
        yield holder.getsockname()[1]


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_check_port_free_a_held_port_is_in_use_until_let_go() -> None:
    with held_port() as port:
        with pytest.raises(PortInUse) as taken:
            check_port_free("127.0.0.1", port)
        assert taken.value.where == f"127.0.0.1:{port}" and str(taken.value) == f"127.0.0.1:{port} is already in use"
        assert check_port("facegate serve", "127.0.0.1", port).line().startswith(f"FAIL  port      127.0.0.1:{port} ")
    check_port_free("127.0.0.1", port)
    assert check_port("facegate serve", "127.0.0.1", port).status == "ok"


def test_check_port_free_unknown_host_error() -> None:
    with pytest.raises(HostUnknown, match="cannot listen on no-such-host.invalid: "):
        check_port_free("no-such-host.invalid", 8080)
    assert check_port("facegate serve", "no-such-host.invalid", 8080).failed


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 on this machine")
def test_ipv6_wildcard_is_probed_ipv6_only_as_the_server_binds_it() -> None:
    """An IPv4 port held does not keep `facegate serve` off [::] (asyncio binds IPv6 only): doctor agrees."""
    with held_port("127.0.0.1") as port:
        check_port_free("::", port)
        assert check_port("facegate serve", "::", port).detail == f"[::]:{port} (facegate serve) free"
    with held_port("::1") as port, pytest.raises(PortInUse):
        check_port_free("::1", port)


def test_address_text_brackets_an_ipv6_host() -> None:
    assert (address_text("::1", 80), address_text("127.0.0.1", 80)) == ("[::1]:80", "127.0.0.1:80")
