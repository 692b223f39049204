"""X-Forwarded-For believed only from [service] trusted_proxies, and only as far as the proxies go."""

from __future__ import annotations

import pytest

from gate.config import settings_from_dict
from gate.errors import FaceGateError
from service.proxies import forwarded_client, networks

TRUSTED = networks(["10.0.0.5", "10.1.0.0/16", "::1"])


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("192.0.2.1", "203.0.113.9", "192.0.2.1"),  # not a proxy: its header is the client's own say
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the left entry is what the client sent
        ("10.0.0.5", "203.0.113.9, 10.1.2.3", "203.0.113.9"),  # through two proxies
        ("::1", "2001:db8::7", "2001:db8::7"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", "not-an-address", "10.0.0.5"),
        ("10.0.0.5", "10.1.2.3", "10.0.0.5"),  # only proxies: the nearest is the client
    ],
)
def test_forwarded_client(peer: str, header: str, client: str) -> None:
    assert forwarded_client(peer, header, TRUSTED) == client


def test_nothing_is_believed_without_trusted_proxies() -> None:
    assert forwarded_client("127.0.0.1", "203.0.113.9", networks([])) == "127.0.0.1"


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(FaceGateError, match=r"service\.trusted_proxies.*'proxy\.lan' is no IP address"):
        settings_from_dict({"service": {"trusted_proxies": ["10.0.0.0/8", "proxy.lan"]}})
