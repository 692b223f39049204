"""/api/visitors: an admin sees a stranger's two real walk-ups (LFW, the shipped model) as one group, dismisses
another's, enrols the group as a new person; and the attacks: no sign-in, a viewer (strangers' faces are not
theirs to see), a cookie without its CSRF header, lists too long or empty, ids out of range, bad employee ids and
names. Each refusal is one line and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from service_site import Site, bearer, open_site, refused, sign_in, site_settings
from sqlalchemy import select

from enrollment.roster import list_people, show_person
from enrollment.visitors import MAX_EVENT_IDS
from gate.model.card import SHIPPED_CARD
from gate.store.database import Database
from gate.store.events import AccessEventRecord
from gate.store.schema import AccessEvent
from gate.vision.faces import FacePipeline
from gate.vision.imageio import encode_crop, load_image

HUGE = 10**40  # past any 64-bit number


def _event(database: Database, crop: bytes | None = b"not a face", reason: str = "BELOW_THRESHOLD") -> int:
    uid = uuid4().hex
    record = AccessEventRecord(datetime.now(UTC), "front", None, 0.5, "denied", reason, event_uid=uid, crop=crop)
    database.record_event(record)
    with database.session() as session:
        return int(session.scalar(select(AccessEvent.id).where(AccessEvent.event_uid == uid)) or 0)


def _dismissed(database: Database) -> list[int]:
    with database.session() as session:
        return list(session.scalars(select(AccessEvent.id).where(AccessEvent.dismissed_at.is_not(None))))


def _nobody(database: Database) -> bool:
    return list_people(database) == []


def test_the_anonymous_a_viewer_and_a_cookie_without_csrf_arerefused(site: Site) -> None:
    event = _event(site.database)
    dismissal, enrolment = {"event_ids": [event]}, {"event_ids": [event], "employee_id": "E9", "name": "Eve"}
    refused(site.client.get("/api/visitors"), 401)
    refused(site.client.post("/api/visitors/dismiss", json=dismissal), 401)
    refused(site.client.post("/api/visitors/enrol", json=enrolment), 401)
    viewer = bearer(site.viewer_token)
    assert "only an admin sees" in refused(site.client.get("/api/visitors", headers=viewer), 403)
    assert "viewer role" in refused(site.client.post("/api/visitors/dismiss", json=dismissal, headers=viewer), 403)
    refused(site.client.post("/api/visitors/enrol", json=enrolment, headers=viewer), 403)
    sign_in(site, "ada")  # the admin's cookie, but no X-CSRF-Token header: a page elsewhere posting it
    assert site.client.get("/api/visitors").status_code == 200  # reading needs no CSRF header
    assert "X-CSRF-Token" in refused(site.client.post("/api/visitors/dismiss", json=dismissal), 403)
    assert "X-CSRF-Token" in refused(site.client.post("/api/visitors/enrol", json=enrolment), 403)
    site.client.cookies.clear()
    viewer_csrf = sign_in(site, "vic")
    refused(site.client.get("/api/visitors"), 403)
    refused(site.client.post("/api/visitors/dismiss", json=dismissal, headers={"X-CSRF-Token": viewer_csrf}), 403)
    assert _dismissed(site.database) == [] and _nobody(site.database)


BAD_EVENT_LISTS = ([], [0], [-1], [HUGE], ["abc"], [1.5], "1", None, list(range(1, MAX_EVENT_IDS + 2)))
BAD_FIELDS = (
    {"employee_id": ""}, {"employee_id": "E" * 65}, {"employee_id": "E\u200b1"}, {"name": ""}, {"name": "x" * 201}
)  # fmt: skip
BAD_QUERIES = ("days=0", "days=100000", "limit=0", f"limit={HUGE}", "min_size=0", "days=x")


def test_event_lists_ids_names_and_listing_bounds_out_of_range_are_422(site: Site) -> None:
    # one site for every case: the fast lane stays fast
    admin = bearer(site.admin_token)
    for event_ids in BAD_EVENT_LISTS:
        refused(site.client.post("/api/visitors/dismiss", json={"event_ids": event_ids}, headers=admin), 422)
        body = {"event_ids": event_ids, "employee_id": "E9", "name": "Eve"}
        refused(site.client.post("/api/visitors/enrol", json=body, headers=admin), 422)
    event = _event(site.database)
    for fields in BAD_FIELDS:
        body = {"event_ids": [event], "employee_id": "E9", "name": "Eve"} | fields
        refused(site.client.post("/api/visitors/enrol", json=body, headers=admin), 422)
    for query in BAD_QUERIES:
        refused(site.client.get(f"/api/visitors?{query}", headers=admin), 422)
    assert _dismissed(site.database) == [] and _nobody(site.database)


def test_an_event_that_is_no_unknown_visitor_is_not_enrolled(site: Site) -> None:
    granted = _event(site.database, reason="NOT_LIVE")
    body = {"event_ids": [granted], "employee_id": "E9", "name": "Eve"}
    error = refused(site.client.post("/api/visitors/enrol", json=body, headers=bearer(site.admin_token)), 400)
    assert error.startswith(f"event {granted} is not an unknown visitor")


@pytest.fixture
def shipped_site(tmp_path: Path) -> Iterator[Site]:
    yield from open_site(site_settings(tmp_path, SHIPPED_CARD))


@pytest.mark.slow
def test_an_admin_groups_dismisses_and_enrols_real_walk_ups(shipped_site: Site, lfw_root: Path) -> None:
    site, admin = shipped_site, bearer(shipped_site.admin_token)
    pipeline = FacePipeline(template=site.client.app.state.parts.embedder.template)  # type: ignore[attr-defined]

    def face(person: str, number: int) -> bytes:
        found = pipeline.one_face(load_image(lfw_root / person / f"{person}_{number:04d}.jpg"))
        assert not isinstance(found, str)
        return encode_crop(found.crop, 80)

    tony = [_event(site.database, face("Tony_Blair", n)) for n in (1, 3)]
    george = _event(site.database, face("George_W_Bush", 1), reason="UNKNOWN_FACE")
    listed = site.client.get("/api/visitors", headers=admin).json()
    groups = listed["groups"]
    assert [sorted(g["event_ids"]) for g in groups] == [tony, [george]] and listed["days"] == 30
    assert groups[0]["size"] == 2 and groups[0]["representative"] in tony and groups[0]["gates"] == ["front"] * 2
    image = site.client.get(f"/api/events/{groups[0]['representative_uid']}/face", headers=admin)
    assert image.status_code == 200 and image.headers["content-type"] == "image/webp"
    done = site.client.post("/api/visitors/dismiss", json={"event_ids": [george]}, headers=admin)
    assert done.json() == {"dismissed": 1} and _dismissed(site.database) == [george]
    body = {"event_ids": tony, "employee_id": "E050", "name": "Tony"}
    enrolled = site.client.post("/api/visitors/enrol", json=body, headers=admin)
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["created"] and enrolled.json()["added"] == 2
    templates = show_person(site.database, "E050").templates
    assert sorted((t.origin, t.event_id) for t in templates) == [("event", i) for i in tony]
    assert site.client.get("/api/visitors", headers=admin).json()["groups"] == []
