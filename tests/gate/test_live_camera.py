"""A camera as a site has one: `facegate run` started before its camera (a live MJPEG stream of a walk-up video of
an enrolled LFW person, served at camera pace), which comes a few seconds later on its port, dies mid-run and comes
back. The gate waits, resumes and lets the person in after the comeback; it never exits until SIGTERM. And in this
process: one gate, or several in one process, waiting for a camera that never comes, stopped by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from facegate_process import facegate_command, free_port
from test_loop import Doors, gate_settings, open_gate

from enrollment.people import add_person
from evaluation.paced_stream import PacedStream, video_frames
from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.config import CameraSettings, load_settings
from gate.matching.gallery import Gallery
from gate.runtime.cameras import run_cameras
from gate.runtime.parts import Runtime
from gate.runtime.run import run_gate
from gate.store.database import Database
from gate.vision.imageio import load_image
from gate.vision.sources import LiveSource

pytestmark = pytest.mark.slow  # a gate process on real faces, a stream that comes and goes (about 30 s)

SPEC = TurnstileSpec(width=320, height=240, fps=10, walk_s=2.0, gap_s=0.5, seed=3)


def site_config(folder: Path, port: int, card: Path) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[camera]\ngate_id = "door"\nsource = "http://127.0.0.1:{port}/stream.mjpg"\n'
        "reconnect_initial_s = 0.2\nreconnect_max_s = 0.5\n"  # max_reconnects 0: for ever
        f'[model]\npath = "{card}"\n'
        "[decision]\nthreshold = -1.0\nallow_loose_threshold = true\nvotes_needed = 1\nwindow = 1\n"
        "track_timeout_s = 0.5\ncooldown_s = 0.0\n"  # the untrained model's scores mean nothing: any face votes
        f'[database]\nurl = "sqlite:///{folder / "gate.db"}"\njournal_path = "events.journal"\n'
        '[gallery]\nindex_path = "gallery.faiss"\n',
        encoding="utf-8",
    )
    return path


def enrol(config: Path, embedder, pipeline, name: str, photo: Path) -> Database:  # noqa: ANN001
    settings = load_settings(config)
    database = Database(settings.database_url)
    gallery = Gallery.open(
        database, settings.gallery, settings.resolve(settings.gallery.index_path), embedder.model_id,
        embedder.card.embedding_size, embedder.scorer,
    )  # fmt: skip
    add_person(Runtime(settings, embedder, pipeline, database, gallery), "E1", name, [photo], threshold=0.99)
    return database


class Log:
    """A process's stderr, line by line, as it comes."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stderr:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, process: subprocess.Popen, timeout_s: float) -> int:
        """The index of the first line matching `pattern`; fails if the process ends or time runs out first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = next((i for i, line in enumerate(self.lines) if re.search(pattern, line)), None)
            if found is not None:
                return found
            assert process.poll() is None, "the gate exited:\n" + "\n".join(self.lines[-20:])
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout_s:.0f} s:\n" + "\n".join(self.lines[-20:]))

    def join(self) -> str:
        self._thread.join(timeout=10)
        return "\n".join(self.lines)


def grants_since(database: Database, moment: datetime) -> list:
    return [e for e in database.events(limit=1000) if e.decision == "granted" and e.time >= moment]


def test_a_gate_started_before_its_camera_waits_resumes_after_a_loss_and_lets_in(
    tmp_path: Path, untrained_card: Path, embedder, pipeline, people
) -> None:
    name, photos = people[0]
    port = free_port()  # nothing listens there yet
    config = site_config(tmp_path, port, untrained_card)
    database = enrol(config, embedder, pipeline, name, photos[1])
    walk = video_frames(render_turnstile([(name, load_image(photos[0]))], tmp_path / "walk.mp4", SPEC)[0])
    started = time.monotonic()
    gate = subprocess.Popen(facegate_command("--config", config, "run"), stderr=subprocess.PIPE, text=True)
    log = Log(gate)
    try:
        waiting = log.wait_for(r"not reachable: trying again in 0\.2 s", gate, 60)
        log.wait_for(r"gate door watching", gate, 120)  # the model loaded while the camera was away
        time.sleep(1.0)  # still away: the gate waits, it does not exit
        with PacedStream(fps=SPEC.fps, size=(SPEC.width, SPEC.height), images=walk, port=port):
            streaming = log.wait_for(r"stream\.mjpg streaming \(after", gate, 30)
            time.sleep(1.0)
        lost = log.wait_for(r"stream\.mjpg lost: trying again", gate, 30)  # it died mid-run
        time.sleep(1.5)
        back = datetime.now(UTC)
        with PacedStream(fps=SPEC.fps, size=(SPEC.width, SPEC.height), images=walk, port=port):  # it comes back
            again = log.wait_for(r"stream\.mjpg streaming again \(lost", gate, 30)
            deadline = time.monotonic() + 60
            while not grants_since(database, back) and time.monotonic() < deadline:
                assert gate.poll() is None, log.join()[-2000:]
                time.sleep(0.3)
            assert gate.poll() is None  # never exited on its own: not while waiting, not when the camera died
            gate.send_signal(signal.SIGTERM)
            code = gate.wait(timeout=60)
    finally:
        if gate.poll() is None:
            gate.kill()
            gate.wait()
    output = log.join()
    print(f"start to SIGTERM: {time.monotonic() - started:.1f} s")
    assert code == 0, output[-2000:]
    assert waiting < streaming < lost < again  # waiting -> streaming -> lost -> streaming
    granted = grants_since(database, back)
    assert granted and granted[0].employee_id == "E1" and granted[0].gate_id == "door"
    assert "[tcp @" not in output and "Connection refused" not in output  # ffmpeg's own lines kept out
    retries = [line for line in output.splitlines() if re.search(r"WARNING .*(not reachable|lost)", line)]
    assert len(retries) <= 6  # the first try and each new delay (0.2, 0.4, 0.5) twice, not a line per try
    print("\n".join(line for line in output.splitlines() if "gate.vision.sources" in line))


def sigterm_when(done: object, timeout_s: float = 60.0) -> threading.Thread:
    """SIGTERM to this process (as systemd sends it) once `done()` is true, or after `timeout_s`."""

    def wait_then_signal() -> None:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=wait_then_signal, daemon=True)
    thread.start()
    return thread


def nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}/stream.mjpg"  # a camera that never comes


def test_run_gate_waiting_for_a_camera_stops_on_sigterm(tmp_path: Path, embedder, pipeline) -> None:
    settings = gate_settings(tmp_path)
    database, gallery = open_gate(settings, embedder, pipeline, enrol=None)
    source = LiveSource(nowhere(), CameraSettings(reconnect_initial_s=0.1, reconnect_max_s=0.2))
    assert source.state == "waiting"
    started = time.monotonic()
    sigterm_when(lambda: time.monotonic() - started > 1.0)
    summary = run_gate(Runtime(settings, embedder, pipeline, database, gallery), source, Doors())
    assert time.monotonic() - started < 5.0  # not stuck waiting for a frame that does not come
    assert summary.stopped_by_signal and summary.frames == 0 and source.state == "off"


def test_several_cameras_one_away_the_other_decides_until_sigterm(tmp_path: Path, embedder, pipeline, people) -> None:
    settings = gate_settings(tmp_path, threshold=-1.0, allow_loose_threshold=True, votes_needed=1, window=1)
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    walk = video_frames(render_turnstile([(name, load_image(photos[0]))], tmp_path / "walk.mp4", SPEC)[0])
    camera = CameraSettings(reconnect_initial_s=0.1, reconnect_max_s=0.2)
    runtime = Runtime(settings, embedder, pipeline, database, gallery)
    with PacedStream(fps=SPEC.fps, size=(SPEC.width, SPEC.height), images=walk) as stream:
        away, streaming = LiveSource(nowhere(), camera), LiveSource(stream.url, camera)
        sigterm_when(lambda: any(e.decision == "granted" for e in database.events(limit=10)))
        summaries = run_cameras([(runtime, away, Doors()), (runtime, streaming, Doors())])
    assert [s.stopped_by_signal for s in summaries] == [True, True]
    assert summaries[0].frames == 0 and summaries[1].frames > 0
    assert "GRANTED" in [d.verdict for d in summaries[1].decisions]
    assert (away.state, streaming.state) == ("off", "off")


def test_several_cameras_one_gives_up_the_run_ends_for_all_and_only_its_gate_reads_lost(
    tmp_path: Path, embedder, pipeline
) -> None:
    settings = gate_settings(tmp_path)
    database, gallery = open_gate(settings, embedder, pipeline, enrol=None)
    runtime = Runtime(settings, embedder, pipeline, database, gallery)
    back = settings.model_copy(update={"camera": settings.camera.model_copy(update={"gate_id": "back"})})
    with PacedStream(fps=SPEC.fps, size=(SPEC.width, SPEC.height)) as stream:  # streams until closed
        giving_up = LiveSource(nowhere(), CameraSettings(reconnect_initial_s=0.1, max_reconnects=2))
        streaming = LiveSource(stream.url, CameraSettings())
        started = time.monotonic()
        summaries = run_cameras([(replace(runtime, settings=back), giving_up, Doors()), (runtime, streaming, Doors())])
    assert time.monotonic() - started < 10.0  # the live camera did not keep the run going
    assert [s.camera_gave_up for s in summaries] == [True, False] and summaries[1].frames > 0
    assert giving_up.state == "waiting" and streaming.state == "off"
    beats = {beat.gate_id: beat for beat in database.gate_statuses()}
    assert (beats["back"].state, beats["back"].camera) == ("running", "waiting")  # no "stopped": it goes stale
    assert beats[settings.camera.gate_id].state == "stopped"
