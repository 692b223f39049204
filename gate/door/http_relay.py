"""A Shelly-style HTTP relay as the door's actuator: one GET switches the relay on with the relay's own off-timer
(open_s), so a gate that dies mid-pulse never leaves the door open. Opened only when the relay answers 200 with
JSON saying it is on; anything else is failed or timed out, logged, never raised.

Gen1 (`shelly_gen1`): GET <url>/relay/<relay>?turn=on&timer=<open_s>, answered {"ison": true, ...}.
Gen2+ (`shelly_rpc`): GET <url>/rpc/Switch.Set?id=<relay>&on=true&toggle_after=<open_s>, answered {"was_on": ...}.
A relay that asks for a login (401) gets httpx's HTTP basic or digest (MD5, SHA-256, ... as Gen2+ asks) with the
password read once at start from a file or an environment variable. No proxy, no redirects, the answer read up to
MAX_ANSWER_BYTES and by a deadline of timeout_s: httpx times each read alone, so the grant's connections are shut
down when the deadline passes (a relay dripping its answer a byte at a time times out at the deadline, not after).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from gate.config import ActuatorSettings
from gate.door.requests import DoorOutcome, DoorRequest
from gate.errors import FaceGateError
from gate.store.encryption import environment_text, read_private_file

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 16 * 1024  # a relay's JSON is a few hundred bytes: anything longer is not a relay answering
DEFAULT_USER = "admin"  # Shelly's login name (Gen2+ knows no other)


class RelayError(Exception):
    """The relay could not be switched (the message says why); the door's outcome is failed."""


class RelayTimeout(RelayError):
    """The relay did not answer in time; the door's outcome is timed out."""


class Deadline:
    """Shuts down one grant's connections to the relay when its deadline passes, so that no read outlasts it: httpx
    gives each read the whole timeout, and a relay answering a byte at a time would keep the gate waiting."""

    TRACED = ("connection.connect_tcp.complete", "connection.start_tls.complete")  # httpcore's: a socket made

    def __init__(self, deadline: float) -> None:
        self.passed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0.0), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace extension: each connection's socket noted as it is made (cut at once when too late)."""
        if event not in self.TRACED:
            return
        made = info["return_value"].get_extra_info("socket")
        with self._lock:
            self._sockets.append(made)
            if self.passed:
                _shut_down(made)

    def cancel(self) -> None:
        """The grant is answered: nothing to cut."""
        self._timer.cancel()

    def _cut(self) -> None:
        with self._lock:
            self.passed = True
            for made in self._sockets:
                _shut_down(made)


def _shut_down(made: socket.socket) -> None:
    """End both ways of a socket another thread may be reading: the read returns at once (closed ones pass)."""
    with contextlib.suppress(OSError):
        made.shutdown(socket.SHUT_RDWR)


def relay_url(settings: ActuatorSettings) -> str:
    """The GET that switches `settings.relay` on for `settings.open_s` seconds, in the relay's API."""
    base = settings.url.rstrip("/")
    if settings.api == "shelly_rpc":
        return f"{base}/rpc/Switch.Set?id={settings.relay}&on=true&toggle_after={settings.open_s:g}"
    return f"{base}/relay/{settings.relay}?turn=on&timer={settings.open_s:g}"


def relay_password(settings: ActuatorSettings) -> str | None:
    """The relay's password from password_file (made owner-only) or password_env; None without either. A missing
    file, unset variable or empty password is a FaceGateError: the gate does not start."""
    if settings.password_file:
        path = Path(settings.password_file)
        source = f"actuator.password_file {path}"
        if not path.exists():
            raise FaceGateError(f"{source}: no such file (write the relay's password there, mode 600)")
        text = read_private_file(path, source, "relay password file", "write the relay's password there")
    elif settings.password_env:
        source = f"actuator.password_env {settings.password_env}"
        text = environment_text(settings.password_env, source)
    else:
        return None
    password = text.strip("\r\n")
    if not password:
        raise FaceGateError(f"{source}: the password is empty")
    return password


