"""Several cameras in one gate process ([[cameras]]): one detector and one embedder serve them all.

Each camera's frames are read by a thread of its own, so a slow or stalled camera holds up no other. Each round
takes the waiting frame of every camera that has one; each camera's faces are found (or followed, with its own
follower) and tracked by its gate loop, the faces of all of them are embedded in one batch, and each loop decides
for its own door.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field, replace

import numpy as np

from gate.door.requests import Actuator
from gate.runtime.loop import GateLoop, Sight
from gate.runtime.parts import Runtime
from gate.runtime.results import GateSummary
from gate.runtime.run import end_loop, open_loop, stop_on_signals
from gate.runtime.watchdog import Watchdog, service_watchdog
from gate.vision.sources import Frame, FrameSource

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.05  # with no frame waiting from any camera, how long a round waits for one
KEPT_AGES = 100_000  # frame ages kept per live camera for the run's summary (benchmarks/streams.py)


class Handoff:
    """Frames from a camera's reader thread to the gate loop. A live camera's newest frame replaces one not yet
    taken (the gate decides on who stands there now); a recording's frames wait their turn, every one is seen."""

    def __init__(self, live: bool, arrived: threading.Event) -> None:
        self.live = live
        self._arrived = arrived
        self._room = threading.Condition()
        self._frames: deque[Frame] = deque()
        self._ended = False
        self.replaced = 0

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self._room:
            if self.live and self._frames:
                self._frames.clear()
                self.replaced += 1
            while not self.live and self._frames and not stop.is_set():
                self._room.wait(IDLE_WAIT_S)
            self._frames.append(frame)
        self._arrived.set()

    def take(self) -> Frame | None:
        with self._room:
            frame = self._frames.popleft() if self._frames else None
            self._room.notify_all()
            return frame

    def end(self) -> None:
        with self._room:
            self._ended = True
        self._arrived.set()

    @property
    def finished(self) -> bool:
        """No frame waits and none will come."""
        with self._room:
            return self._ended and not self._frames


@dataclass
class Camera:
    """One camera of the process: its source, its reader thread's handoff and its gate loop."""

    source: FrameSource
    handoff: Handoff
    loop: GateLoop
    ages: deque[float] = field(default_factory=lambda: deque(maxlen=KEPT_AGES))  # live frames: capture to decided


def _read(source: FrameSource, handoff: Handoff, stop: threading.Event) -> None:
    """A camera's reader thread: every frame of the source into its handoff, until the source ends or `stop`."""
    try:
        for frame in source.frames():
            if stop.is_set():
                break
            handoff.put(frame, stop)
    except Exception:  # a camera that fails ends its own frames only
        log.exception("%s: reading failed", source.description)
    finally:
        handoff.end()


def run_cameras(cameras: list[tuple[Runtime, FrameSource, Actuator]]) -> list[GateSummary]:
    """Run one gate loop per (runtime, source, actuator) until every source ends, one camera gives up
    ([camera] max_reconnects: the process is to be restarted, every camera with it) or SIGINT/SIGTERM; the
    runtimes share their embedder, pipeline, database and gallery. Returns each camera's summary, in order."""
    arrived = threading.Event()
    with ExitStack() as cleanup, stop_on_signals() as stop:
        for _, source, actuator in cameras:  # first: whatever fails below, every camera and door is released
            cleanup.callback(source.close)
            cleanup.callback(actuator.close)
        running = [
            Camera(source, Handoff(source.live, arrived), open_loop(cleanup, runtime, actuator, source))
            for runtime, source, actuator in cameras
        ]
        cleanup.callback(stop.set)  # before the sources close (callbacks run last first): readers stop putting
        for camera in running:
            name = f"read {camera.source.description}"
            threading.Thread(target=_read, args=(camera.source, camera.handoff, stop), name=name, daemon=True).start()
        with service_watchdog(f"{len(running)} cameras: {', '.join(c.loop.gate_id for c in running)}") as watchdog:
            _rounds(running, arrived, stop, watchdog)
        stopped = stop.is_set()
        summaries = [end_loop(camera.loop, stopped, camera.source.gave_up) for camera in running]
    return [replace(summary, frame_ages_s=list(c.ages)) for summary, c in zip(summaries, running, strict=True)]


def _rounds(running: list[Camera], arrived: threading.Event, stop: threading.Event, watchdog: Watchdog) -> None:
    """Rounds until every camera's frames have ended, one camera gives up, or a signal; `watchdog` is told when
    each round's work begins and ends (a round hung in an embed, a database call or a door stops systemd's
    watchdog pings)."""
    while not stop.is_set() and not all(camera.handoff.finished for camera in running):
        if any(camera.source.gave_up and camera.handoff.finished for camera in running):
            break
        arrived.clear()
        ready = [(camera, frame) for camera in running if (frame := camera.handoff.take()) is not None]
        if not ready:
            arrived.wait(IDLE_WAIT_S)
            continue
        watchdog.begin()
        one_round([(camera.loop, frame) for camera, frame in ready])
        watchdog.end()
        done = time.monotonic()
        for camera, frame in ready:
            if camera.source.live:  # a live frame's time is its capture (monotonic); a recording's is video time
                camera.ages.append(done - frame.time)


def one_round(ready: list[tuple[GateLoop, Frame]]) -> None:
    """One frame from each of several cameras: each loop sees its frame, the faces of all are embedded in one
    batch, each loop decides on its own faces."""
    sights: list[tuple[GateLoop, Sight]] = [(loop, sight) for loop, frame in ready if (sight := loop.see(frame))]
    faces = [sight.faces_to_embed() for _, sight in sights]
    everyone = [face for mine in faces for face in mine]
    embeddings = sights[0][0].embedder.embed(np.stack(everyone)) if everyone else None
    start = 0
    for (loop, sight), mine in zip(sights, faces, strict=True):
        loop.decide(sight, embeddings[start : start + len(mine)] if embeddings is not None and mine else None)
        start += len(mine)
