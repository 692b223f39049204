"""Tests of the HTTP relay against a real local HTTP server that answers like a Shelly (Gen1 /relay, Gen2+ RPC):
the request's path, query and login (basic, digest SHA-256) checked; the relay's answers (on, off, 500, no JSON,
too long, stalled, dripped, nobody listening) turned into the door's outcome, never raised."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gate.config import ActuatorSettings, settings_from_dict
from gate.door.actuators import build_actuator
from gate.door.http_relay import HttpRelayActuator
from gate.door.requests import DoorOutcome, DoorRequest
from gate.errors import FaceGateError

REQUEST = DoorRequest(gate_id="front", person_id="e7", name="Ada Lovelace", score=0.8123)
PASSWORD = "correct horse"
REALM = "shellyplus1-a8032ab12345"


def _digest_ok(header: str, method: str, algorithm: str) -> bool:
    """The relay's side of digest SHA-256 or MD5 (qop auth), written out here from RFC 7616."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header.removeprefix("Digest ")))

    def sha(text: str) -> str:
        return hashlib.new(algorithm.replace("-", "").lower(), text.encode()).hexdigest()

    ha1, ha2 = sha(f"admin:{REALM}:{PASSWORD}"), sha(f"{method}:{fields['uri']}")
    expected = sha(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:{fields['qop']}:{ha2}")
    named = fields["username"] == "admin" and fields["nonce"] == "5f1e8c" and fields["algorithm"] == algorithm
    return named and fields["response"] == expected


class Shelly(BaseHTTPRequestHandler):
    """A relay's HTTP API: records each request (path, query, Authorization) and answers as `mode` says."""

    requests: list[tuple[str, dict[str, list[str]], str]] = []
    # on, off, error, text, huge, stall, drip, redirect; slow_challenge: a 401 whose body never ends; late: the
    # headers just before the deadline, then the body stalls
    mode = "on"
    login = ""  # "", basic or digest
    algorithm = "SHA-256"  # digest's: SHA-256 (Gen2+) or MD5

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        authorization = self.headers.get("Authorization", "")
        type(self).requests.append((parts.path, parse_qs(parts.query), authorization))
        if not self._logged_in(authorization):
            return
        if self.mode in ("stall", "late"):
            time.sleep(1.5 if self.mode == "stall" else 0.4)
        if self.mode == "redirect":  # to the same relay: a gate that followed it would switch the relay on
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rpc = parts.path.startswith("/rpc/")
        answers = {
            "off": {"ison": False, "has_timer": False},
            "huge": {"ison": True, "padding": "x" * 100_000},
        }
        on = {"was_on": False} if rpc else {"ison": True, "has_timer": True, "timer_duration": 3}
        body = b"<html>busy</html>" if self.mode == "text" else json.dumps(answers.get(self.mode, on)).encode()
        self.send_response(500 if self.mode == "error" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the gate stops reading a huge answer
            if self.mode == "late":
                self.wfile.write(body[:1])
                self.wfile.flush()
                time.sleep(2.0)
            elif self.mode == "drip":
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(body)

    def _logged_in(self, authorization: str) -> bool:
        basic = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        if not self.login or (self.login == "basic" and authorization == basic):
            return True
        if (
            self.login == "digest"
            and authorization.startswith("Digest ")
            and _digest_ok(authorization, "GET", self.algorithm)
        ):
            return True
        self.send_response(401)
        if self.login == "basic":
            self.send_header("WWW-Authenticate", 'Basic realm="shelly1-34945"')
        else:
            self.send_header(
                "WWW-Authenticate", f'Digest qop="auth", realm="{REALM}", nonce="5f1e8c", algorithm={self.algorithm}'
            )
        if self.mode == "slow_challenge":
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"<html>login")
            self.wfile.flush()
            time.sleep(1.5)
            return False
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def shelly() -> Iterator[str]:
    Shelly.requests, Shelly.mode, Shelly.login, Shelly.algorithm = [], "on", "", "SHA-256"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Shelly)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def relay(url: str, **values: object) -> HttpRelayActuator:
    actuator = build_actuator(ActuatorSettings(kind="http_relay", url=url, **values))  # type: ignore[arg-type]
    assert isinstance(actuator, HttpRelayActuator)
    return actuator


def test_http_relay_gen1_switches_on_with_its_own_timer(shelly: str) -> None:
    assert relay(shelly + "/", relay=1, open_s=4).open(REQUEST) is DoorOutcome.OPENED
    assert Shelly.requests == [("/relay/1", {"turn": ["on"], "timer": ["4"]}, "")]


def test_http_relay_rpc_switch_set_with_toggle_after(shelly: str) -> None:
    assert relay(shelly, api="shelly_rpc", open_s=2.5).open(REQUEST) is DoorOutcome.OPENED
    assert Shelly.requests == [("/rpc/Switch.Set", {"id": ["0"], "on": ["true"], "toggle_after": ["2.5"]}, "")]


