"""systemd's notify protocol and watchdog (gate/runtime/watchdog.py), over real datagram sockets bound here as the
service manager's: the addressing ($NOTIFY_SOCKET as a path or an abstract '@' name), the pings that stop while a
frame's work hangs and resume after it, and a real `facegate run` process on a live stream whose door hangs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from facegate_process import facegate_command

from enrollment.people import add_person
from evaluation.paced_stream import PacedStream, video_frames
from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.config import load_settings
from gate.runtime.parts import Runtime
from gate.runtime.watchdog import Notifier, Watchdog, notify_address, service_watchdog, watchdog_interval_s
from gate.vision.imageio import load_image


@dataclass
class Received:
    """A datagram the fake service manager received, with its wall-clock arrival time."""

    at: float
    fields: list[str]


@dataclass
class Manager:
    """The service manager's end of the notify socket: every datagram kept, in order, by a reader thread."""

    sock: socket.socket
    name: str  # what $NOTIFY_SOCKET says
    messages: list[Received] = field(default_factory=list)

    def read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:  # closed
                return
            if not data:  # shut down (the gate never sends an empty datagram)
                return
            self.messages.append(Received(time.time(), data.decode().split("\n")))

    def times(self, wanted: str) -> list[float]:
        return [m.at for m in self.messages if wanted in m.fields]

    def wait_for(self, wanted: str, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if found := self.times(wanted):
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {wanted} within {timeout_s} s; got {[m.fields for m in self.messages]}")


@contextmanager
def bound_manager(kind: str) -> Iterator[Manager]:
    """A datagram socket bound as systemd binds its own: a file in a (short: sun_path holds 108 bytes) temporary
    folder, or a name in the abstract namespace."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory(prefix="notify-", dir="/tmp") as folder:
        if kind == "path":
            name = os.path.join(folder, "notify")
            sock.bind(name)
        else:
            name = f"@facegate-test-{os.getpid()}-{time.monotonic_ns()}"
            sock.bind(b"\0" + name[1:].encode())
        found = Manager(sock, name)
        reader = threading.Thread(target=found.read, daemon=True)
        reader.start()
        try:
            yield found
        finally:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            reader.join(5)


@pytest.fixture(params=["path", "abstract"])
def manager(request: pytest.FixtureRequest) -> Iterator[Manager]:
    with bound_manager(request.param) as found:
        yield found


def test_notify_address_abstract_name_path_and_the_rest() -> None:
    assert notify_address("@/org/freedesktop/systemd1/notify/123") == b"\0/org/freedesktop/systemd1/notify/123"
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("") is None
    assert notify_address("@") is None
    assert notify_address("relative/notify") is None
    assert notify_address("vsock:2:1234") is None


def test_watchdog_interval_is_half_the_period_for_this_process_only() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=4242) is None
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None


def test_notifier_sends_to_the_path_or_abstract_socket(manager: Manager) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": manager.name})
    assert notifier.enabled and notifier.send("READY=1", "STATUS=watching camera 0")
    manager.wait_for("READY=1", 5)
    assert manager.messages[0].fields == ["READY=1", "STATUS=watching camera 0"]
    notifier.close()


def test_notifier_without_notify_socket_sends_nothing() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.send("READY=1")
    with service_watchdog("not under systemd", {}) as watchdog:
        assert watchdog.interval_s is None  # no thread either
        watchdog.begin()
        watchdog.end()


def test_notifier_with_the_manager_gone_warns_and_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    with tempfile.TemporaryDirectory(prefix="notify-", dir="/tmp") as folder:
        notifier = Notifier({"NOTIFY_SOCKET": os.path.join(folder, "gone")})  # nobody bound it
        assert notifier.enabled
        assert not notifier.send("WATCHDOG=1") and not notifier.send("WATCHDOG=1")
    assert sum("cannot notify the service manager" in r.message for r in caplog.records) == 1


def test_pings_stop_while_a_frame_hangs_and_resume_after() -> None:
    with bound_manager("abstract") as manager:  # the slow test below binds a path
        watched(manager)


def watched(manager: Manager) -> None:
    environ = {"NOTIFY_SOCKET": manager.name, "WATCHDOG_USEC": "100000"}  # WatchdogSec=0.1: a ping every 0.05 s
    with service_watchdog("gate test-door watching a test", environ) as watchdog:
        assert watchdog.interval_s == pytest.approx(0.05)
        manager.wait_for("READY=1", 5)
        for _ in range(10):  # quick frames: pings go on
            watchdog.begin()
            time.sleep(0.01)
            watchdog.end()
            time.sleep(0.02)
        time.sleep(0.3)  # waiting for a frame (a camera away): pings go on
        watchdog.begin()
        hung_from = time.time()
        time.sleep(0.8)  # one frame's work hangs for 8 watchdog periods
        hung_until = time.time()
        watchdog.end()
        time.sleep(0.3)
    manager.wait_for("STOPPING=1", 5)
    pings = manager.times("WATCHDOG=1")
    before = [t for t in pings if t < hung_from]
    during = [t for t in pings if hung_from + 0.3 < t < hung_until]  # one interval allowed, the ping after it late
    after = [t for t in pings if t > hung_until]
    assert len(before) >= 6 and not during and len(after) >= 3, (before, during, after)
    assert max(b - a for a, b in zip(before, before[1:], strict=False)) < 0.2  # on through the 0.3 s wait
    stuck = [m for m in manager.messages if any(f.startswith("STATUS=stuck") for f in m.fields)]
    assert len(stuck) == 1 and hung_from < stuck[0].at < hung_until
    assert manager.messages[0].fields[0] == "READY=1" and manager.messages[-1].fields[0] == "STOPPING=1"


def test_watchdog_stuck_time_counts_from_the_frame_start_beyond_the_interval() -> None:
    now = [100.0]
    watchdog = Watchdog(Notifier({}), 15.0, clock=lambda: now[0])
    assert watchdog.stuck_s() == 0.0
    watchdog.begin()
    now[0] = 114.0
    assert watchdog.stuck_s() == 0.0  # within one interval: a slow frame, not a stuck one
    now[0] = 120.0
    assert watchdog.stuck_s() == pytest.approx(5.0)
    watchdog.end()
    assert watchdog.stuck_s() == 0.0


# The real gate: `facegate run` on a live MJPEG stream of an enrolled person walking up again and again, its door a
# shell command. The stream ends every connection after CONNECTION_FRAMES frames and the gate reconnects only
# AWAY_S later: the camera is away for longer than WatchdogSec, which must not stop the pings. Then the door's
# command hangs for HANG_S (inside the frame's work: the door opens before the frame is done): the pings must stop.
SPEC = TurnstileSpec(width=320, height=240, fps=10, walk_s=3.0, gap_s=1.0, seed=5)
WATCHDOG_S = 4.0  # a ping every 2 s while no frame has taken over 2 s (a frame takes 0.1 to 2 s on a busy CI machine)
CONNECTION_FRAMES = 60  # 6 s of frames per connection
AWAY_S = 6.5  # > WATCHDOG_S: pings that stopped while the camera is away would let systemd kill the gate
HANG_S = 10.0  # > WATCHDOG_S * 1.5: systemd would kill the gate


def door_command(folder: Path) -> list[str]:
    """A door that records each opening and, while a `hang` file exists (once), hangs for HANG_S, writing when."""
    script = (
        f"echo {{person_id}} >> {folder}/opened; "
        f"if [ -e {folder}/hang ]; then rm {folder}/hang; date +%s.%N > {folder}/hung-from; "
        f"sleep {HANG_S}; date +%s.%N > {folder}/hung-until; fi"
    )
    return ["/bin/sh", "-c", script]


def site_config(folder: Path, card: Path) -> Path:
    path = folder / "config.toml"
    command = ", ".join(f'"{arg}"' for arg in door_command(folder))
    path.write_text(
        f'[camera]\ngate_id = "watched-door"\nreconnect_initial_s = {AWAY_S}\nreconnect_max_s = {AWAY_S}\n'
        f'[model]\npath = "{card}"\n'
        "[decision]\nthreshold = -1.0\nallow_loose_threshold = true\nvotes_needed = 1\nwindow = 1\n"
        "track_timeout_s = 0.5\ncooldown_s = 0.0\n"  # the untrained model's scores mean nothing: any face votes
        '[database]\nurl = "sqlite:///gate.db"\njournal_path = "events.journal"\n'
        '[gallery]\nindex_path = "gallery.faiss"\n'
        f'[actuator]\nkind = "shell"\ncommand = [{command}]\ntimeout_s = {HANG_S + 4}\n',
        encoding="utf-8",
    )
    return path


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s (gate exit status {process.poll()})")
        time.sleep(0.1)


def gaps(times: list[float]) -> list[tuple[float, float]]:
    return list(zip(times, times[1:], strict=False))


@pytest.mark.slow  # a gate process, real faces, about a minute
def test_facegate_run_under_a_watchdog_pings_while_the_camera_is_away_and_stops_while_its_door_hangs(
    lfw_root: Path, untrained_card: Path, tmp_path: Path
) -> None:
    photos = sorted((lfw_root / "Colin_Powell").glob("*.jpg"))[:2]
    config = site_config(tmp_path, untrained_card)
    runtime = Runtime.open(load_settings(config))
    add_person(runtime, "E1", "Colin Powell", [photos[1]])
    runtime.close()
    frames = video_frames(render_turnstile([("walker", load_image(photos[0]))], tmp_path / "walk.mp4", SPEC)[0])
    log_path = tmp_path / "gate.log"
    with (
        bound_manager("path") as manager,
        PacedStream(SPEC.fps, (SPEC.width, SPEC.height), CONNECTION_FRAMES, images=frames) as stream,
        log_path.open("w") as log_file,
    ):
        environ = {**os.environ, "NOTIFY_SOCKET": manager.name, "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))}
        command = facegate_command("--config", config, "run", "--source", stream.url)
        process = subprocess.Popen(command, env=environ, stderr=log_file, stdout=subprocess.DEVNULL)
        try:
            ready = manager.wait_for("READY=1", 120)
            connections_at_ready = stream.accepted
            healthy = lambda: (tmp_path / "opened").exists() and len(manager.times("WATCHDOG=1")) >= 3  # noqa: E731
            wait_until(healthy, 60, "a first door opening and pings", process)
            (tmp_path / "hang").touch()
            wait_until(lambda: (tmp_path / "hung-until").exists(), 60, "the door's hang", process)
            time.sleep(2 * WATCHDOG_S)  # the pings come back
        finally:
            process.send_signal(signal.SIGTERM)
            status = process.wait(60)
        manager.wait_for("STOPPING=1", 5)
    log = log_path.read_text()
    assert status == 0, log[-3000:]
    hung_from, hung_until = (float((tmp_path / name).read_text()) for name in ("hung-from", "hung-until"))
    pings = manager.times("WATCHDOG=1")
    print(f"{len(pings)} pings: {[round(t - hung_from, 1) for t in pings]} s from the hang")  # pytest -s
    assert manager.messages[0].fields[0] == "READY=1" and manager.messages[-1].fields[0] == "STOPPING=1"
    assert stream.accepted > connections_at_ready  # the gate reconnected while watched: the camera was away
    before, after = [t for t in pings if ready < t < hung_from], [t for t in pings if t > hung_until]
    assert len(before) >= 3 and len(after) >= 2, (len(before), len(after))
    middle = (hung_from + hung_until) / 2  # a ping may still come just after the hang began (it is not stuck yet)
    around = [(a, b) for a, b in gaps(pings) if a < middle < b]  # the gap spanning the hang
    assert len(around) == 1 and around[0][1] - around[0][0] > WATCHDOG_S, around  # systemd would have killed it
    assert all(b - a < AWAY_S for a, b in gaps(pings) if (a, b) not in around)  # pinged while the camera is away
    stuck = [m.at for m in manager.messages if any(f.startswith("STATUS=stuck") for f in m.fields)]
    assert any(hung_from < moment < hung_until for moment in stuck)
