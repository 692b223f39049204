"""Card + face: a badge reader claims an identity, the gate checks the face against that person only (1:1).

A claim arrives on standard input (one employee id per line), over HTTP (POST /claim with
{"employee_id": "..."}) or over MQTT (gate.mqtt.MqttClaims), and waits in a `ClaimBox` until a face is granted
against it or it expires. With one candidate instead of the whole gallery, a stranger must resemble the claimed
person, not anyone enrolled: the stranger rate at a given threshold falls by about the number of people enrolled.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Protocol

from gate.config import Settings
from gate.errors import FaceGateError

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 64  # the database's employee_id column
MAX_BODY_BYTES = 4096


@dataclass(frozen=True)
class Claim:
    """An identity a badge claimed, and when (on the gate loop's clock)."""

    employee_id: str
    time: float


def claimed_id(text: str) -> str:
    """A badge's employee id, stripped; a one-line FaceGateError when empty or too long."""
    employee_id = text.strip()
    if not employee_id or len(employee_id) > MAX_ID_LENGTH or not employee_id.isprintable():
        raise FaceGateError(f"a claim needs an employee id of 1 to {MAX_ID_LENGTH} printable characters")
    return employee_id


def claim_message(payload: bytes) -> str:
    """A badge reader's message: JSON {"employee_id": "..."} or the bare employee id as text."""
    try:
        text = payload.decode("utf-8").strip()
        body = json.loads(text) if text.startswith("{") else text
    except (UnicodeDecodeError, ValueError):
        raise FaceGateError('expected an employee id, or JSON {"employee_id": "..."}') from None
    if isinstance(body, dict):
        body = body.get("employee_id")
    if not isinstance(body, str):
        raise FaceGateError('expected an employee id, or JSON {"employee_id": "..."}')
    return claimed_id(body)


class ClaimBox:
    """The claim waiting for a face (a newer badge read replaces it); safe to fill from another thread."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._claim: Claim | None = None
        self.received = 0

    def put(self, text: str) -> Claim:
        claim = Claim(claimed_id(text), self._clock())
        with self._lock:
            if self._claim is not None:
                log.info("claim of %s replaced by one of %s", self._claim.employee_id, claim.employee_id)
            self._claim = claim
            self.received += 1
        log.info("badge claims %s", claim.employee_id)
        return claim

    def current(self) -> Claim | None:
        with self._lock:
            return self._claim

    def take(self, claim: Claim) -> bool:
        """Remove `claim` if it is still the current one (a newer badge read is kept)."""
        with self._lock:
            if self._claim != claim:
                return False
            self._claim = None
            return True

    def expired(self, timeout_s: float) -> Claim | None:
        """Remove and return the current claim if it is older than `timeout_s`."""
        with self._lock:
            claim = self._claim
            if claim is None or self._clock() - claim.time < timeout_s:
                return None
            self._claim = None
            return claim


class ClaimFeed(Protocol):
    def close(self) -> None: ...


class StdinClaims:
    """Reads claims line by line from a stream (standard input) in a daemon thread."""

    def __init__(self, box: ClaimBox, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stdin
        self._box = box
        self._thread = threading.Thread(target=self._read, name="claims-stdin", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            if not line.strip():
                continue
            try:
                self._box.put(line)
            except FaceGateError as error:
                log.warning("badge input ignored: %s", error)

    def close(self) -> None:
        pass  # a thread blocked on a read cannot be stopped; it is a daemon and ends with the process


def _handler(box: ClaimBox) -> type[BaseHTTPRequestHandler]:
    class ClaimHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.rstrip("/") != "/claim":
                self._answer(404, {"error": "POST /claim"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY_BYTES:
                    raise ValueError(f"a body of 1 to {MAX_BODY_BYTES} bytes is needed")
                body = json.loads(self.rfile.read(length))
                claim = box.put(str(body["employee_id"]) if isinstance(body, dict) else "")
            except (ValueError, KeyError, FaceGateError) as error:
                self._answer(400, {"error": f'expected {{"employee_id": "..."}}: {error}'})
                return
            self._answer(202, {"claimed": claim.employee_id})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
            log.debug("claims http: " + format, *args)

    return ClaimHandler


class HttpClaims:
    """An HTTP endpoint for badge readers: POST /claim {"employee_id": "E001"} -> 202; bad bodies -> 400."""

    def __init__(self, box: ClaimBox, listen: str) -> None:
        host, port = listen.rsplit(":", 1)
        try:
            self.server = ThreadingHTTPServer((host, int(port)), _handler(box))
        except OSError as error:
            raise FaceGateError(f"card.listen = {listen!r}: cannot listen there ({error.strerror})") from None
        self.address = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="claims-http", daemon=True)
        self._thread.start()
        log.info("badge claims accepted at http://%s/claim", self.address)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


def open_claims(settings: Settings, box: ClaimBox) -> ClaimFeed | None:
    """Start the configured claim feed (None with card.claims = "off")."""
    card = settings.card
    if card.claims == "stdin":
        return StdinClaims(box)
    if card.claims == "http":
        return HttpClaims(box, card.listen)
    if card.claims == "mqtt":
        from gate.mqtt import MqttClaims  # paho only where claims come that way

        return MqttClaims(settings.mqtt, settings.camera.gate_id, box)
    return None
