"""A person's page through the API: details with origins, strength and audit; a template's face; removing one
template and renaming (admin with CSRF only), and what an attacker tries: a viewer, no CSRF token, another
person's template, huge and non-numeric ids."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from service_site import Site, bearer, refused, sign_in

from gate.store.schema import Person, Template

DIM = 128
MODEL = "untrained-test"  # the untrained card's model id


def _webp(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (shade, shade, shade)).save(out, format="WEBP", lossless=True)
    return out.getvalue()


def _unit(axis: int, lean: float = 0.0) -> bytes:
    row = np.zeros(DIM, dtype=np.float32)
    row[axis], row[DIM - 1 - axis] = 1.0, lean
    return (row / np.linalg.norm(row)).tobytes()


def _people(site: Site) -> dict[str, list[int]]:
    """E042 with three templates (a photo with its face, a capture, a confirmed event's face) and E017 with one;
    their template ids."""
    rows = {"E042": [(_unit(0), "photo", None), (_unit(0, 0.1), "capture", None), (_unit(0, 0.2), "event", 5)]}
    rows["E017"] = [(_unit(1), "photo", None)]
    with site.database.session() as session:
        for employee_id, faces in rows.items():
            person = Person(employee_id=employee_id, name=f"Name {employee_id}")
            for i, (vector, origin, event_id) in enumerate(faces):
                person.templates.append(
                    Template(
                        embedding=vector, embedding_size=DIM, model_id=MODEL, image_sha256=f"{employee_id}-{i}",
                        quality=0.9, source=f"{i}.jpg", crop=_webp(40 * i) if i != 1 else None, origin=origin,
                        event_id=event_id,
                    )
                )  # fmt: skip
            session.add(person)
        session.flush()
        found = {e: [t.id for t in session.query(Template).join(Person).filter(Person.employee_id == e)] for e in rows}
    return found


def test_person_details_carry_origins_strength_and_audit(site: Site) -> None:
    ids = _people(site)
    body = site.client.get("/api/people/E042", headers=bearer(site.viewer_token)).json()
    assert [(t["origin"], t["event_id"]) for t in body["templates"]] == [
        ("photo", None),
        ("capture", None),
        ("event", 5),
    ]
    assert body["strength"]["weak"] is False and body["strength"]["templates"] == 3 and body["audit"] == []
    assert body["strength"]["own_worst"] > 0.97 and body["strength"]["nearest_id"] == "E017"
    lone = site.client.get("/api/people/E017", headers=bearer(site.viewer_token)).json()["strength"]
    assert lone["weak"] and "only one template" in lone["reasons"][0]
    listed = site.client.get("/api/people", headers=bearer(site.viewer_token)).json()["people"]
    assert {p["employee_id"]: p["strength"]["weak"] for p in listed} == {"E017": True, "E042": False}
    face = site.client.get(f"/api/people/E042/templates/{ids['E042'][2]}/face", headers=bearer(site.viewer_token))
    assert face.status_code == 200 and face.headers["content-type"] == "image/webp" and face.content == _webp(80)
    assert "private" in face.headers["cache-control"]
    refused(site.client.get(f"/api/people/E042/templates/{ids['E042'][1]}/face", headers=bearer(site.admin_token)), 404)


def test_an_admin_removes_one_template_and_renames_with_the_csrf_token(site: Site) -> None:
    ids = _people(site)
    csrf = {"X-CSRF-Token": sign_in(site)}
    removed = site.client.delete(f"/api/people/E042/templates/{ids['E042'][0]}", headers=csrf)
    assert removed.status_code == 200 and removed.json()["template"]["id"] == ids["E042"][0]
    renamed = site.client.patch("/api/people/E042", json={"name": " Ada Lovelace "}, headers=csrf)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Ada Lovelace"
    body = site.client.get("/api/people/E042").json()
    assert body["name"] == "Ada Lovelace" and [t["id"] for t in body["templates"]] == ids["E042"][1:]
    assert [(a["action"], a["actor"]) for a in body["audit"]] == [("remove_template", "api:ada"), ("rename", "api:ada")]
    last = f"/api/people/E017/templates/{ids['E017'][0]}"
    assert "remove the person instead" in refused(site.client.delete(last, headers=csrf), 400)


def test_person_changes_refused_to_a_viewer_without_csrf_and_across_people(site: Site) -> None:
    ids = _people(site)
    mine = f"/api/people/E042/templates/{ids['E042'][0]}"
    refused(site.client.delete(mine, headers=bearer(site.viewer_token)), 403)
    refused(site.client.patch("/api/people/E042", json={"name": "X"}, headers=bearer(site.viewer_token)), 403)
    csrf = {"X-CSRF-Token": sign_in(site)}
    refused(site.client.delete(mine), 403)  # the admin's cookie without the CSRF header
    refused(site.client.patch("/api/people/E042", json={"name": "X"}, headers={"X-CSRF-Token": "guessed"}), 403)
    theirs = f"/api/people/E017/templates/{ids['E042'][0]}"  # E042's template under E017's id
    assert "has no template" in refused(site.client.delete(theirs, headers=csrf), 404)
    refused(site.client.get(f"{theirs}/face", headers=csrf), 404)
    for bad in ("abc", "0", "-1", str(2**63), "9" * 400, "1.5"):
        refused(site.client.delete(f"/api/people/E042/templates/{bad}", headers=csrf), 422)
        refused(site.client.get(f"/api/people/E042/templates/{bad}/face", headers=csrf), 422)
    refused(site.client.delete(f"/api/people/E042/templates/{2**63 - 1}", headers=csrf), 404)
    for name in ("", "x" * 201, "   ", "a\u0000b"):
        refused(
            site.client.patch("/api/people/E042", json={"name": name}, headers=csrf), 422 if len(name) != 3 else 400
        )
    refused(site.client.patch("/api/people/E042", json={"name": ["list"]}, headers=csrf), 422)
    refused(site.client.patch("/api/people/NOBODY", json={"name": "Someone"}, headers=csrf), 404)
    assert len(site.client.get("/api/people/E042", headers=csrf).json()["templates"]) == 3
    assert site.client.get("/api/people/E042").json()["name"] == "Name E042"
    site.client.cookies.clear()
    refused(site.client.get(f"/api/people/E042/templates/{ids['E042'][0]}/face"), 401)
