"""/api/people through the enrolment code: listing with search and paging, a good enrolment from two LFW photos,
and bad uploads refused (400, 413, 415, 422) in one line with nothing stored."""

from __future__ import annotations

import io
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from service_site import Site, bearer, open_site, site_settings

from enrollment.audit import audit_trail
from enrollment.roster import list_people
from gate.store.schema import Person


def _png(size: int = 160, seed: int = 0) -> bytes:
    """A real image without a face: smooth noise."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).resize((size, size)).save(out, format="PNG")
    return out.getvalue()


def _enrol(site: Site, files: list[tuple[str, bytes, str]], employee_id: str = "E042", name: str = "Ada") -> dict:
    response = site.client.post(
        "/api/people",
        headers=bearer(site.admin_token),
        data={"employee_id": employee_id, "name": name},
        files=[("photos", file) for file in files],
    )
    return {"status": response.status_code, **response.json()}


def _assert_nothing_stored(site: Site) -> None:
    assert list_people(site.database) == []
    listed = site.client.get("/api/people", headers=bearer(site.admin_token)).json()
    assert listed["total"] == 0 and listed["people"] == []


def _one_line(body: dict) -> str:
    assert body["error"] and "\n" not in body["error"]
    return body["error"]


def test_not_an_image_is_415(site: Site) -> None:
    body = _enrol(site, [("notes.txt", b"hello", "text/plain")])
    assert body["status"] == 415 and "notes.txt" in _one_line(body) and "text/plain" in body["error"]
    _assert_nothing_stored(site)


def test_an_unreadable_image_is_422_named_by_its_upload_name_with_every_outcome(site: Site) -> None:
    body = _enrol(site, [("good.png", _png(), "image/png"), ("broken.jpg", b"\xff\xd8\xff not a jpeg", "image/jpeg")])
    assert body["status"] == 422 and _one_line(body).startswith("broken.jpg") and "facegate-upload" not in body["error"]
    assert [(o["photo"], o["status"]) for o in body["outcomes"]] == [
        ("good.png", "rejected"),
        ("broken.jpg", "rejected"),
    ]
    assert body["outcomes"][0]["reason"].startswith("not added") and "facegate-upload" not in str(body["outcomes"])
    _assert_nothing_stored(site)


@pytest.fixture
def small_site(tmp_path: Path, untrained_card: Path) -> Iterator[Site]:
    yield from open_site(site_settings(tmp_path, untrained_card, max_upload_mb=0.05))  # about 52 kB


def test_photos_over_the_size_limit_are_413(small_site: Site) -> None:
    photos = [(f"{i}.png", _png(200, seed=i), "image/png") for i in range(4)]
    assert 0.05 * 2**20 < sum(len(photo) for _, photo, _ in photos) < 2**20  # read, then found too large
    body = _enrol(small_site, photos)
    assert body["status"] == 413 and "max_upload_mb" in _one_line(body)
    _assert_nothing_stored(small_site)


def test_a_request_declaring_more_than_the_limit_is_413_unread(small_site: Site) -> None:
    body = _enrol(small_site, [("big.png", b"\x89PNG" + bytes(1_200_000), "image/png")])
    assert body["status"] == 413 and "max_upload_mb" in _one_line(body)
    _assert_nothing_stored(small_site)


def test_a_form_without_employee_id_or_photos_is_refused(site: Site) -> None:
    response = site.client.post("/api/people", headers=bearer(site.admin_token), files={"photos": ("a.png", _png())})
    assert response.status_code == 422 and _one_line(response.json()).startswith("employee_id")
    response = site.client.post("/api/people", headers=bearer(site.admin_token), data={"employee_id": "E1"})
    assert response.status_code == 422 and "no photos" in _one_line(response.json())
    assert response.json()["outcomes"] == []
    _assert_nothing_stored(site)


def test_a_photo_without_a_face_is_refused_with_its_outcome(site: Site) -> None:
    body = _enrol(site, [("wall.png", _png(), "image/png")])
    assert body["status"] == 422 and "no usable photo" in _one_line(body)
    assert body["outcomes"] == [{"photo": "wall.png", "status": "rejected", "reason": "NO_FACE"}]
    _assert_nothing_stored(site)


def test_people_list_searches_and_pages(site: Site) -> None:
    with site.database.session() as session:
        session.add_all(Person(employee_id=f"E{i:03d}", name=name) for i, name in enumerate(["Ada", "Bob", "Adam"]))
    auth = bearer(site.viewer_token)
    page = site.client.get("/api/people", params={"search": "ad"}, headers=auth).json()
    assert page["total"] == 2 and [p["name"] for p in page["people"]] == ["Ada", "Adam"]
    page = site.client.get("/api/people", params={"offset": 1, "limit": 1}, headers=auth).json()
    assert page["total"] == 3 and [p["employee_id"] for p in page["people"]] == ["E001"]
    assert site.client.get("/api/people", params={"limit": 0}, headers=auth).status_code == 422


def test_enrolment_through_the_api_then_show_and_remove(site: Site, lfw_root: Path) -> None:
    photos = sorted((lfw_root / "Ariel_Sharon").glob("*.jpg"))[:2]
    files = [(photo.name, photo.read_bytes(), "image/jpeg") for photo in photos]
    body = _enrol(site, [*files, files[0]])
    assert body["status"] == 200, body
    assert body["created"] and body["added"] == 2
    assert [(o["photo"], o["status"]) for o in body["outcomes"]] == [
        (photos[0].name, "added"),
        (photos[1].name, "added"),
        (photos[0].name, "duplicate"),
    ]
    auth = bearer(site.viewer_token)
    listed = site.client.get("/api/people", headers=auth).json()["people"]
    assert [(p["employee_id"], p["name"], p["templates"]) for p in listed] == [("E042", "Ada", 2)]
    shown = site.client.get("/api/people/E042", headers=auth).json()
    assert [t["source"] for t in shown["templates"]] == [p.name for p in photos] and shown["model_ids"] == [
        "untrained-test"
    ]
    face = site.client.get("/api/people/E042/face", headers=auth)
    assert (face.status_code, face.headers["content-type"]) == (200, "image/webp")
    assert "private" in face.headers["cache-control"]  # a face: no shared cache keeps it
    assert np.asarray(Image.open(io.BytesIO(face.content))).shape[2] == 3  # a colour image the browser can draw
    removed = site.client.delete("/api/people/E042", headers=bearer(site.admin_token)).json()
    assert removed == {"removed": "E042", "name": "Ada", "templates": 2}
    assert site.client.get("/api/people/E042", headers=auth).status_code == 404
    assert site.client.get("/api/people/E042/face", headers=auth).status_code == 404
    trail = sorted((entry.action, entry.actor) for entry in audit_trail(site.database, "E042"))
    assert trail == [("enrol", "api:door-admin"), ("remove", "api:door-admin")]  # the token, not the OS user


def test_deactivate_and_reactivate_through_the_api_admins_only(site: Site) -> None:
    with site.database.session() as session:
        session.add(Person(employee_id="E007", name="Bond"))
    admin, viewer = bearer(site.admin_token), bearer(site.viewer_token)
    assert site.client.post("/api/people/E007/deactivate", headers=viewer).status_code == 403
    body = site.client.post("/api/people/E007/deactivate", headers=admin).json()
    assert body["employee_id"] == "E007" and body["active"] is False
    assert site.client.get("/api/people/E007", headers=viewer).json()["active"] is False
    assert site.client.post("/api/people/E007/reactivate", headers=admin).json()["active"] is True
    assert site.client.post("/api/people/NOBODY/deactivate", headers=admin).status_code == 404
    actions = sorted(entry.action for entry in audit_trail(site.database, "E007"))
    assert actions == ["deactivate", "reactivate"]


REFUSED_IDS = ["E\u200b001", "E\n01", "..\\x", "../../x", "\u202eE001", "<svg/onload=alert(1)>", " ", "E" * 65]


def test_an_id_the_rule_refuses_is_422_in_one_line_in_the_path_and_the_form(site: Site) -> None:
    with site.database.session() as session:
        session.add(Person(employee_id="E001", name="Ada"))
    admin = bearer(site.admin_token)
    for raw in REFUSED_IDS:
        path = urllib.parse.quote(raw, safe="")
        if "/" not in raw:  # a slash, even encoded, ends the path segment: no route (404), tried in the form
            for method, url in [("GET", f"/api/people/{path}"), ("DELETE", f"/api/people/{path}")]:
                response = site.client.request(method, url, headers=admin)
                assert response.status_code == 422 and "employee id" in _one_line(response.json()), (raw, response.text)
        body = _enrol(site, [("wall.png", _png(), "image/png")], employee_id=raw)
        assert body["status"] == 422 and "employee id" in _one_line(body) and "outcomes" not in body, (raw, body)
    assert [p.employee_id for p in list_people(site.database)] == ["E001"]  # E\u200b001 did not reach E001


def test_an_id_reaches_its_person_in_any_unicode_spelling(site: Site) -> None:
    composed = unicodedata.normalize("NFC", "\u00c9mile-01")
    with site.database.session() as session:
        session.add(Person(employee_id=composed, name="\u00c9mile"))
    decomposed = urllib.parse.quote(unicodedata.normalize("NFD", composed), safe="")
    response = site.client.post(f"/api/people/{decomposed}/deactivate", headers=bearer(site.admin_token))
    assert response.status_code == 200 and response.json()["employee_id"] == composed
    assert site.client.get(f"/api/people/{decomposed}", headers=bearer(site.viewer_token)).json()["active"] is False


def test_an_unknown_person_is_404_in_the_apis_terms(site: Site) -> None:
    response = site.client.get("/api/people/NOBODY", headers=bearer(site.viewer_token))
    assert response.status_code == 404 and _one_line(response.json()) == "no person with employee id 'NOBODY'"


def test_every_refused_enrolment_is_422_with_each_photos_outcome_in_the_apis_terms(site: Site, lfw_root: Path) -> None:
    photo = sorted((lfw_root / "Ariel_Sharon").glob("*.jpg"))[0].read_bytes()
    assert _enrol(site, [("sharon.jpg", photo, "image/jpeg")], "E042", "Ariel")["status"] == 200
    again, wall = ("again.jpg", photo, "image/jpeg"), ("wall.png", _png(), "image/png")
    nameless = _enrol(site, [again, wall], "E043", name="")
    assert nameless["status"] == 422 and _one_line(nameless).startswith("E043 is not enrolled yet")
    assert "send their name in the name field" in nameless["error"] and "--" not in nameless["error"]
    assert [(o["photo"], o["status"]) for o in nameless["outcomes"]] == [
        ("again.jpg", "rejected"),
        ("wall.png", "rejected"),
    ]
    assert nameless["outcomes"][1]["reason"] == "NO_FACE"
    alike = _enrol(site, [again, wall], "E043", name="Someone Else")
    assert alike["status"] == 422 and _one_line(alike).startswith("again.jpg looks like enrolled E042 (Ariel)")
    assert alike["error"].endswith("if they are different people, send force=true") and "--" not in alike["error"]
    assert [(o["photo"], o["reason"].split(":")[0]) for o in alike["outcomes"]] == [
        ("again.jpg", "looks like enrolled E042 (Ariel)"),
        ("wall.png", "NO_FACE"),
    ]
    renamed = _enrol(site, [again, wall], "E042", name="Other")
    assert renamed["status"] == 422 and _one_line(renamed) == "E042 is enrolled as 'Ariel', not 'Other'"
    assert [o["photo"] for o in renamed["outcomes"]] == ["again.jpg", "wall.png"]
    assert [p.employee_id for p in list_people(site.database)] == ["E042"]
    response = site.client.post(
        "/api/people",
        headers=bearer(site.admin_token),
        data={"employee_id": "E043", "name": "Someone Else", "force": "true"},
        files=[("photos", again)],
    )
    assert response.status_code == 200 and response.json()["added"] == 1