class HttpRelayActuator:
    """Switches a Shelly-style relay on for open_s seconds (the relay's own timer switches it off); see the module."""

    def __init__(self, settings: ActuatorSettings) -> None:
        self.api = settings.api
        self.url = relay_url(settings)
        try:
            httpx.URL(self.url)
        except httpx.InvalidURL as error:
            raise FaceGateError(f"actuator.url {settings.url!r}: {error}") from None
        self.where = settings.url.rstrip("/")  # for the log: the relay, without the query
        self.timeout_s = settings.timeout_s
        password = relay_password(settings)  # read now: a missing password stops the start, not a grant
        self._login = None if password is None else (settings.username or DEFAULT_USER, password)
        self._client = httpx.Client(
            headers={"Accept": "application/json", "Accept-Encoding": "identity"},  # read as sent: no inflating
            follow_redirects=False,  # a 3xx is the relay's answer (failed): the login is never sent elsewhere
            trust_env=False,  # no proxy (nor .netrc) from the environment
            limits=httpx.Limits(max_keepalive_connections=0),  # a fresh connection per grant: none goes stale
        )

    def __repr__(self) -> str:
        return f"HttpRelayActuator(url={self.url!r}, api={self.api!r})"  # never the password

    def open(self, request: DoorRequest) -> DoorOutcome:
        try:
            status, body = self._switch_on(time.monotonic() + self.timeout_s)
        except RelayTimeout as error:
            log.error("relay %s did not answer within %.1f s (%s)", self.where, self.timeout_s, error)
            return DoorOutcome.TIMED_OUT
        except RelayError as error:
            log.error("relay %s: %s", self.where, error)
            return DoorOutcome.FAILED
        if status == 401:
            hint = "check username and the password" if self._login else "set password_file or password_env"
            log.error("relay %s refused the login (401): %s", self.where, hint)
            return DoorOutcome.FAILED
        if status != 200:
            log.error("relay %s answered %d", self.where, status)
            return DoorOutcome.FAILED
        return self._verdict(body)

    def close(self) -> None:
        self._client.close()  # the relay's own timer ends the pulse

    def _switch_on(self, deadline: float) -> tuple[int, bytes]:
        """(status, body) of the switching GET, answering a login challenge once when the relay asks for one. The
        401 is closed unread, not handed to httpx's auth loop, which would read its body without bound or deadline.
        Every connection is cut at `deadline` (Deadline): a read it interrupts is a RelayTimeout."""
        watch = Deadline(deadline)
        try:
            request = self._client.build_request("GET", self.url)
            with self._send(request, deadline, watch) as answer:
                if answer.status_code != 401 or self._login is None:
                    return answer.status_code, _body(answer, deadline)
                request = self._logged_in(request, answer, self._login)
            with self._send(request, deadline, watch) as answer:
                return answer.status_code, _body(answer, deadline)
        except httpx.TimeoutException as error:
            raise RelayTimeout(str(error) or "timed out") from None
        except httpx.HTTPError as error:
            if watch.passed:
                raise RelayTimeout("the answer did not end in time") from None
            raise RelayError(f"unreachable: {error}") from None
        finally:
            watch.cancel()

    def _send(self, request: httpx.Request, deadline: float, watch: Deadline) -> contextlib.closing[httpx.Response]:
        """The relay's answer, its body not read yet; connecting by `deadline`, the connection cut by `watch` then."""
        request.extensions["timeout"] = httpx.Timeout(max(deadline - time.monotonic(), 0.001)).as_dict()
        request.extensions["trace"] = watch.trace
        return contextlib.closing(self._client.send(request, stream=True))

    @staticmethod
    def _logged_in(request: httpx.Request, challenge: httpx.Response, login: tuple[str, str]) -> httpx.Request:
        """`request` again with the login the 401 `challenge` asks for: httpx's digest (preferred) or basic."""
        asked = {value.split(" ", 1)[0].lower() for value in challenge.headers.get_list("WWW-Authenticate")}
        if "digest" in asked:
            flow = httpx.DigestAuth(*login).sync_auth_flow(request)
            next(flow)  # the bare request, already sent: `challenge` is its answer
            try:
                return flow.send(challenge)
            except (httpx.ProtocolError, KeyError, NotImplementedError) as error:  # a challenge httpx cannot answer
                raise RelayError(f"asks for a digest login this gate cannot answer ({error!r})") from None
        if "basic" in asked:
            return next(httpx.BasicAuth(*login).sync_auth_flow(request))
        raise RelayError(f"asks for a login this gate does not speak: {', '.join(sorted(asked)) or 'none named'}")

    def _verdict(self, body: bytes) -> DoorOutcome:
        """Opened when the relay's JSON says it switched on: Gen1 {"ison": true}, Gen2+ {"was_on": ...}."""
        try:
            answer = json.loads(body)
        except ValueError:
            log.error("relay %s answered 200 without JSON: %r", self.where, body[:120])
            return DoorOutcome.FAILED
        if not isinstance(answer, dict):
            on = False
        elif self.api == "shelly_rpc":
            on = "was_on" in answer  # Switch.Set's result: the switch is on, whatever it was before
        else:
            on = answer.get("ison") is True
        if not on:
            log.error("relay %s answered without switching on: %r", self.where, body[:120])
            return DoorOutcome.FAILED
        return DoorOutcome.OPENED


def _body(answer: httpx.Response, deadline: float) -> bytes:
    """A 200's body, at most MAX_ANSWER_BYTES, read by `deadline` (a relay that drips bytes times out: Deadline
    cuts a read that would outlast it); none else's."""
    if answer.status_code != 200:
        return b""
    body = b""
    for chunk in answer.iter_raw():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise RelayError(f"answered more than {MAX_ANSWER_BYTES} bytes")
        if time.monotonic() > deadline:
            raise RelayTimeout("the answer did not end in time")
    return body
