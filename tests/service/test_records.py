"""/api/events (JSON pages and CSV), /api/gates and /api/model, read by a viewer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from service_site import Site, bearer

from gate.store import AccessEventRecord, Heartbeat, utcnow

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


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


def test_gates_online_and_offline(site: Site) -> None:
    now = utcnow()
    site.database.beat(Heartbeat("front", "host-a", now - timedelta(hours=1), now, 900, 15.0, "granted", now))
    site.database.beat(Heartbeat("back", "host-b", now - timedelta(hours=1), now - timedelta(minutes=5), 10, 12.0))
    gates = site.client.get("/api/gates", headers=bearer(site.viewer_token)).json()["gates"]
    assert [(g["gate_id"], g["online"], g["last_decision"]) for g in gates] == [
        ("back", False, None),
        ("front", True, "granted"),
    ]


def test_model_gives_its_thresholds_and_the_one_in_use(site: Site) -> None:
    model = site.client.get("/api/model", headers=bearer(site.viewer_token)).json()
    assert model["model_id"] == "untrained-test"
    assert model["thresholds"] == {"0.01": 0.5, "0.001": 0.6, "0.0001": 0.7}
    assert (model["target_far"], model["threshold"], model["threshold_source"]) == ("0.0001", 0.7, "card")


def test_openapi_docs_list_the_endpoints(site: Site) -> None:
    paths = site.client.get("/openapi.json").json()["paths"]
    assert {"/api/people", "/api/people/{employee_id}", "/api/events", "/api/events.csv", "/api/gates"} <= set(paths)
    assert site.client.get("/docs").status_code == 200
