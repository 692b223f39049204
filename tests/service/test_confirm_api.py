"""POST and DELETE /api/events/{event_id}/confirm: an admin confirms a denied event's real face (LFW, the shipped
model) and takes it back, the events list saying so; and the attacks: no sign-in, a viewer, a cookie without its
CSRF header, huge, negative and non-numeric ids, bad and unknown employee ids, unknown and granted events, a
body that is not the one asked for. Each refusal is one line and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from service_site import Site, bearer, open_site, refused, sign_in, site_settings

from enrollment.audit import audit_trail
from enrollment.roster import show_person
from gate.model.card import SHIPPED_CARD
from gate.store.database import Database
from gate.store.events import AccessEventRecord
from gate.vision.faces import FacePipeline
from gate.vision.imageio import encode_crop, load_image

HUGE = "9" * 40  # past any 64-bit number


def _event(database: Database, decision: str = "denied", crop: bytes | None = None) -> int:
    uid = uuid4().hex
    reason = "GRANTED" if decision == "granted" else "BELOW_THRESHOLD"
    record = AccessEventRecord(datetime.now(UTC), "front", None, 0.9, decision, reason, event_uid=uid, crop=crop)  # type: ignore[arg-type]
    database.record_event(record)
    return database.event_marks([uid])[uid].event_id


def _nothing_confirmed(site: Site) -> None:
    assert not [e for e in audit_trail(site.database) if e.action in ("confirm_event", "undo_confirm")]


def test_the_anonymous_a_viewer_and_a_cookie_without_csrf_arerefused(site: Site) -> None:
    event = _event(site.database, crop=b"not used")
    path = f"/api/events/{event}/confirm"
    refused(site.client.post(path, json={"employee_id": "E1"}), 401)
    refused(site.client.delete(path), 401)
    assert "viewer role" in refused(
        site.client.post(path, json={"employee_id": "E1"}, headers=bearer(site.viewer_token)), 403
    )
    refused(site.client.delete(path, headers=bearer(site.viewer_token)), 403)
    sign_in(site, "ada")  # the admin's cookie, but no X-CSRF-Token header: a page elsewhere posting it
    assert "X-CSRF-Token" in refused(site.client.post(path, json={"employee_id": "E1"}), 403)
    assert "X-CSRF-Token" in refused(site.client.delete(path), 403)
    site.client.cookies.clear()
    viewer_csrf = sign_in(site, "vic")
    refused(site.client.post(path, json={"employee_id": "E1"}, headers={"X-CSRF-Token": viewer_csrf}), 403)
    _nothing_confirmed(site)


@pytest.mark.parametrize("event_id", [HUGE, "-1", "0", "1.5", "abc", "1%20OR%201=1", "0x10", "%00"])
def test_ids_that_are_no_event_number_are_422(site: Site, event_id: str) -> None:
    admin = bearer(site.admin_token)
    refused(site.client.post(f"/api/events/{event_id}/confirm", json={"employee_id": "E1"}, headers=admin), 422)
    refused(site.client.delete(f"/api/events/{event_id}/confirm", headers=admin), 422)


@pytest.mark.parametrize(
    "body",
    [{}, {"employee_id": ""}, {"employee_id": "E" * 65}, {"employee_id": "E\u200b1"}, {"employee_id": 42}, []],
)
def test_an_employee_id_the_rule_refuses_is_422(site: Site, body: object) -> None:
    event = _event(site.database, crop=b"x")
    response = site.client.post(f"/api/events/{event}/confirm", json=body, headers=bearer(site.admin_token))
    refused(response, 422)
    _nothing_confirmed(site)


def test_an_unknown_event_or_an_unconfirmed_one_is_404(site: Site) -> None:
    admin = bearer(site.admin_token)
    error = refused(site.client.post("/api/events/4242/confirm", json={"employee_id": "E1"}, headers=admin), 404)
    assert error == "no access event 4242 (see `facegate events`)"
    event = _event(site.database)
    assert "not confirmed" in refused(site.client.delete(f"/api/events/{event}/confirm", headers=admin), 404)
    granted = _event(site.database, "granted", crop=b"x")
    error = refused(site.client.post(f"/api/events/{granted}/confirm", json={"employee_id": "E1"}, headers=admin), 400)
    assert error.startswith(f"event {granted} was granted")
    _nothing_confirmed(site)


@pytest.fixture
def shipped_site(tmp_path: Path) -> Iterator[Site]:
    yield from open_site(site_settings(tmp_path, SHIPPED_CARD))


@pytest.mark.slow
def test_an_admin_confirms_a_real_face_and_takes_it_back(shipped_site: Site, lfw_root: Path) -> None:
    site, admin = shipped_site, bearer(shipped_site.admin_token)
    photos = [lfw_root / "Colin_Powell" / f"Colin_Powell_{n:04d}.jpg" for n in (1, 2)]
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    assert (
        site.client.post(
            "/api/people", headers=admin, data={"employee_id": "E1", "name": "Colin"}, files=files
        ).status_code
        == 200
    )
    tony = [lfw_root / "Tony_Blair" / f"Tony_Blair_{n:04d}.jpg" for n in (1, 2)]
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in tony]
    assert (
        site.client.post(
            "/api/people", headers=admin, data={"employee_id": "E2", "name": "Tony"}, files=files
        ).status_code
        == 200
    )
    pipeline = FacePipeline(template=site.client.app.state.parts.embedder.template)  # type: ignore[attr-defined]

    def face(person: str, number: int) -> bytes:
        found = pipeline.one_face(load_image(lfw_root / person / f"{person}_{number:04d}.jpg"))
        assert not isinstance(found, str)
        return encode_crop(found.crop, 80)

    wrong = _event(site.database, crop=face("Tony_Blair", 3))
    error = refused(site.client.post(f"/api/events/{wrong}/confirm", json={"employee_id": "E1"}, headers=admin), 400)
    assert error.startswith(f"event {wrong}'s face") and "score" in error
    event = _event(site.database, crop=face("Colin_Powell", 4))
    response = site.client.post(f"/api/events/{event}/confirm", json={"employee_id": "E1"}, headers=admin)
    assert response.status_code == 200, response.text
    done = response.json()
    assert (
        done["employee_id"] == "E1"
        and done["score"] >= done["review_threshold"]
        and done["nearest_other"]["employee_id"] == "E2"
    )
    rows = {row["id"]: row for row in site.client.get("/api/events", headers=admin).json()["events"]}
    assert rows[event]["confirmed_as"] == "E1" and rows[wrong]["confirmed_as"] is None
    again = site.client.post(f"/api/events/{event}/confirm", json={"employee_id": "E1"}, headers=admin)
    assert "already confirmed as E1" in refused(again, 400)
    undone = site.client.delete(f"/api/events/{event}/confirm", headers=admin).json()
    assert undone == {"event_id": event, "employee_id": "E1", "template_ids": [done["template_id"]]}
    assert [t.origin for t in show_person(site.database, "E1").templates] == ["photo", "photo"]
    trail = [
        (e.action, e.actor, json.loads(e.detail)["event"])
        for e in audit_trail(site.database, "E1")
        if e.action != "enrol"
    ]
    assert trail == [("confirm_event", "api:door-admin", event), ("undo_confirm", "api:door-admin", event)]
