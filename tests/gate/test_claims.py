"""Card + face claims: the box that holds a badge's claim, and its feeds (a real pipe, a real HTTP server)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from gate.claims import ClaimBox, HttpClaims, StdinClaims, claim_message, claimed_id
from gate.errors import FaceGateError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


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


@pytest.mark.parametrize("text", ["", "   ", "x" * 65, "E\x00"])
def test_an_empty_overlong_or_unprintable_id_is_one_line(text: str) -> None:
    with pytest.raises(FaceGateError, match="employee id of 1 to 64 printable characters"):
        claimed_id(text)


def wait_for(box: ClaimBox, count: int) -> None:
    deadline = time.monotonic() + 5
    while box.received < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_stdin_claims_come_line_by_line_and_bad_lines_are_skipped() -> None:
    box = ClaimBox(time.monotonic)
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "r") as stream:
        StdinClaims(box, stream)
        os.write(write_end, b"E001\n\n" + b"y" * 80 + b"\nE002\n")
        os.close(write_end)
        wait_for(box, 2)
    assert box.received == 2 and box.current().employee_id == "E002"


def post(address: str, body: bytes, path: str = "/claim") -> tuple[int, dict]:
    request = urllib.request.Request(f"http://{address}{path}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_http_claims_accept_a_json_claim_and_refuse_bad_bodies_in_one_line() -> None:
    box = ClaimBox(time.monotonic)
    feed = HttpClaims(box, "127.0.0.1:0")
    try:
        assert post(feed.address, b'{"employee_id": "E007"}') == (202, {"claimed": "E007"})
        for body in [b"not json", b'{"id": "E1"}', b'["E1"]', b'{"employee_id": ""}']:
            status, answer = post(feed.address, body)
            assert status == 400 and answer["error"].startswith('expected {"employee_id": "..."}')
        assert post(feed.address, b'{"employee_id": "E1"}', path="/door")[0] == 404
        assert box.received == 1 and box.current().employee_id == "E007"
    finally:
        feed.close()


def test_http_claims_on_a_port_in_use_is_one_line() -> None:
    box = ClaimBox(time.monotonic)
    feed = HttpClaims(box, "127.0.0.1:0")
    try:
        with pytest.raises(FaceGateError, match="card.listen = .*cannot listen there"):
            HttpClaims(box, feed.address)
    finally:
        feed.close()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"E042", "E042"),
        (b"  E042\n", "E042"),
        (b'{"employee_id": "E042"}', "E042"),
        (b'{"employee_id": " E7 "}', "E7"),
    ],
)
def test_a_claim_message_is_the_id_as_text_or_json(payload: bytes, expected: str) -> None:
    assert claim_message(payload) == expected


@pytest.mark.parametrize("payload", [b"", b"   ", b"\xff\xfe", b"{not json", b'{"id": "E1"}', b'{"employee_id": 7}'])
def test_a_bad_claim_message_is_refused_in_one_line(payload: bytes) -> None:
    with pytest.raises(FaceGateError) as refused:
        claim_message(payload)
    assert "\n" not in str(refused.value)
