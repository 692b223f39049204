"""Where badge claims come from: standard input (the local reader's pipe), an HTTP listener (POST /claim) or
MQTT (gate.door.mqtt_claims), each feeding the gate's ClaimBox; `open_claims` starts the configured one."""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Protocol

from gate.config import Settings, loopback_host
from gate.door.claims import MAX_BODY_BYTES, ClaimBox, ClaimRefused, ClaimVerifier, claim_verifier
from gate.errors import FaceGateError

log = logging.getLogger(__name__)

SHUTDOWN_POLL_S = 0.05  # how often the listener looks whether it is asked to stop
HTTP_TIMEOUT_S = 5.0  # a reader's connection idle this long is closed (a slow client holds no thread for ever)


class ClaimFeed(Protocol):
    def close(self) -> None: ...


class StdinClaims:
    """Reads claims line by line from a stream (standard input) in a daemon thread. Not signed: the stream is the
    local reader program's own pipe, which no other process can write to."""

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


def _body_length(header: str | None) -> int:
    """The Content-Length of a request, 0 when absent or not a number (a chunked body is refused)."""
    return int(header) if header is not None and header.strip().isdigit() else 0


def _handler(box: ClaimBox, verifier: ClaimVerifier) -> type[BaseHTTPRequestHandler]:
    class ClaimHandler(BaseHTTPRequestHandler):
        timeout = HTTP_TIMEOUT_S

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.rstrip("/") != "/claim":
                self._answer(HTTPStatus.NOT_FOUND, {"error": "POST /claim"})
                return
            length = _body_length(self.headers.get("Content-Length"))
            if not 0 < length <= MAX_BODY_BYTES:
                self._answer(HTTPStatus.BAD_REQUEST, {"error": f"a claim is a body of 1 to {MAX_BODY_BYTES} bytes"})
                return
            try:
                claim = verifier.admit(self.rfile.read(length), box, f"http {self.client_address[0]}")
            except ClaimRefused as refusal:
                self._answer(refusal.status, {"error": str(refusal)})
                return
            self._answer(HTTPStatus.ACCEPTED, {"claimed": claim.employee_id})

        def _answer(self, status: HTTPStatus, body: dict) -> None:
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
    """An HTTP endpoint for badge readers: POST /claim with a signed claim -> 202 {"claimed": id}; a body that is
    no claim -> 400, unsigned -> 401, not authentic or replayed or stale -> 403, a reader over its rate -> 429,
    each {"error": "..."}. Loopback only, unless `allow_remote` (then warned: TLS must be in front)."""

    def __init__(self, box: ClaimBox, verifier: ClaimVerifier, listen: str, allow_remote: bool = False) -> None:
        host, port = listen.rsplit(":", 1)
        if not loopback_host(host) and not allow_remote:
            raise FaceGateError(f"card.listen = {listen!r} is reachable from the network: set card.allow_remote")
        try:
            self.server = ThreadingHTTPServer((host, int(port)), _handler(box, verifier))
        except OSError as error:
            raise FaceGateError(f"card.listen = {listen!r}: cannot listen there ({error.strerror})") from None
        self.server.daemon_threads = True
        self.verifier = verifier
        bound = self.server.server_address
        self.address = f"{bound[0] if isinstance(bound[0], str) else bound[0].decode()}:{bound[1]}"
        serve = functools.partial(self.server.serve_forever, poll_interval=SHUTDOWN_POLL_S)
        self._thread = threading.Thread(target=serve, name="claims-http", daemon=True)
        self._thread.start()
        if not loopback_host(host):
            log.warning(
                "badge claims listener on %s is reachable from the network, in plain HTTP: claims are signed, but "
                "employee ids travel readable; only with TLS (a proxy) in front (card.allow_remote = true)",
                self.address,
            )
        log.info("badge claims accepted at http://%s/claim (signed by: %s)", self.address, verifier.readers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


def open_claims(settings: Settings, box: ClaimBox) -> ClaimFeed | None:
    """Start the configured claim feed (None with card.claims = "off"); http and mqtt with their verifier."""
    card = settings.card
    if card.claims == "stdin":
        return StdinClaims(box)
    if card.claims == "http":
        return HttpClaims(box, claim_verifier(settings), card.listen, card.allow_remote)
    if card.claims == "mqtt":
        from gate.door.mqtt_claims import MqttClaims  # paho only where claims come that way

        return MqttClaims(settings.mqtt, settings.camera.gate_id, box, claim_verifier(settings))
    return None
