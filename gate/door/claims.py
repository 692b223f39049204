"""Card + face: a badge reader claims an identity, the gate checks the face against that person only (1:1).

A claim arrives on standard input (one employee id per line: the local reader's own pipe, not signed), over HTTP
(POST /claim) or over MQTT (gate.door.mqtt_claims), and waits in a `ClaimBox` until a face is granted against it or
it expires. With one candidate instead of the whole gallery, a stranger must resemble the claimed person, not
anyone enrolled: the stranger rate at a given threshold falls by about the number of people enrolled.

Over HTTP and MQTT a claim is signed JSON (docs/research/mqtt-acl.md): {"reader", "employee_id", "time" (Unix seconds),
"nonce", "mac"}, the mac being HMAC-SHA256 with the reader's secret over `canonical_bytes`. `ClaimVerifier` refuses
an unsigned claim, an unknown reader, a wrong mac, a timestamp further than max_skew_s from the gate's clock, a
nonce already seen and a reader over its rate; a refused claim never reaches the ClaimBox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

from gate.config import CardSettings, Settings
from gate.errors import FaceGateError
from gate.store.encryption import environment_text, read_private_file, write_private_file
from gate.store.identifiers import employee_id

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
CLAIM_VERSION = "facegate-claim-v1"  # the first line of the signed bytes: a later format cannot be confused with it
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAC_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")
MIN_SECRET_CHARS = 32  # `facegate card secret` writes 43 (32 random bytes, urlsafe base64)
MAX_NONCES = 10_000  # nonces remembered at once; beyond it claims are refused until old ones age out
SIGNED_FIELDS = ("reader", "employee_id", "time", "nonce", "mac")
FIELD_RULES = {"time": "integer Unix seconds", "nonce": "16 to 64 of A-Z a-z 0-9 _ -", "mac": "64 hex digits"}


@dataclass(frozen=True)
class Claim:
    """An identity a badge claimed, and when (on the gate loop's clock)."""

    employee_id: str
    time: float


class ClaimRefused(FaceGateError):
    """A claim the gate does not take: `status` is the HTTP answer, `reason` the counter it adds to."""

    def __init__(self, message: str, status: HTTPStatus, reason: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class ClaimBox:
    """The claim waiting for a face (a newer badge read replaces it); safe to fill from another thread. Counts the
    claims it took (`received`) and those its feed refused, by reason (`refused`)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._claim: Claim | None = None
        self.received = 0
        self.refused: Counter[str] = Counter()

    def refuse(self, reason: str) -> None:
        """Count a claim the feed refused (it never becomes the waiting claim)."""
        with self._lock:
            self.refused[reason] += 1

    def refusals(self) -> Counter[str]:
        """A copy of the refusals so far, by reason (the feed's thread may be adding to them)."""
        with self._lock:
            return Counter(self.refused)

    def put(self, text: str) -> Claim:
        """Make `text` (an employee id, gate.store.identifiers' rule) the waiting claim; FaceGateError if it is none."""
        claim = Claim(employee_id(text), self._clock())
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


@dataclass(frozen=True)
class SignedClaim:
    """A claim as a reader sent it: the mac covers exactly these characters."""

    reader: str
    employee_id: str
    time: int  # Unix seconds on the reader's clock
    nonce: str
    mac: str


def canonical_bytes(gate_id: str, reader: str, claimed: str, timestamp: int, nonce: str) -> bytes:
    """What a reader signs: version, gate, reader, time, nonce and employee id, one a line (UTF-8, no final
    newline). Only the employee id, last, may hold any character, so two claims never share these bytes."""
    return "\n".join((CLAIM_VERSION, gate_id, reader, str(timestamp), nonce, claimed)).encode("utf-8")


@dataclass(frozen=True)
class ReaderKey:
    """A badge reader's id and its shared secret (never shown)."""

    reader: str
    secret: bytes = field(repr=False)

    def mac(self, gate_id: str, claimed: str, timestamp: int, nonce: str) -> str:
        """HMAC-SHA256 of the claim's canonical bytes, as 64 hex digits."""
        message = canonical_bytes(gate_id, self.reader, claimed, timestamp, nonce)
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def sign(self, gate_id: str, claimed: str, now: float | None = None, nonce: str | None = None) -> bytes:
        """The JSON body a reader sends to claim `claimed` at `gate_id` (now, with a fresh random nonce)."""
        timestamp = int(time.time() if now is None else now)
        nonce = nonce or secrets.token_hex(16)
        mac = self.mac(gate_id, claimed, timestamp, nonce)
        body = {"reader": self.reader, "employee_id": claimed, "time": timestamp, "nonce": nonce, "mac": mac}
        return json.dumps(body).encode("utf-8")


def _signed_fields(body: dict) -> SignedClaim:
    """The typed fields of a signed claim's JSON object; ClaimRefused (400) names the bad one."""
    checks = {
        "reader": lambda v: isinstance(v, str) and 0 < len(v) <= 64,
        "employee_id": lambda v: isinstance(v, str),
        "time": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "nonce": lambda v: isinstance(v, str) and NONCE_PATTERN.match(v) is not None,
        "mac": lambda v: isinstance(v, str) and MAC_PATTERN.match(v) is not None,
    }
    for name, valid in checks.items():
        if not valid(body[name]):
            rule = FIELD_RULES.get(name, "text")
            raise ClaimRefused(f"claim field {name!r}: {rule} needed", HTTPStatus.BAD_REQUEST, "malformed")
    return SignedClaim(body["reader"], body["employee_id"], body["time"], body["nonce"], body["mac"].lower())


def parse_signed_claim(payload: bytes) -> SignedClaim:
    """A reader's message as a SignedClaim; ClaimRefused: 400 when it is no JSON object or over MAX_BODY_BYTES
    (over MQTT as over HTTP), 401 when it is unsigned."""
    if len(payload) > MAX_BODY_BYTES:
        raise ClaimRefused(f"a claim is at most {MAX_BODY_BYTES} bytes", HTTPStatus.BAD_REQUEST, "malformed")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict):
        raise ClaimRefused("a claim is a JSON object (docs/research/mqtt-acl.md)", HTTPStatus.BAD_REQUEST, "malformed")
    missing = [name for name in SIGNED_FIELDS if name not in body]
    if missing:
        message = f"unsigned claim: {', '.join(missing)} missing (a claim needs {', '.join(SIGNED_FIELDS)})"
        raise ClaimRefused(message, HTTPStatus.UNAUTHORIZED, "unsigned")
    return _signed_fields(body)


class ReaderRate:
    """A token bucket per reader: `burst` claims at once, then `per_minute`; not thread-safe (the verifier locks)."""

    def __init__(self, burst: int, per_minute: float, clock: Callable[[], float]) -> None:
        self.burst, self.per_second, self._clock = burst, per_minute / 60.0, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # reader -> (tokens, when counted)

    def allow(self, reader: str) -> bool:
        now = self._clock()
        tokens, then = self._buckets.get(reader, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.per_second)
        if tokens < 1.0:
            self._buckets[reader] = (tokens, now)
            return False
        self._buckets[reader] = (tokens - 1.0, now)
        return True


class ClaimVerifier:
    """Checks signed claims for one gate: a known reader, its mac (constant-time), the timestamp within
    max_skew_s of `wall_clock`, a nonce not seen while it could still pass, the reader under its rate. Safe to use
    from several threads."""

    def __init__(
        self,
        gate_id: str,
        keys: list[ReaderKey],
        card: CardSettings,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_nonces: int = MAX_NONCES,
    ) -> None:
        self.gate_id, self.max_skew_s, self.max_nonces = gate_id, card.max_skew_s, max_nonces
        self._keys = {key.reader: key for key in keys}
        self._wall_clock = wall_clock
        self._rate = ReaderRate(card.reader_burst, card.reader_per_minute, monotonic)
        self._nonces: dict[tuple[str, str], float] = {}  # (reader, nonce) -> wall time after which it is stale
        self._lock = threading.Lock()

    @property
    def readers(self) -> str:
        """The ids of the readers whose claims count, for log lines."""
        return ", ".join(self._keys)

    def verify(self, payload: bytes) -> str:
        """The employee id of an authentic, fresh claim; ClaimRefused (with its HTTP status) otherwise."""
        claim = parse_signed_claim(payload)
        key = self._keys.get(claim.reader)
        if key is None:
            raise ClaimRefused(f"unknown reader {claim.reader!r}", HTTPStatus.FORBIDDEN, "unknown_reader")
        expected = key.mac(self.gate_id, claim.employee_id, claim.time, claim.nonce)
        if not hmac.compare_digest(expected, claim.mac):
            message = f"reader {claim.reader!r}: wrong mac (another secret or gate, or the claim was altered)"
            raise ClaimRefused(message, HTTPStatus.FORBIDDEN, "bad_mac")
        skew = claim.time - self._wall_clock()
        if abs(skew) > self.max_skew_s:
            message = (
                f"reader {claim.reader!r}: timestamp {skew:+.0f} s from the gate's clock (at most {self.max_skew_s:g})"
            )
            raise ClaimRefused(message, HTTPStatus.FORBIDDEN, "stale")
        with self._lock:
            self._remember_nonce(claim)
            if not self._rate.allow(claim.reader):
                message = f"reader {claim.reader!r} sends claims faster than its rate: this one is dropped"
                raise ClaimRefused(message, HTTPStatus.TOO_MANY_REQUESTS, "rate")
        try:
            return employee_id(claim.employee_id)
        except FaceGateError as error:
            raise ClaimRefused(str(error), HTTPStatus.BAD_REQUEST, "bad_id") from None

    def _remember_nonce(self, claim: SignedClaim) -> None:
        """Keep (reader, nonce) until the claim would be stale anyway; a second use is refused. Under the lock."""
        now = self._wall_clock()
        if len(self._nonces) >= self.max_nonces:
            self._nonces = {seen: until for seen, until in self._nonces.items() if until >= now}
        seen = (claim.reader, claim.nonce)
        if seen in self._nonces:
            raise ClaimRefused(
                f"reader {claim.reader!r}: nonce used already (a replay)", HTTPStatus.FORBIDDEN, "replayed"
            )
        if len(self._nonces) >= self.max_nonces:
            message = f"{self.max_nonces} claims within {2 * self.max_skew_s:g} s: this one is dropped"
            raise ClaimRefused(message, HTTPStatus.TOO_MANY_REQUESTS, "rate")
        self._nonces[seen] = claim.time + self.max_skew_s

    def admit(self, payload: bytes, box: ClaimBox, where: str) -> Claim:
        """Verify a claim and put it in `box`; a refusal is counted in `box.refused`, logged at WARNING (`where`:
        its feed) and raised as ClaimRefused, the waiting claim untouched."""
        try:
            return box.put(self.verify(payload))
        except ClaimRefused as refusal:
            box.refuse(refusal.reason)
            log.warning("badge claim from %s refused (%s): %s", where, refusal.reason, refusal)
            raise


def read_secret(settings: Settings, reader_id: str) -> ReaderKey:
    """The key of the configured reader `reader_id`, its secret read from its file or environment variable."""
    reader = next((r for r in settings.card.readers if r.id == reader_id), None)
    if reader is None:
        known = ", ".join(r.id for r in settings.card.readers) or "none"
        raise FaceGateError(f"card.readers: no reader {reader_id!r} (configured: {known})")
    if reader.secret_file:
        path = settings.resolve(reader.secret_file)
        source = f"card.readers {reader.id!r}: secret_file {path}"
        text = read_private_file(path, f"card reader secret {path}", "card reader secret", "facegate card secret PATH")
    else:
        source = f"card.readers {reader.id!r}: secret_env {reader.secret_env}"
        text = environment_text(reader.secret_env, source)
    secret = text.strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise FaceGateError(
            f"{source}: a secret of at least {MIN_SECRET_CHARS} characters is needed (`facegate card secret PATH`)"
        )
    return ReaderKey(reader.id, secret.encode("utf-8"))


def write_secret_file(path: Path) -> None:
    """Write a fresh reader secret (32 random bytes, urlsafe base64) to a new owner-only file; never overwrites."""
    write_private_file(path, secrets.token_urlsafe(32) + "\n", "reader secret")


def claim_verifier(settings: Settings) -> ClaimVerifier:
    """The verifier of this gate's configured readers, every secret read now (a missing one fails at start)."""
    keys = [read_secret(settings, reader.id) for reader in settings.card.readers]
    return ClaimVerifier(settings.camera.gate_id, keys, settings.card)
