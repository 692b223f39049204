"""/api/events (JSON pages and CSV), /api/gates (and a gate's snapshot) and /api/model, read by a viewer."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image
from service_site import Site, bearer

from gate.store.database import Database
from gate.store.encryption import new_key_text, parse_key
from gate.store.events import AccessEventRecord
from gate.store.gate_status import Heartbeat
from gate.store.schema import utcnow
from gate.store.snapshots import Snapshot

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0 a camera frame"


def _record_events(site: Site) -> None:
    for minute, (gate, person, decision) in enumerate(
        [("front", "E1", "granted"), ("front", None, "denied"), ("back", "E2", "granted"), ("back", "E1", "denied")]
    ):
        reason = "GRANTED" if decision == "granted" else "BELOW_THRESHOLD"
        site.database.record_event(
            AccessEventRecord(START + timedelta(minutes=minute), gate, person, 0.9, decision, reason)
        )


def test_events_filter_and_page_newest_first(site: Site) -> None:
    _record_events(site)
    auth = bearer(site.viewer_token)

    def times(**params: object) -> list[str]:
        response = site.client.get("/api/events", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [event["time"][11:16] for event in response.json()["events"]]

    assert times() == ["08:03", "08:02", "08:01", "08:00"]
    assert times(gate="back") == ["08:03", "08:02"]
    assert times(person="E1", decision="granted") == ["08:00"]
    assert times(since="2026-11-02T08:01", until="2026-11-02T08:03") == ["08:02", "08:01"]
    assert times(offset=1, limit=2) == ["08:02", "08:01"]


def test_events_bad_filters_are_refused_in_one_line(site: Site) -> None:
    auth = bearer(site.viewer_token)
    response = site.client.get("/api/events", params={"since": "yesterday"}, headers=auth)
    assert response.status_code == 400 and response.json()["error"].startswith("since 'yesterday'")
    response = site.client.get("/api/events", params={"decision": "maybe"}, headers=auth)
    assert response.status_code == 422 and "decision" in response.json()["error"]


def test_events_csv_has_a_header_and_the_filtered_rows(site: Site) -> None:
    _record_events(site)
    response = site.client.get("/api/events.csv", params={"decision": "denied"}, headers=bearer(site.viewer_token))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(row["gate_id"], row["employee_id"], row["reason"]) for row in rows] == [
        ("back", "E1", "BELOW_THRESHOLD"),
        ("front", "", "BELOW_THRESHOLD"),
    ]
    assert "crop" not in rows[0]


def test_events_say_whether_their_face_is_kept_and_serve_it(site: Site) -> None:
    face = io.BytesIO()
    Image.new("RGB", (112, 112), (200, 150, 120)).save(face, format="WEBP")
    site.database.record_events(
        [
            AccessEventRecord(START, "front", "E1", 0.9, "granted", "GRANTED", event_uid="a1", crop=face.getvalue()),
            AccessEventRecord(START + timedelta(seconds=1), "front", None, None, "denied", "NO_FACE", event_uid="b2"),
        ],
        [],
    )
    auth = bearer(site.viewer_token)
    listed = site.client.get("/api/events", headers=auth).json()["events"]
    assert [(e["event_uid"], e["face"]) for e in listed] == [("b2", False), ("a1", True)]
    served = site.client.get("/api/events/a1/face", headers=auth)
    assert (served.status_code, served.headers["content-type"], served.content) == (200, "image/webp", face.getvalue())
    missing = site.client.get("/api/events/b2/face", headers=auth)
    assert missing.status_code == 404 and "no face is kept" in missing.json()["error"]
    site.database.forget_event_faces(before=START + timedelta(days=1))  # retention, as [events] keep_days runs it
    assert site.client.get("/api/events/a1/face", headers=auth).status_code == 404


def test_gates_running_stopped_or_lost_with_their_camera_and_snapshot(site: Site) -> None:
    now = utcnow()
    hour_ago = now - timedelta(hours=1)
    site.database.beat(Heartbeat("front", "host-a", hour_ago, now, 900, 15.0, "granted", now, camera="streaming"))
    site.database.beat(Heartbeat("back", "host-b", hour_ago, now - timedelta(minutes=5), 10, 12.0, camera="lost"))
    site.database.beat(Heartbeat("side", "host-c", hour_ago, now, 99, 0.0, state="stopped", camera="ended"))
    site.database.beat(Heartbeat("yard", "host-d", hour_ago, now, 99, 0.0, state="stopped", camera="streaming"))
    for gate in ("front", "back", "side"):  # a lost gate's last picture (a crash leaves it) is not shown
        site.database.put_snapshot(Snapshot(gate, now, JPEG))
    gates = site.client.get("/api/gates", headers=bearer(site.viewer_token)).json()["gates"]
    assert [(g["gate_id"], g["online"], g["state"], g["camera"], g["last_decision"]) for g in gates] == [
        ("back", False, "lost", "lost", None),
        ("front", True, "running", "streaming", "granted"),
        ("side", False, "stopped", "ended", None),  # a recording's end stays ended
        ("yard", False, "stopped", "off", None),  # stopped by a signal: the gate closed its camera
    ]
    assert [g["snapshot_at"] is not None for g in gates] == [False, True, False, False]


def test_a_running_gates_snapshot_is_served_uncached_to_whoever_may_see_event_faces(site: Site) -> None:
    now = utcnow()
    site.database.beat(Heartbeat("front", "host-a", now, now, 900, 15.0, camera="streaming"))
    site.database.beat(Heartbeat("back", "host-b", now, now, 10, 12.0))
    site.database.put_snapshot(Snapshot("front", now, JPEG))
    face = AccessEventRecord(START, "front", "E1", 0.9, "granted", "GRANTED", event_uid="a1", crop=b"RIFF-a-face")
    site.database.record_events([face], [])
    served = site.client.get("/api/gates/front/snapshot", headers=bearer(site.viewer_token))
    assert (served.status_code, served.headers["content-type"], served.content) == (200, "image/jpeg", JPEG)
    assert served.headers["cache-control"] == "no-store"
    callers = {
        "admin": bearer(site.admin_token),
        "viewer": bearer(site.viewer_token),
        "nobody": {},
        "a wrong token": bearer("not-a-token"),
        "not a bearer": {"Authorization": "Basic YWRhOnB3"},
    }
    for caller, headers in callers.items():  # the rule of events' faces, whatever it becomes
        snapshot = site.client.get("/api/gates/front/snapshot", headers=headers).status_code
        face = site.client.get("/api/events/a1/face", headers=headers).status_code
        assert snapshot == face and (snapshot == 200) == (caller in ("admin", "viewer")), caller
    missing = site.client.get("/api/gates/back/snapshot", headers=bearer(site.viewer_token))
    assert missing.status_code == 404 and "no snapshot of gate 'back'" in missing.json()["error"]
    assert site.client.get(f"/api/gates/{'x' * 101}/snapshot", headers=bearer(site.viewer_token)).status_code == 422
    site.database.beat(Heartbeat("front", "host-a", now, utcnow(), 950, 15.0, state="stopped", camera="streaming"))
    assert site.client.get("/api/gates/front/snapshot", headers=bearer(site.viewer_token)).status_code == 404


def test_model_gives_its_thresholds_and_the_one_in_use(site: Site) -> None:
    model = site.client.get("/api/model", headers=bearer(site.viewer_token)).json()
    assert model["model_id"] == "untrained-test"
    assert model["thresholds"] == {"0.01": 0.5, "0.001": 0.6, "0.0001": 0.7}
    assert (model["target_far"], model["threshold"], model["threshold_source"]) == ("0.0001", 0.7, "card")


def test_openapi_docs_list_the_endpoints(site: Site) -> None:
    paths = site.client.get("/openapi.json").json()["paths"]
    assert {"/api/people", "/api/people/{employee_id}", "/api/events", "/api/events.csv", "/api/gates"} <= set(paths)
    docs = site.client.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text  # a site's server may have no internet
    script = re.search(r'src="(/[^"]+swagger-ui-bundle\.js)"', docs.text)
    assert script and site.client.get(script.group(1)).status_code == 200


def test_the_page_and_its_files_are_served_with_a_strict_policy(site: Site) -> None:
    page = site.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>FaceGate</title>" in page.text and "<script>" not in page.text  # no inline script
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg"):
        served = site.client.get(asset)
        assert served.status_code == 200 and served.headers["x-content-type-options"] == "nosniff", asset
        assert served.headers["content-security-policy"] == policy
    assert site.client.get("/static/missing.js").status_code == 404


def test_events_csv_cells_that_a_spreadsheet_would_run_are_quoted(site: Site) -> None:
    formulas = {"gate_id": "=cmd|' /C calc'!A0", "employee_id": "+E1", "candidate_id": "@SUM(A1)", "claimed_id": "-2"}
    site.database.record_event(
        AccessEventRecord(START, decision="denied", reason="CLAIM_UNKNOWN", score=-0.5, **formulas)
    )
    response = site.client.get("/api/events.csv", headers=bearer(site.viewer_token))
    row = next(csv.DictReader(io.StringIO(response.text)))
    assert {key: row[key] for key in formulas} == {key: "'" + value for key, value in formulas.items()}
    assert row["score"] == "-0.5"  # a number stays a number


def test_a_snapshot_sealed_with_another_key_is_not_found(site: Site, tmp_path: Path) -> None:
    """A snapshot written under another key (the key changed, or this server has none) is a 404, not an error: the
    gate replaces it at its next snapshot."""
    now = utcnow()
    site.database.beat(Heartbeat("front", "host-a", now, now, 900, 15.0, camera="streaming"))
    other = Database(site.database.url, parse_key(new_key_text(), "the old key"))
    other.put_snapshot(Snapshot("front", now, JPEG))
    other.close()
    served = site.client.get("/api/gates/front/snapshot", headers=bearer(site.viewer_token))
    assert served.status_code == 404, served.text
    assert served.json()["error"] == "gate 'front''s snapshot cannot be opened with this server's key"
    assert site.client.get("/api/gates", headers=bearer(site.viewer_token)).status_code == 200
    site.database.put_snapshot(Snapshot("front", utcnow(), JPEG + b"!"))  # the gate's next one, with this key
    served = site.client.get("/api/gates/front/snapshot", headers=bearer(site.viewer_token))
    assert (served.status_code, served.content) == (200, JPEG + b"!")
