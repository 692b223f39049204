"""A Shelly-style HTTP relay as the door's actuator: one GET switches the relay on with the relay's own off-timer
(open_s), so a gate that dies mid-pulse never leaves the door open. Opened only when the relay answers 200 with
JSON saying it is on; anything else is failed or timed out, logged, never raised.

Gen1 (`shelly_gen1`): GET <url>/relay/<relay>?turn=on&timer=<open_s>, answered {"ison": true, ...}.
Gen2+ (`shelly_rpc`): GET <url>/rpc/Switch.Set?id=<relay>&on=true&toggle_after=<open_s>, answered {"was_on": ...}.
A relay that asks for a login (401) gets HTTP basic or digest (MD5 or SHA-256, as Gen2+ asks) with the password
read once at start from a file or an environment variable. No proxy, no redirects, the answer read up to
MAX_ANSWER_BYTES and by a deadline of timeout_s.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path

from gate.config import ActuatorSettings
from gate.door.requests import DoorOutcome, DoorRequest
from gate.errors import FaceGateError
from gate.store.encryption import environment_text, read_private_file

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 16 * 1024  # a relay's JSON is a few hundred bytes: anything longer is not a relay answering
DEFAULT_USER = "admin"  # Shelly's login name (Gen2+ knows no other)
DIGESTS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class RelayError(Exception):
    """The relay could not be switched (the message says why); the door's outcome is failed."""


class RelayTimeout(RelayError):
    """The relay did not answer in time; the door's outcome is timed out."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A relay does not redirect: a 3xx is its answer (failed), and the login is never sent elsewhere."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


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


def challenges(headers: Message) -> dict[str, dict[str, str]]:
    """The WWW-Authenticate challenges of a 401, by lower-case scheme: {"digest": {"realm": ..., ...}}."""
    found: dict[str, dict[str, str]] = {}
    for value in headers.get_all("WWW-Authenticate") or []:
        scheme, _, rest = value.strip().partition(" ")
        params = {}
        for match in AUTH_PARAM.finditer(rest):
            key, quoted, bare = match.groups()
            params[key.lower()] = bare if bare is not None else quoted.replace('\\"', '"')
        found[scheme.lower()] = params
    return found


def digest_authorization(
    challenge: dict[str, str], user: str, password: str, method: str, uri: str, cnonce: str = ""
) -> str:
    """The Authorization header answering a Digest challenge (RFC 7616: MD5 or SHA-256, qop auth or none)."""
    algorithm = challenge.get("algorithm", "MD5").upper()
    hasher = DIGESTS.get(algorithm)
    if hasher is None:
        raise RelayError(f"asks for digest algorithm {algorithm}, which this gate does not speak (MD5, SHA-256)")

    def digest(text: str) -> str:
        return hasher(text.encode("utf-8")).hexdigest()

    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    secret, target = digest(f"{user}:{realm}:{password}"), digest(f"{method}:{uri}")
    qops = [qop.strip() for qop in challenge.get("qop", "").split(",") if qop.strip()]
    fields = {"username": user, "realm": realm, "nonce": nonce, "uri": uri, "algorithm": algorithm}
    if "auth" in qops:
        cnonce = cnonce or secrets.token_hex(16)
        fields |= {"qop": "auth", "nc": "00000001", "cnonce": cnonce}
        fields["response"] = digest(f"{secret}:{nonce}:00000001:{cnonce}:auth:{target}")
    elif qops:
        raise RelayError(f"asks for digest qop {challenge['qop']!r}, which this gate does not speak (auth)")
    else:
        fields["response"] = digest(f"{secret}:{nonce}:{target}")
    if "opaque" in challenge:
        fields["opaque"] = challenge["opaque"]
    bare = ("algorithm", "qop", "nc")
    return "Digest " + ", ".join(f"{k}={v}" if k in bare else f'{k}="{v}"' for k, v in fields.items())


def _read_bounded(response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The answer's body, at most MAX_ANSWER_BYTES, read by `deadline` (a relay that drips bytes times out)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(MAX_ANSWER_BYTES + 1 - size):
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_ANSWER_BYTES:
            raise RelayError(f"answered more than {MAX_ANSWER_BYTES} bytes")
        if time.monotonic() > deadline:
            raise RelayTimeout("the answer did not end in time")
    return b"".join(chunks)


class HttpRelayActuator:
    """Switches a Shelly-style relay on for open_s seconds (the relay's own timer switches it off); see the module."""

    def __init__(self, settings: ActuatorSettings) -> None:
        self.api = settings.api
        self.url = relay_url(settings)
        self.where = settings.url.rstrip("/")  # for the log: the relay, without the query
        self.timeout_s = settings.timeout_s
        password = relay_password(settings)  # read now: a missing password stops the start, not a grant
        self._login = None if password is None else (settings.username or DEFAULT_USER, password)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

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
        return None  # nothing held: the relay's own timer ends the pulse

    def _switch_on(self, deadline: float) -> tuple[int, bytes]:
        """(status, body) of the switching GET, answering a login challenge once when the relay asks for one."""
        status, headers, body = self._get(None, deadline)
        if status != 401 or self._login is None:
            return status, body
        asked = challenges(headers)
        user, password = self._login
        if "digest" in asked:
            target = urllib.parse.urlsplit(self.url)
            uri = f"{target.path}?{target.query}"  # the request target the digest covers
            authorization = digest_authorization(asked["digest"], user, password, "GET", uri)
        elif "basic" in asked:
            authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        else:
            raise RelayError(f"asks for a login this gate does not speak: {', '.join(asked) or 'none named'}")
        status, _, body = self._get(authorization, deadline)
        return status, body

    def _get(self, authorization: str | None, deadline: float) -> tuple[int, Message, bytes]:
        headers = {"Accept": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        request = urllib.request.Request(self.url, headers=headers)
        try:
            with self._opener.open(request, timeout=max(deadline - time.monotonic(), 0.001)) as response:
                return response.status, response.headers, _read_bounded(response, deadline)
        except urllib.error.HTTPError as error:  # an answer, not a failure to reach the relay
            error.close()
            return error.code, error.headers, b""
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise RelayTimeout(str(reason) or "timed out") from None
            raise RelayError(f"unreachable: {reason}") from None

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
