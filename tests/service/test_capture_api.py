"""/api/capture over the real app: an admin's capture at the gate whose configured camera is a live paced MJPEG
stream of a real LFW walk-up enrols the walker (countdown, watching with a preview, done); a viewer, the signed out
and a session without its CSRF token are refused and start nothing; one capture at a time (409); an unknown gate is
a one-line 404 (a page never names a source); a cancel ends a capture refused, nothing enrolled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegate_process import free_port
from service_site import PASSWORD, Site, bearer, open_site, site_settings
from walk_ups import SPEC, bgr, walk_up

from enrollment.audit import audit_trail
from enrollment.roster import show_person
from evaluation.paced_stream import PacedStream
from gate.vision.faces import FacePipeline

NOWHERE = "http://127.0.0.1:{port}/stream.mjpg"  # nothing listens there: a camera that never comes
ASK = {"gate_id": "front-door", "employee_id": "E7", "name": "Colin Powell", "frames": 4, "timeout_s": 120}


@pytest.fixture
def walker_stream(lfw_root: Path, pipeline: FacePipeline) -> Iterator[PacedStream]:
    frames = bgr(walk_up(lfw_root, "Colin_Powell", pipeline))
    with PacedStream(fps=SPEC.fps, size=(SPEC.width, SPEC.height), images=frames) as stream:
        yield stream


@pytest.fixture
def nowhere_site(tmp_path: Path, untrained_card: Path) -> Iterator[Site]:
    """A site whose gate's camera never comes: a capture there runs until cancelled or timed out."""
    yield from open_site(site_settings(tmp_path, untrained_card, camera_source=NOWHERE.format(port=free_port())))


def _one_line_error(response, status: int) -> str:  # noqa: ANN001
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert message and "\n" not in message
    return message


