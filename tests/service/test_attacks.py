"""A real `facegate serve` attacked as the adversarial test did: a 300 MB chunked body to the sign-in (answered 413
while the server's memory stays put), a burst of 100 parallel wrong passwords for one name under forged
X-Forwarded-For headers (at most 5 checked, proved by the server's own log), and the real admin signing in through
the trusted proxy afterwards."""

from __future__ import annotations

import asyncio
import re
import select
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from served import rss_kb, served_site
from service_site import PASSWORD

ATTACK_BYTES = 300 * 2**20
CHUNK_BYTES = 2**20
PROXY = "127.0.0.2"  # a second loopback address: the configured reverse proxy
MAX_RSS_GROWTH_KB = 50 * 1024


def _chunked_post(port: int, path: str, total_bytes: int) -> tuple[bytes, int]:
    """POST `total_bytes` of JSON-ish body with Transfer-Encoding: chunked (no Content-Length), going on after an
    early answer as an attacker would, until sent or the server stops taking it; (the answer, bytes sent)."""
    answer, sent = b"", 0
    piece = b"%x\r\n" % CHUNK_BYTES + b" " * CHUNK_BYTES + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sock.sendall(b'6\r\n{"name\r\n')
        try:
            while sent < total_bytes:
                if select.select([sock], [], [], 0)[0]:
                    answer += sock.recv(65536)
                sock.sendall(piece)
                sent += CHUNK_BYTES
            sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server closed the connection (reset, broken pipe) or stopped reading (timeout)
            pass
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            try:
                more = sock.recv(65536)
            except OSError:
                break
            if not more:
                break
            answer += more
    return answer, sent


def _watch_peak(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kb(pid))
        time.sleep(0.02)


@pytest.mark.slow
def test_a_300_mb_chunked_sign_in_is_413_and_the_server_does_not_grow(tmp_path: Path, untrained_card: Path) -> None:
    with served_site(tmp_path, untrained_card) as (server, _token):
        port, pid = int(server.url.rsplit(":", 1)[1]), server.process.pid
        before = rss_kb(pid)
        peak, stop = [before], threading.Event()
        watcher = threading.Thread(target=_watch_peak, args=(pid, stop, peak))
        watcher.start()
        try:
            results = [None] * 3
            attackers = [
                threading.Thread(
                    target=lambda i=i: results.__setitem__(i, _chunked_post(port, "/api/session", ATTACK_BYTES))
                )
                for i in range(3)
            ]
            for attacker in attackers:
                attacker.start()
            for attacker in attackers:
                attacker.join()
        finally:
            stop.set()
            watcher.join()
        for answer, _sent in results:
            assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
            assert b'"error":"the request body exceeds 8192 bytes' in answer
        print(f"RSS {before} kB before, peak {peak[0]} kB; sent {[sent >> 20 for _, sent in results]} MB")
        assert peak[0] - before < MAX_RSS_GROWTH_KB


async def _burst(url: str, name: str, tries: int) -> list[httpx.Response]:
    """`tries` wrong passwords for `name` at once, each under a different forged X-Forwarded-For."""
    limits = httpx.Limits(max_connections=tries)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/api/session",
                    json={"name": name, "password": f"guess number {i}"},
                    headers={"X-Forwarded-For": f"203.0.113.{i % 250 + 1}"},
                )
                for i in range(tries)
            )
        )


def _sign_in(url: str, source: str, forwarded_for: str | None = None) -> httpx.Response:
    """The real admin's sign-in, from the loopback address `source` (the proxy: with X-Forwarded-For)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
        return client.post("/api/session", json={"name": "admin", "password": PASSWORD}, headers=headers)


@pytest.mark.slow
def test_a_burst_of_wrong_passwords_checks_at_most_five_and_the_admin_still_signs_in(
    tmp_path: Path, untrained_card: Path
) -> None:
    with served_site(tmp_path, untrained_card, trusted_proxies=(PROXY,)) as (server, _token):
        started = time.perf_counter()
        answers = asyncio.run(_burst(server.url, "admin", 100))
        burst_s = time.perf_counter() - started
        statuses = sorted(response.status_code for response in answers)
        assert set(statuses) <= {401, 429} and statuses.count(401) <= 5, statuses
        assert all("error" in response.json() for response in answers)
        # the forged headers were not believed: the attacker's own address is throttled for this name
        assert _sign_in(server.url, "127.0.0.1", "198.51.100.9").status_code == 429
        # through the trusted proxy, the header is believed: the admin elsewhere signs in...
        assert _sign_in(server.url, PROXY, "198.51.100.7").status_code == 200
        # ...and a client the proxy names as the attacker's address is throttled like it
        assert _sign_in(server.url, PROXY, "127.0.0.1").status_code == 429
    checks = re.findall(r"password checked for 'admin' from (\S+): (\w+)", server.output)
    print(f"burst of 100 in {burst_s:.2f} s: {statuses.count(401)} x 401, {statuses.count(429)} x 429; {checks}")
    assert checks.count(("127.0.0.1", "refused")) == statuses.count(401) <= 5
    assert checks[-1] == ("198.51.100.7", "right") and len(checks) == statuses.count(401) + 1
