"""A running gate's heartbeat: written when due, with its pace, last decision and camera state; beat by the pulse
while no frame comes; "stopped" after a clean stop, "lost" once a running gate's beat goes stale (a real
`facegate run` killed with SIGKILL reads lost, one stopped with SIGTERM reads stopped); a refusing database is
skipped."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from facegate_process import facegate_command
from waiting import wait_until

from evaluation.paced_stream import PacedStream
from gate.store.database import Database
from gate.store.gate_status import HEARTBEAT_S, OFFLINE_AFTER_S, Heartbeat
from gate.store.heartbeat import HeartbeatWriter
from gate.vision.camera_state import CameraState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Camera:
    """A frame source's state, as the heartbeat reads it (gate.vision.sources.FrameSource.state)."""

    def __init__(self) -> None:
        self.state: CameraState = "waiting"


def test_a_beat_is_written_at_once_then_every_heartbeat_s_with_the_pace_between(tmp_path: Path) -> None:
    database, clock = Database(f"sqlite:///{tmp_path / 'gate.db'}"), Clock()
    writer = HeartbeatWriter(database, "front", clock)
    writer.tick(frames=0)
    clock.now += HEARTBEAT_S / 2
    writer.tick(frames=30)  # not due yet
    assert writer.written == 1 and database.gate_statuses()[0].frames == 0
    writer.decided("granted")
    clock.now += HEARTBEAT_S / 2
    writer.tick(frames=75)
    [status] = database.gate_statuses()
    assert writer.written == 2 and (status.frames, status.fps, status.last_decision) == (75, 15.0, "granted")
    assert (status.state, status.camera) == ("running", None)


def test_a_database_that_refuses_the_beat_does_not_stop_the_gate(tmp_path: Path) -> None:
    Database(f"sqlite:///{tmp_path / 'gate.db'}")
    read_only = Database(f"sqlite:///file:{tmp_path / 'gate.db'}?mode=ro&uri=true")
    writer = HeartbeatWriter(read_only, "front", Clock())
    writer.tick(frames=10)
    writer.tick(frames=20, force=True)
    writer.stopped(frames=20)
    assert writer.written == 0


def test_the_pulse_beats_while_no_frame_comes_with_the_camera_state_and_a_clean_stop_says_stopped(
    tmp_path: Path,
) -> None:
    database, clock, camera = Database(f"sqlite:///{tmp_path / 'gate.db'}"), Clock(), Camera()
    writer = HeartbeatWriter(database, "front", clock, camera=camera, pulse_s=0.02)
    writer.start()  # the first beat at once: the camera not reached yet
    [first] = database.gate_statuses()
    assert (first.state, first.camera, writer.written) == ("running", "waiting", 1)
    camera.state = "streaming"
    writer.tick(frames=50)  # a frame: not due yet
    camera.state = "lost"  # ... and no frame since: only the pulse can tell
    clock.now += HEARTBEAT_S
    wait_until(lambda: writer.written == 2, 5, "the pulse's beat")
    [beat] = database.gate_statuses()
    assert (beat.state, beat.camera, beat.frames, beat.fps) == ("running", "lost", 50, 10.0)
    writer.stopped(frames=50)
    [last] = database.gate_statuses()
    assert (last.state, last.camera, writer.written) == ("stopped", "lost", 3)
    clock.now += 10 * HEARTBEAT_S
    time.sleep(0.1)
    assert writer.written == 3  # the pulse ended with the stop
    assert last.status(last.last_seen + timedelta(days=1)) == "stopped" and not last.online(last.last_seen)


def test_a_running_gate_whose_beat_is_older_than_offline_after_s_reads_lost(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    writer = HeartbeatWriter(database, "front", Clock(), camera=Camera())
    writer.start()
    writer.halt()  # a crash: the pulse ends, no last beat
    [beat] = database.gate_statuses()
    seen = beat.last_seen
    assert beat.status(seen + timedelta(seconds=OFFLINE_AFTER_S)) == "running"
    assert beat.status(seen + timedelta(seconds=OFFLINE_AFTER_S + 0.1)) == "lost"
    assert beat.online(seen) and not beat.online(seen + timedelta(seconds=OFFLINE_AFTER_S + 0.1))
    stopped = Heartbeat("back", "host", seen, seen, 0, 0.0, state="stopped")
    assert stopped.status(seen) == "stopped"


def gate_config(folder: Path, gate_id: str, card: Path) -> Path:
    """One gate (the untrained model: no decision matters here) with snapshots on, every second."""
    path = folder / f"{gate_id}.toml"
    path.write_text(
        f'[camera]\ngate_id = "{gate_id}"\n[model]\npath = "{card}"\n'
        f'[database]\nurl = "sqlite:///{folder / "gate.db"}"\njournal_path = "{folder / gate_id}.journal"\n'
        f'[gallery]\nindex_path = "{folder / "gallery.faiss"}"\n[snapshot]\nenabled = true\nevery_s = 1.0\n',
        encoding="utf-8",
    )
    return path


def streaming(database: Database, gate_ids: tuple[str, ...]) -> bool:
    """Each gate's heartbeat says it streams, and its snapshot is stored."""
    beats = {status.gate_id: status for status in database.gate_statuses()}
    return all(
        gate in beats and beats[gate].camera == "streaming" and beats[gate].frames > 0 and database.snapshot(gate)
        for gate in gate_ids
    )


@pytest.mark.slow  # two `facegate run` processes at once (about 45 s on two busy cores)
def test_a_gate_killed_reads_lost_once_its_beat_is_stale_and_one_stopped_with_sigterm_reads_stopped(
    tmp_path: Path, untrained_card: Path
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    stream = PacedStream(fps=10, size=(320, 240))
    gates = {
        gate_id: subprocess.Popen(
            facegate_command("--config", gate_config(tmp_path, gate_id, untrained_card), "run", "--source", stream.url),
            stderr=subprocess.PIPE,
            text=True,
        )
        for gate_id in ("killed", "stopped")
    }
    try:
        wait_until(lambda: streaming(database, tuple(gates)), 120, "both gates' heartbeats while streaming")
        gates["killed"].send_signal(signal.SIGKILL)
        gates["stopped"].send_signal(signal.SIGTERM)
        outcomes = {gate_id: gate.wait(timeout=60) for gate_id, gate in gates.items()}
    finally:
        for gate in gates.values():
            if gate.poll() is None:
                gate.kill()
        stream.close()
    assert outcomes == {"killed": -signal.SIGKILL, "stopped": 0}, gates["stopped"].communicate()[1][-2000:]
    beats = {status.gate_id: status for status in database.gate_statuses()}
    killed, stopped = beats["killed"], beats["stopped"]
    assert killed.state == "running" and killed.status(killed.last_seen) == "running"  # as it was when it died
    assert killed.status(killed.last_seen + timedelta(seconds=OFFLINE_AFTER_S + 1)) == "lost"
    assert stopped.state == "stopped" and stopped.status(stopped.last_seen + timedelta(days=1)) == "stopped"
    assert database.snapshot("stopped") is None  # deleted on the clean stop
    assert database.snapshot("killed") is not None  # a killed gate cannot clean up (the API shows it no more)