def _poll_until_ended(site: Site, headers: dict[str, str], timeout_s: float = 120) -> list[dict]:
    """Every state polled until the capture ends (done or refused)."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = site.client.get("/api/capture", headers=headers).json()
        seen.append(state)
        if state["state"] in ("done", "refused"):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"the capture did not end: {seen[-1]}")


@pytest.mark.slow
def test_an_admins_capture_at_the_gates_camera_enrols_the_walker(
    tmp_path: Path, untrained_card: Path, walker_stream: PacedStream
) -> None:
    for site in open_site(site_settings(tmp_path, untrained_card, camera_source=walker_stream.url)):
        admin = bearer(site.admin_token)
        assert site.client.get("/api/capture/gates", headers=admin).json() == {"gates": ["front-door"]}
        started = site.client.post("/api/capture", json=ASK, headers=admin)
        assert started.status_code == 201, started.text
        assert started.json()["state"] == "counting" and 2.0 < started.json()["seconds_left"] <= 3.0
        previews: list[bytes] = []
        seen: list[dict] = []
        deadline = time.monotonic() + 120
        while not seen or seen[-1]["state"] in ("counting", "watching"):
            assert time.monotonic() < deadline, seen[-1]
            seen.append(site.client.get("/api/capture", headers=admin).json())
            preview = site.client.get("/api/capture/preview", headers=admin)
            if preview.status_code == 200:
                assert preview.headers["content-type"] == "image/jpeg"
                assert preview.headers["cache-control"] == "no-store"
                previews.append(preview.content)
            time.sleep(0.1)
        final = seen[-1]
        assert final["state"] == "done", final
        assert final["outcome"] == "enrolled E7: 4 of 4 faces added" and final["added"] == 4 and final["kept"] == 4
        states = [state["state"] for state in seen]
        assert states.index("counting") < states.index("watching") < states.index("done")
        assert any(0 < state["kept"] < 4 for state in seen if state["state"] == "watching")  # progress shows
        assert previews, "no preview while watching"
        image = cv2.imdecode(np.frombuffer(previews[-1], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[:2] == (SPEC.height, SPEC.width)
        templates = show_person(site.database, "E7").templates
        assert len(templates) == 4 and {t.origin for t in templates} == {"capture"}
        entry = audit_trail(site.database, "E7")[0]
        assert entry.actor == "api:door-admin" and walker_stream.url in entry.detail


def test_the_gates_a_capture_may_watch_are_the_configs(site: Site) -> None:
    assert site.client.get("/api/capture/gates", headers=bearer(site.admin_token)).json() == {"gates": ["front-door"]}


def test_a_viewer_the_signed_out_and_a_session_without_csrf_start_nothing(site: Site) -> None:
    _one_line_error(site.client.post("/api/capture", json=ASK, headers=bearer(site.viewer_token)), 403)
    _one_line_error(site.client.get("/api/capture", headers=bearer(site.viewer_token)), 403)
    _one_line_error(site.client.get("/api/capture/preview", headers=bearer(site.viewer_token)), 403)
    _one_line_error(site.client.get("/api/capture/gates", headers=bearer(site.viewer_token)), 403)
    _one_line_error(site.client.post("/api/capture", json=ASK), 401)
    _one_line_error(site.client.delete("/api/capture"), 401)
    signed = site.client.post("/api/session", json={"name": "ada", "password": PASSWORD})
    assert signed.status_code == 200
    _one_line_error(site.client.post("/api/capture", json=ASK), 403)  # the cookie alone: no CSRF header
    _one_line_error(site.client.post("/api/capture", json=ASK, headers={"X-CSRF-Token": "guessed"}), 403)
    assert "no capture has run" in _one_line_error(site.client.get("/api/capture"), 404)  # nothing started


def test_an_unknown_gate_or_a_source_is_refused_in_one_line(site: Site) -> None:
    admin = bearer(site.admin_token)
    unknown = site.client.post("/api/capture", json=ASK | {"gate_id": "back-door"}, headers=admin)
    assert _one_line_error(unknown, 404) == "no gate 'back-door' in the config; its gates: front-door"
    url = {"source": "http://169.254.169.254/latest/meta-data"}  # a page cannot make the server open a URL
    assert "source" in _one_line_error(site.client.post("/api/capture", json=ASK | url, headers=admin), 422)
    too_many = site.client.post("/api/capture", json=ASK | {"frames": 51}, headers=admin)
    assert "frames" in _one_line_error(too_many, 422)
    too_long = site.client.post("/api/capture", json=ASK | {"timeout_s": 601}, headers=admin)
    assert "timeout_s" in _one_line_error(too_long, 422)
    nameless = site.client.post("/api/capture", json=ASK | {"name": None}, headers=admin)
    assert _one_line_error(nameless, 422) == "E7 is not enrolled yet; send their name in the name field"
    assert site.client.get("/api/capture", headers=admin).status_code == 404  # none of them started


@pytest.mark.slow
def test_one_capture_at_a_time_and_a_cancel_ends_it_with_nothing_enrolled(nowhere_site: Site) -> None:
    site, admin = nowhere_site, bearer(nowhere_site.admin_token)
    started = site.client.post("/api/capture", json=ASK, headers=admin)
    assert started.status_code == 201, started.text
    second = site.client.post("/api/capture", json=ASK | {"employee_id": "E8"}, headers=admin)
    assert "one at a time" in _one_line_error(second, 409)
    deadline = time.monotonic() + 60
    while site.client.get("/api/capture", headers=admin).json()["state"] != "watching":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "not looked at a frame" in _one_line_error(site.client.get("/api/capture/preview", headers=admin), 404)
    cancelled_at = time.monotonic()
    assert site.client.delete("/api/capture", headers=admin).status_code == 200
    final = _poll_until_ended(site, admin, timeout_s=30)[-1]
    assert time.monotonic() - cancelled_at < 15  # the camera's wait is cut short, not run to its 120 s
    assert final["state"] == "refused" and final["outcome"].startswith("capture cancelled with 0 of 4"), final
    assert "no capture is running" in _one_line_error(site.client.delete("/api/capture", headers=admin), 409)
    assert site.client.get("/api/people", headers=admin).json()["total"] == 0
    again = site.client.post("/api/capture", json=ASK, headers=admin)  # the desk is free again
    assert again.status_code == 201
    assert site.client.delete("/api/capture", headers=admin).json()["state"] == "counting"
    assert "before front-door's camera was watched" in _poll_until_ended(site, admin, 10)[-1]["outcome"]
