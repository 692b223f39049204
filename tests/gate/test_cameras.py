"""Several cameras, one gate process (gate/runtime/cameras.py): one detector and embedder, a loop and a door per camera,
each camera read by its own thread; a stalled camera holds up no other."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from test_loop import SPEC, gate_settings, open_gate

from evaluation.paced_stream import PacedStream
from evaluation.turnstile import render_turnstile
from gate.config import camera_settings, settings_from_dict
from gate.door.actuators import HoldsNothing
from gate.door.requests import DoorOutcome, DoorRequest
from gate.runtime.cameras import Handoff, run_cameras
from gate.runtime.parts import Runtime
from gate.vision.imageio import load_image
from gate.vision.sources import Frame, LiveSource, VideoFileSource

pytestmark = pytest.mark.slow  # real MTCNN on three cameras, one of them a live stream (about half a minute)


def _frame(index: int) -> Frame:
    return Frame(index, index / 10, None)  # type: ignore[arg-type]


def test_a_live_camera_hands_over_its_newest_frame_a_recording_every_frame() -> None:
    live, recording, stop = Handoff(True, threading.Event()), Handoff(False, threading.Event()), threading.Event()
    for index in range(3):
        live.put(_frame(index), stop)
    assert (live.take().index, live.take(), live.replaced) == (2, None, 2)  # type: ignore[union-attr]
    writer = threading.Thread(target=lambda: [recording.put(_frame(i), stop) for i in range(3)])
    writer.start()
    taken = []
    while len(taken) < 3:
        frame = recording.take()
        if frame is not None:
            taken.append(frame.index)
        time.sleep(0.01)
    writer.join()
    recording.end()
    assert taken == [0, 1, 2] and recording.finished and not live.finished


def test_one_process_serves_several_cameras_and_a_stalled_one_holds_up_no_other(
    tmp_path: Path, embedder, pipeline, people
) -> None:
    base = gate_settings(tmp_path, threshold=-1.0, allow_loose_threshold=True)
    database, gallery = open_gate(base, embedder, pipeline, enrol=(people[0][0], people[0][1][1]))
    videos = {
        gate: render_turnstile([(name, load_image(paths[0]))], tmp_path / f"{gate}.mp4", SPEC)
        for gate, (name, paths) in zip(("north", "south"), people[:2], strict=True)
    }
    data = base.model_dump(exclude={"base_dir", "cameras"}) | {
        "cameras": [{"camera": {"gate_id": gate, "source": str(path)}} for gate, (path, _) in videos.items()]
        + [{"camera": {"gate_id": "stalled", "source": "unused", "reconnect_initial_s": 0.1}}]  # retried for ever
    }
    cameras = camera_settings(settings_from_dict(data, base_dir=tmp_path))
    runtime = Runtime(base, embedder, pipeline, database, gallery)
    with PacedStream(fps=SPEC.fps, size=(SPEC.width, SPEC.height)) as hung:
        live = LiveSource(hung.url, cameras[2].camera)
        hung.stall()  # from now on its reads block: a camera hung mid-stream

        def release_when_both_decided() -> None:  # then the hung camera goes away, and is closed (a camera that
            deadline = time.monotonic() + 120  # gave up would end the run for all: the recordings are played out)
            while time.monotonic() < deadline and {e.gate_id for e in database.events(100)} != {"north", "south"}:
                time.sleep(0.2)
            hung.close()
            time.sleep(0.3)  # the hung read returns, a reconnect is tried
            live.close()

        threading.Thread(target=release_when_both_decided, daemon=True).start()
        sources = [VideoFileSource(path) for path, _ in videos.values()] + [live]
        summaries = run_cameras(
            [(replace(runtime, settings=s), source, Doors()) for s, source in zip(cameras, sources, strict=True)]
        )
    north, south, stalled = summaries
    for summary, (_, walks) in zip((north, south), videos.values(), strict=True):
        assert summary.frames == summary.processed == walks[-1].last_frame + 1 + round(SPEC.gap_s * SPEC.fps)
        assert [d.verdict for d in summary.decisions] == ["GRANTED"]  # threshold -1: the enrolled person's vote
    assert stalled.decisions == [] and stalled.frames < north.frames
    assert north.frame_ages_s == [] and len(stalled.frame_ages_s) == stalled.frames  # ages: a live camera's only
    assert all(0 <= age < 30 for age in stalled.frame_ages_s)
    events = database.events(100)
    assert sorted(e.gate_id for e in events) == ["north", "south"]
    assert {s.gate_id for s in database.gate_statuses()} == {"north", "south", "stalled"}


class Doors(HoldsNothing):
    def open(self, request: DoorRequest) -> DoorOutcome:
        return DoorOutcome.OPENED
