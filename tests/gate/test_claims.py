"""Card + face claims: the box that holds a badge's claim, the signed-claim check, and its feeds (a real pipe, a
real HTTP server); the `facegate card` commands. No faces here: the gate runs with claims in test_mqtt.py."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from http import HTTPStatus
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facegate.cli import app
from gate.config import CardSettings, settings_from_dict
from gate.door.claim_feeds import HttpClaims, StdinClaims, open_claims
from gate.door.claims import (
    MAX_BODY_BYTES,
    ClaimBox,
    ClaimRefused,
    ClaimVerifier,
    ReaderKey,
    canonical_bytes,
    claim_verifier,
    read_secret,
    write_secret_file,
)
from gate.errors import FaceGateError

GATE = "test-door"
LOBBY = ReaderKey("lobby", b"s" * 43)
THIEF = ReaderKey("lobby", b"t" * 43)  # the right reader id, another secret
CARD = CardSettings(reader_burst=3, reader_per_minute=6.0)  # one claim every 10 s after the first three


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def verifier(wall: Clock | None = None, monotonic: Clock | None = None, max_nonces: int = 10_000) -> ClaimVerifier:
    wall = wall or Clock(time.time())
    return ClaimVerifier(GATE, [LOBBY], CARD, wall, monotonic or Clock(), max_nonces=max_nonces)


def test_a_claim_waits_until_taken_or_expired_and_a_newer_badge_replaces_it() -> None:
    clock = Clock()
    box = ClaimBox(clock)
    first = box.put(" E001\n")
    assert box.current() == first and first.employee_id == "E001"
    clock.now = 3.0
    second = box.put("E002")
    assert box.take(first) is False and box.current() == second  # the newer read is kept
    assert box.expired(timeout_s=10.0) is None
    clock.now = 13.5
    assert box.expired(timeout_s=10.0) == second and box.current() is None


@pytest.mark.parametrize("text", ["", "   ", "x" * 65, "E\x00", "E\u200b001", "../../x", "E\n01"])
def test_a_claimed_id_follows_the_one_employee_id_rule_in_one_line(text: str) -> None:
    box = ClaimBox(Clock())
    with pytest.raises(FaceGateError, match="employee id .* refused") as refused:
        box.put(text)
    assert "\n" not in str(refused.value) and box.current() is None and box.received == 0


def test_a_claimed_id_is_composed_nfc() -> None:
    assert ClaimBox(Clock()).put("Jose\u0301").employee_id == "Jos\u00e9"


def wait_for(box: ClaimBox, count: int) -> None:
    deadline = time.monotonic() + 5
    while box.received < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_stdin_claims_come_line_by_line_unsigned_and_bad_lines_are_skipped() -> None:
    box = ClaimBox(time.monotonic)
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "r") as stream:
        StdinClaims(box, stream)
        os.write(write_end, b"E001\n\n" + b"y" * 80 + b"\nE\xe2\x80\x8b9\nE002\n")
        os.close(write_end)
        wait_for(box, 2)
    assert box.received == 2 and box.current().employee_id == "E002"


def test_a_signed_claim_is_verified_and_its_mac_covers_the_canonical_bytes() -> None:
    body = json.loads(LOBBY.sign(GATE, "E042", now=1_700_000_000, nonce="n" * 16))
    assert body == {**body, "reader": "lobby", "employee_id": "E042", "time": 1_700_000_000, "nonce": "n" * 16}
    assert canonical_bytes(GATE, "lobby", "E042", 1_700_000_000, "n" * 16) == (
        b"facegate-claim-v1\ntest-door\nlobby\n1700000000\nnnnnnnnnnnnnnnnn\nE042"
    )
    assert verifier(Clock(1_700_000_005)).verify(json.dumps(body).encode()) == "E042"


def forged(kind: str) -> bytes:
    """A claim of E001 that must be refused, of the named kind."""
    now = time.time()
    genuine = json.loads(LOBBY.sign(GATE, "E001", now=now))
    if kind == "unsigned":
        return b'{"employee_id": "E001"}'
    if kind == "wrong secret":
        return THIEF.sign(GATE, "E001", now=now)
    if kind == "unknown reader":
        return ReaderKey("side-door", LOBBY.secret).sign(GATE, "E001", now=now)
    if kind == "altered id":
        return json.dumps({**genuine, "employee_id": "E002"}).encode()
    if kind == "another gate":
        return LOBBY.sign("back-door", "E001", now=now)
    if kind == "stale":
        return LOBBY.sign(GATE, "E001", now=now - 31)
    if kind == "from the future":
        return LOBBY.sign(GATE, "E001", now=now + 31)
    if kind == "bare id":
        return b"E001"
    if kind == "oversized":  # MQTT has no Content-Length check of its own: the parser bounds every transport
        return json.dumps({**genuine, "padding": "x" * MAX_BODY_BYTES}).encode()
    return json.dumps({**genuine, "time": str(genuine["time"])}).encode()  # "bad time"


REFUSALS = {
    "unsigned": (HTTPStatus.UNAUTHORIZED, "unsigned"),
    "wrong secret": (HTTPStatus.FORBIDDEN, "bad_mac"),
    "unknown reader": (HTTPStatus.FORBIDDEN, "unknown_reader"),
    "altered id": (HTTPStatus.FORBIDDEN, "bad_mac"),
    "another gate": (HTTPStatus.FORBIDDEN, "bad_mac"),
    "stale": (HTTPStatus.FORBIDDEN, "stale"),
    "from the future": (HTTPStatus.FORBIDDEN, "stale"),
    "bare id": (HTTPStatus.BAD_REQUEST, "malformed"),
    "bad time": (HTTPStatus.BAD_REQUEST, "malformed"),
    "oversized": (HTTPStatus.BAD_REQUEST, "malformed"),
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_a_forged_claim_is_refused_in_one_line_and_never_reaches_the_box(kind: str) -> None:
    check, box = verifier(), ClaimBox(Clock())
    with pytest.raises(ClaimRefused) as refused:
        check.admit(forged(kind), box, "test")
    assert (refused.value.status, refused.value.reason) == REFUSALS[kind]
    assert "\n" not in str(refused.value) and box.refused == {REFUSALS[kind][1]: 1}
    assert box.current() is None and box.received == 0


def test_a_replayed_claim_is_refused_while_it_would_be_fresh_and_stale_after() -> None:
    wall = Clock(1_700_000_000)
    check = verifier(wall)
    claim = LOBBY.sign(GATE, "E001", now=wall.now)
    assert check.verify(claim) == "E001"
    wall.now += 29
    with pytest.raises(ClaimRefused, match="nonce used already"):
        check.verify(claim)
    wall.now += 2  # the nonce is forgotten only once the claim is stale anyway
    with pytest.raises(ClaimRefused, match="timestamp -31 s"):
        check.verify(claim)


def test_the_nonces_kept_are_bounded_and_age_out() -> None:
    wall = Clock(1_700_000_000)
    check = verifier(wall, monotonic=wall, max_nonces=3)
    for _ in range(3):
        check.verify(LOBBY.sign(GATE, "E001", now=wall.now))
        wall.now += 10  # under the reader's rate: one claim every 10 s
    with pytest.raises(ClaimRefused, match="3 claims within 60 s") as refused:
        check.verify(LOBBY.sign(GATE, "E001", now=wall.now))
    assert refused.value.status == HTTPStatus.TOO_MANY_REQUESTS
    wall.now += 30  # the first ones are stale now: their nonces make room
    assert check.verify(LOBBY.sign(GATE, "E001", now=wall.now)) == "E001"


def test_a_flooding_reader_is_held_to_its_rate() -> None:
    monotonic = Clock()
    check = verifier(monotonic=monotonic)
    assert [check.verify(LOBBY.sign(GATE, f"E{i}")) for i in range(3)] == ["E0", "E1", "E2"]  # the burst
    with pytest.raises(ClaimRefused, match="faster than its rate") as refused:
        check.verify(LOBBY.sign(GATE, "E9"))
    assert refused.value.status == HTTPStatus.TOO_MANY_REQUESTS
    monotonic.now += 10.0  # 6 a minute: one more after 10 s
    assert check.verify(LOBBY.sign(GATE, "E4")) == "E4"


SHELL_READER = Path(__file__).resolve().parents[2] / "recipes" / "badge-reader" / "claim.sh"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the shell reader needs openssl")
def test_the_shell_reader_recipe_signs_claims_the_gate_takes(tmp_path: Path) -> None:
    secret = tmp_path / "lobby.secret"
    write_secret_file(secret)
    environment = {**os.environ, "FACEGATE_GATE_ID": GATE, "FACEGATE_READER": "lobby"}
    printed = subprocess.run(
        ["sh", str(SHELL_READER), "E042"],
        env={**environment, "FACEGATE_READER_SECRET_FILE": str(secret)},
        capture_output=True,
        check=True,
    ).stdout
    key = ReaderKey("lobby", secret.read_text().strip().encode())
    assert ClaimVerifier(GATE, [key], CARD).verify(printed) == "E042"
    with pytest.raises(ClaimRefused, match="wrong mac"):
        ClaimVerifier(GATE, [LOBBY], CARD).verify(printed)


def post(address: str, body: bytes, path: str = "/claim") -> tuple[int, dict]:
    request = urllib.request.Request(f"http://{address}{path}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def http_feed() -> tuple[HttpClaims, ClaimBox]:
    box = ClaimBox(time.monotonic)
    feed = HttpClaims(box, verifier(), "127.0.0.1:0")
    yield feed, box
    feed.close()


def test_http_claims_take_the_readers_signed_claim_and_refuse_forgeries(http_feed) -> None:
    feed, box = http_feed
    genuine = LOBBY.sign(GATE, "E007")
    assert post(feed.address, genuine) == (202, {"claimed": "E007"})
    for kind in ("unsigned", "wrong secret", "stale", "altered id"):
        status, answer = post(feed.address, forged(kind))
        assert status == REFUSALS[kind][0] and answer["error"]
    status, answer = post(feed.address, genuine)
    assert status == 403 and "replay" in answer["error"]
    assert post(feed.address, b"x" * (MAX_BODY_BYTES + 1))[0] == 400
    assert post(feed.address, genuine, path="/door")[0] == 404
    assert box.received == 1 and box.current().employee_id == "E007"


def test_a_flood_of_bad_claims_does_not_evict_the_waiting_real_one(http_feed) -> None:
    feed, box = http_feed
    assert post(feed.address, LOBBY.sign(GATE, "E007"))[0] == 202
    started = time.monotonic()
    statuses = {post(feed.address, THIEF.sign(GATE, f"X{i}"))[0] for i in range(100)}
    flood_s = time.monotonic() - started
    assert statuses == {403} and box.received == 1 and box.current().employee_id == "E007"
    assert box.refused == {"bad_mac": 100}
    assert flood_s < 5, f"100 refused claims took {flood_s:.1f} s"


def test_http_claims_refuse_a_chunked_body() -> None:
    box = ClaimBox(time.monotonic)
    feed = HttpClaims(box, verifier(), "127.0.0.1:0")
    try:
        host, port = feed.address.split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            body = LOBBY.sign(GATE, "E001")
            chunk = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
            connection.sendall(b"POST /claim HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
            assert connection.recv(4096).startswith(b"HTTP/1.0 400")
        assert box.received == 0
    finally:
        feed.close()


def test_http_claims_on_a_port_in_use_is_one_line(http_feed) -> None:
    feed, box = http_feed
    with pytest.raises(FaceGateError, match="card.listen = .*cannot listen there"):
        HttpClaims(box, verifier(), feed.address)


READER = {"id": "lobby", "secret_env": "FACEGATE_TEST_READER"}


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ({"claims": "http"}, r"claims = 'http' needs \[\[card.readers\]\]"),
        ({"claims": "mqtt"}, r"claims = 'mqtt' needs \[\[card.readers\]\]"),
        ({"claims": "http", "readers": [READER], "listen": "0.0.0.0:8765"}, "reachable from the network"),
        ({"claims": "http", "readers": [READER], "listen": "gate.lan:8765"}, "reachable from the network"),
        ({"readers": [{"id": "lobby"}]}, "needs secret_file or secret_env"),
        ({"readers": [{**READER, "secret_file": "s"}]}, "needs secret_file or secret_env"),
        ({"readers": [READER, READER]}, "reader id 'lobby' is given twice"),
        ({"readers": [{**READER, "id": "a b"}]}, "should match pattern"),
        ({"readers": [{**READER, "secret": "x" * 43}]}, "unknown key"),  # never the secret itself
    ],
)
def test_card_config_refuses_unsigned_remote_or_ambiguous_readers(card: dict, message: str) -> None:
    with pytest.raises(FaceGateError, match=message) as refused:
        settings_from_dict({"card": card})
    assert str(refused.value).startswith("config: card") and "\n" not in str(refused.value)


def test_a_remote_listener_needs_allow_remote_and_is_warned_about(monkeypatch, caplog) -> None:
    monkeypatch.setenv("FACEGATE_TEST_READER", "r" * 43)
    card = {"claims": "http", "readers": [READER], "listen": "0.0.0.0:0", "allow_remote": True}
    settings = settings_from_dict({"card": card})
    with caplog.at_level(logging.WARNING, logger="gate.door.claims"):
        feed = open_claims(settings, ClaimBox(time.monotonic))
    feed.close()
    assert any("reachable from the network" in r.getMessage() for r in caplog.records)
    with pytest.raises(FaceGateError, match="reachable from the network"):
        HttpClaims(ClaimBox(time.monotonic), verifier(), "0.0.0.0:0")  # built directly: refused all the same


def test_reader_secrets_come_from_a_file_or_the_environment_and_are_checked(tmp_path, monkeypatch, caplog) -> None:
    path = tmp_path / "keys" / "lobby.secret"
    write_secret_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and len(path.read_text().strip()) == 43
    with pytest.raises(FaceGateError, match="never overwritten"):
        write_secret_file(path)
    readers = [{"id": "lobby", "secret_file": str(path)}, READER | {"id": "side"}]
    settings = settings_from_dict({"card": {"claims": "mqtt", "readers": readers}})
    assert read_secret(settings, "lobby").secret == path.read_text().strip().encode()
    monkeypatch.delenv("FACEGATE_TEST_READER", raising=False)
    with pytest.raises(FaceGateError, match="secret_env FACEGATE_TEST_READER: the environment variable is not set"):
        claim_verifier(settings)  # the gate would not start
    monkeypatch.setenv("FACEGATE_TEST_READER", "short")
    with pytest.raises(FaceGateError, match="at least 32 characters"):
        read_secret(settings, "side")
    with pytest.raises(FaceGateError, match=r"no reader 'front' \(configured: lobby, side\)"):
        read_secret(settings, "front")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gate.store.encryption"):
        read_secret(settings, "lobby")
    assert any("could be read by other users" in r.getMessage() for r in caplog.records)
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # made owner-only again, as every file holding a secret
    assert "s" * 10 not in repr(LOBBY)  # the secret is never shown


def cli(config: Path, *args: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(app, ["--config", str(config), "card", *args])
    return outcome.exit_code, outcome.output


def test_facegate_card_makes_a_secret_and_sends_a_signed_claim_the_gate_takes(tmp_path) -> None:
    secret_path, config = tmp_path / "lobby.secret", tmp_path / "config.toml"
    config.write_text(f'[camera]\ngate_id = "{GATE}"\n')
    code, output = cli(config, "secret", str(secret_path), "--reader", "lobby")
    assert code == 0 and f'secret_file = "{secret_path}"' in output, output
    reader_lines = [line for line in output.splitlines() if line.startswith(("[[card.readers]]", "id =", "secret_"))]
    card = {"claims": "http", "readers": [{"id": "lobby", "secret_file": str(secret_path)}]}
    box = ClaimBox(time.monotonic)
    feed = HttpClaims(
        box, claim_verifier(settings_from_dict({"camera": {"gate_id": GATE}, "card": card})), "127.0.0.1:0"
    )
    try:
        header = [f'[camera]\ngate_id = "{GATE}"\n[card]\nclaims = "http"\nlisten = "{feed.address}"']
        config.write_text("\n".join(header + reader_lines) + "\n")  # the lines `card secret` printed
        code, output = cli(config, "claim", "E042", "--reader", "lobby")
        assert (code, json.loads(output)) == (0, {"claimed": "E042"}), output
        assert box.current().employee_id == "E042"
        code, output = cli(config, "claim", "E\u200b042", "--reader", "lobby")
        assert code != 0 and box.received == 1
        code, output = cli(config, "claim", "E043", "--reader", "lobby", "--print")
        assert code == 0 and json.loads(output)["employee_id"] == "E043" and box.received == 1
    finally:
        feed.close()
