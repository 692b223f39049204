"""`facegate events` (the access log read back, filtered and exported)
and `facegate gates` (each gate running, stopped or lost, and its camera)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facegate.cli import app
from gate.errors import FaceGateError
from gate.store.database import Database
from gate.store.event_log import Journal
from gate.store.events import AccessEventRecord
from gate.store.gate_status import Heartbeat


@pytest.fixture
def config(tmp_path: Path) -> Path:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    for hour, gate, who, decision, reason in [
        (8, "front", "E1", "granted", "GRANTED"),
        (9, "front", None, "denied", "BELOW_THRESHOLD"),
        (10, "back", "E1", "denied", "DOOR_FAILED"),
        (11, "back", "E2", "granted", "GRANTED"),
    ]:
        time = datetime(2026, 11, 29, hour, tzinfo=UTC)
        database.record_event(AccessEventRecord(time, gate, who, 0.95 if who else 0.8, decision, reason))
    database.close()
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "gate.db"}"\n', encoding="utf-8")
    return path


def run(config: Path, *args: str) -> str:
    outcome = CliRunner().invoke(app, ["--config", str(config), "events", *args])
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise outcome.exception
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def test_events_newest_first_filtered_by_person_decision_gate_and_time(config: Path) -> None:
    table = run(config).splitlines()
    assert len(table) == 5 and table[1].startswith("2026-11-29 11:00:00") and "DOOR_FAILED" in table[2]
    rows = list(csv.DictReader(io.StringIO(run(config, "--person", "E1", "--format", "csv"))))
    assert [(r["gate_id"], r["decision"], r["reason"]) for r in rows] == [
        ("back", "denied", "DOOR_FAILED"),
        ("front", "granted", "GRANTED"),
    ]
    granted = json.loads(run(config, "--decision", "granted", "--gate", "back", "--format", "json"))
    assert [(e["employee_id"], e["time"]) for e in granted] == [("E2", "2026-11-29T11:00:00+00:00")]
    window = json.loads(run(config, "--since", "2026-11-29T09:00", "--until", "2026-11-29T11:00", "--format", "json"))
    assert [e["reason"] for e in window] == ["DOOR_FAILED", "BELOW_THRESHOLD"]


def test_events_export_to_a_file_and_bad_options_are_one_line(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "log.csv"
    assert "written" in run(config, "--format", "csv", "--out", str(out))
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == "time,gate_id,employee_id,score,decision,reason,candidate_id,event_uid,door,claimed_id"
    for args, message in [
        (["--since", "yesterday"], "--since 'yesterday': expected an ISO date"),
        (["--format", "xml"], "--format must be one of table, csv, json"),
        (["--decision", "maybe"], "--decision must be granted or denied"),
    ]:
        with pytest.raises(FaceGateError, match=message):
            run(config, *args)


def test_events_says_when_decisions_wait_in_the_journal(config: Path, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "events.journal")
    journal.append(AccessEventRecord(datetime.now(UTC), "front", "E3", 0.9, "granted", "GRANTED", event_uid="c" * 32))
    config.write_text(config.read_text() + f'journal_path = "{journal.path}"\n', encoding="utf-8")
    outcome = CliRunner().invoke(app, ["--config", str(config), "events"])
    assert outcome.exit_code == 0 and "wait in" in outcome.output and str(journal.path) in outcome.output


def test_gates_lists_each_gate_running_stopped_or_lost_with_its_camera(config: Path) -> None:
    database = Database(f"sqlite:///{config.parent / 'gate.db'}")
    now = datetime.now(UTC)
    database.beat(Heartbeat("front", "host-a", now, now, 1500, 14.8, "granted", now, camera="streaming"))
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    database.beat(Heartbeat("back", "host-b", long_ago, long_ago, 10, 0.0, camera="lost"))  # crashed, long ago
    database.beat(Heartbeat("side", "host-c", long_ago, long_ago, 99, 0.0, state="stopped", camera="ended"))
    database.beat(Heartbeat("yard", "host-d", long_ago, long_ago, 99, 0.0, state="stopped", camera="streaming"))
    outcome = CliRunner().invoke(app, ["--config", str(config), "gates"])
    assert outcome.exit_code == 0, outcome.output
    header, *lines = outcome.output.splitlines()
    assert header.split()[:3] == ["GATE", "STATE", "CAMERA"]
    rows = {line.split()[0]: tuple(line.split()[1:3]) for line in lines}
    assert rows == {
        "back": ("lost", "lost"),
        "front": ("running", "streaming"),
        "side": ("stopped", "ended"),  # its recording ended
        "yard": ("stopped", "off"),  # stopped by a signal: the gate closed its camera
    }
