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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from facegate_process import facegate_command

from gate.runtime.watchdog import Notifier, Watchdog, notify_address, service_watchdog, watchdog_interval_s


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


@pytest.fixture(params=["path", "abstract"])
def manager(request: pytest.FixtureRequest) -> Iterator[Manager]:
    """A datagram socket bound as systemd binds its own: a file in a (short: sun_path holds 108 bytes) temporary
    folder, or a name in the abstract namespace."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory(prefix="notify-", dir="/tmp") as folder:
        if request.param == "path":
            name = os.path.join(folder, "notify")
            sock.bind(name)
        else:
            name = f"@facegate-test-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
            sock.bind(b"\0" + name[1:].encode())
        found = Manager(sock, name)
        reader = threading.Thread(target=found.read, daemon=True)
        reader.start()
        yield found
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        reader.join(5)


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


def test_pings_stop_while_a_frame_hangs_and_resume_after(manager: Manager) -> None:
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