def test_http_relay_basic_login_from_a_private_file(shelly: str, tmp_path: Path) -> None:
    Shelly.login = "basic"
    secret = tmp_path / "relay-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o644)
    assert relay(shelly, password_file=str(secret)).open(REQUEST) is DoorOutcome.OPENED
    assert [auth.split(" ")[0] for _, _, auth in Shelly.requests] == ["", "Basic"]  # answered the challenge
    assert secret.stat().st_mode & 0o777 == 0o600  # narrowed like every secret's file


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_http_relay_digest_login_from_the_environment(
    shelly: str, algorithm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Shelly.login, Shelly.algorithm = "digest", algorithm
    monkeypatch.setenv("RELAY_PASSWORD", PASSWORD)
    assert relay(shelly, api="shelly_rpc", password_env="RELAY_PASSWORD").open(REQUEST) is DoorOutcome.OPENED
    assert Shelly.requests[-1][2].startswith('Digest username="admin"')


def test_http_relay_never_waits_for_a_challenge_body(shelly: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Shelly.login, Shelly.mode = "digest", "slow_challenge"  # the 401 is closed unread, its login answered at once
    monkeypatch.setenv("RELAY_PASSWORD", PASSWORD)
    assert relay(shelly, password_env="RELAY_PASSWORD", timeout_s=0.5).open(REQUEST) is DoorOutcome.OPENED
    assert len(Shelly.requests) == 2


def test_http_relay_wrong_password_reports_failed(
    shelly: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    Shelly.login = "digest"
    monkeypatch.setenv("RELAY_PASSWORD", "wrong")
    assert relay(shelly, password_env="RELAY_PASSWORD").open(REQUEST) is DoorOutcome.FAILED
    assert len(Shelly.requests) == 2  # one challenge answered, no retrying loop
    assert "refused the login (401): check username and the password" in caplog.text


def test_http_relay_digest_it_cannot_answer_reports_failed(
    shelly: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    Shelly.login, Shelly.algorithm = "digest", "SHA3-256"  # not in httpx's digest: logged and failed, never raised
    monkeypatch.setenv("RELAY_PASSWORD", PASSWORD)
    assert relay(shelly, password_env="RELAY_PASSWORD").open(REQUEST) is DoorOutcome.FAILED
    assert len(Shelly.requests) == 1
    assert "asks for a digest login this gate cannot answer" in caplog.text


def test_http_relay_login_needed_but_none_configured_reports_failed(shelly: str) -> None:
    Shelly.login = "basic"
    assert relay(shelly).open(REQUEST) is DoorOutcome.FAILED


@pytest.mark.parametrize("mode", ["off", "error", "text", "huge"])
def test_http_relay_answer_not_saying_on_reports_failed(
    shelly: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    Shelly.mode = mode
    assert relay(shelly).open(REQUEST) is DoorOutcome.FAILED
    assert "relay http://127.0.0.1" in caplog.text


@pytest.mark.parametrize("mode", ["stall", "drip"])
def test_http_relay_slow_answer_reports_timed_out(shelly: str, mode: str) -> None:
    Shelly.mode = mode  # drip: every byte within the socket's timeout, the whole answer past the deadline
    started = time.monotonic()
    assert relay(shelly, timeout_s=0.3).open(REQUEST) is DoorOutcome.TIMED_OUT
    assert time.monotonic() - started < 1.0


def test_http_relay_answer_begun_late_times_out_at_the_deadline(shelly: str) -> None:
    Shelly.mode = "late"  # headers at 0.4 s: a read given the whole timeout then would wait until 0.9 s
    started = time.monotonic()
    assert relay(shelly, timeout_s=0.5).open(REQUEST) is DoorOutcome.TIMED_OUT
    assert time.monotonic() - started < 0.7


def test_http_relay_follows_no_redirect(shelly: str, caplog: pytest.LogCaptureFixture) -> None:
    Shelly.mode = "redirect"
    assert relay(shelly).open(REQUEST) is DoorOutcome.FAILED
    assert len(Shelly.requests) == 1
    assert "answered 302" in caplog.text


def test_http_relay_ignores_a_proxy_from_the_environment(shelly: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there: a gate using it would fail
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert relay(shelly).open(REQUEST) is DoorOutcome.OPENED


def test_http_relay_nobody_listening_reports_failed(shelly: str) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        assert relay(url, timeout_s=1.0).open(REQUEST) is DoorOutcome.FAILED


def test_http_relay_missing_password_stops_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FaceGateError, match="actuator.password_file .*: no such file"):
        relay("http://127.0.0.1:9", password_file=str(tmp_path / "absent"))
    monkeypatch.delenv("RELAY_PASSWORD", raising=False)
    with pytest.raises(
        FaceGateError, match="actuator.password_env RELAY_PASSWORD: the environment variable is not set"
    ):
        relay("http://127.0.0.1:9", password_env="RELAY_PASSWORD")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "kind = 'http_relay' needs url"),
        ({"url": "http://admin:pw@relay.local"}, "no login in the url"),
        ({"url": "http://relay.local", "password_file": "relay.pw"}, "absolute path"),
        ({"url": "http://relay.local", "password_file": "/etc/r", "password_env": "R"}, "not both"),
        ({"url": "http://relay.local", "username": "door"}, "needs password_file or password_env"),
        ({"url": "http://relay.local", "api": "tasmota"}, "shelly_gen1"),
    ],
)
def test_http_relay_settings_refused_in_one_line(values: dict, message: str) -> None:
    with pytest.raises(FaceGateError, match=message) as refused:
        settings_from_dict({"actuator": {"kind": "http_relay", **values}})
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith("config: actuator")


def test_http_relay_repr_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_PASSWORD", PASSWORD)
    assert PASSWORD not in repr(relay("http://127.0.0.1:9", password_env="RELAY_PASSWORD"))
    assert os.environ["RELAY_PASSWORD"] == PASSWORD
