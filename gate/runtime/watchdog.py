"""Telling systemd how the gate is doing (the sd_notify protocol): READY=1 once its loops are open, WATCHDOG=1
every half watchdog period while no frame's work has hung, STOPPING=1 when it stops, and STATUS= lines for
`systemctl status`. Nothing is sent when $NOTIFY_SOCKET is not set (not run by systemd).

The protocol is a datagram on an AF_UNIX socket named by $NOTIFY_SOCKET ('@name': the abstract namespace;
'/path': a file), so it is written here in a few lines rather than taken from a library: sdnotify, the
pure-Python one on PyPI, last released in 2017, connects once at start and swallows every error with a bare
except, and neither it nor the C binding (systemd-python) knows what a healthy gate is.

Healthy means the loop is not stuck: `Watchdog.begin()` and `end()` bracket each frame's work (find, embed,
match, decide, open the door, record), and the pinger thread stays silent once the current frame has taken
longer than the ping interval. A loop waiting for a frame (a camera that is away and reconnecting) is between
frames, so it keeps being pinged; a frame hung in an embed, a database call or a door stops the pings, and
systemd kills and restarts the gate when WatchdogSec= passes without one (between 1 and 1.5 WatchdogSec after
the frame began).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

log = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"  # set by systemd for Type=notify services
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"  # WatchdogSec= in microseconds, set when the unit has a watchdog
WATCHDOG_PID_ENV = "WATCHDOG_PID"  # the process the watchdog is meant for, when systemd says
MAX_MESSAGE_BYTES = 4096  # a STATUS= line is cut to fit one small datagram


def notify_address(value: str) -> str | bytes | None:
    """The socket address $NOTIFY_SOCKET names: '@name' -> the abstract socket b'\\0name', '/path' -> the path;
    None when unset or in a form this does not speak (systemd's vsock: addresses, a relative path)."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


def watchdog_interval_s(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """How often to ping: half of $WATCHDOG_USEC, in seconds (what sd_watchdog_enabled advises). None when the
    unit has no watchdog, or when $WATCHDOG_PID names another process."""
    usec = environ.get(WATCHDOG_USEC_ENV, "")
    owner = environ.get(WATCHDOG_PID_ENV, "")
    if owner and owner != str(pid if pid is not None else os.getpid()):
        return None
    try:
        period_s = int(usec) / 1e6
    except ValueError:
        if usec:
            log.warning("%s=%r is not a number of microseconds: no watchdog pings", WATCHDOG_USEC_ENV, usec)
        return None
    return period_s / 2 if period_s > 0 else None


class Notifier:
    """Sends sd_notify messages to the service manager's socket; does nothing where there is none. A failed
    send is logged once and never raised: telling systemd must not stop the gate."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.address = notify_address((os.environ if environ is None else environ).get(NOTIFY_SOCKET_ENV, ""))
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if self.address is not None else None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, *fields: str) -> bool:
        """One datagram of `fields` ("READY=1", "STATUS=..."), one per line; True when it was sent."""
        if self._socket is None or self.address is None:
            return False
        message = "\n".join(fields).encode()[:MAX_MESSAGE_BYTES]
        try:
            self._socket.sendto(message, self.address)
        except OSError as error:
            if not self._warned:
                log.warning("cannot notify the service manager at %s=%s: %s", NOTIFY_SOCKET_ENV, self.address, error)
                self._warned = True
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class Watchdog:
    """The loop's frames, watched: `begin()`/`end()` around each frame's work; a thread sends WATCHDOG=1 every
    `interval_s` while the frame in hand (if any) has taken no longer than `interval_s`. `interval_s` None: no
    pings (the unit has no WatchdogSec=), only READY/STATUS/STOPPING."""

    def __init__(
        self, notifier: Notifier, interval_s: float | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.notifier = notifier
        self.interval_s = interval_s
        self._clock = clock
        self._frame_began: float | None = None  # set by the loop's thread, read by the pinger's
        self._status = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        """The loop starts a frame's work."""
        self._frame_began = self._clock()

    def end(self) -> None:
        """The loop has finished the frame's work and waits for the next frame."""
        self._frame_began = None

    def stuck_s(self) -> float:
        """How long the loop has been inside one frame's work beyond the allowed `interval_s` (0: healthy)."""
        began, allowed = self._frame_began, self.interval_s
        if began is None or allowed is None:
            return 0.0
        return max(0.0, self._clock() - began - allowed)

    def ready(self, status: str) -> None:
        """The loops are open: READY=1, and the pings start when the unit has a watchdog."""
        self._status = status
        self.notifier.send("READY=1", f"STATUS={status}")
        if self.interval_s is not None and self.notifier.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._ping, name="systemd watchdog", daemon=True)
            self._thread.start()

    def stopping(self) -> None:
        """The loops have stopped: no more pings, STOPPING=1."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.notifier.send("STOPPING=1", "STATUS=stopping")

    def _ping(self) -> None:
        assert self.interval_s is not None
        was_stuck = False
        while not self._stop.wait(self.interval_s):
            stuck = self.stuck_s() > 0
            if stuck and not was_stuck:
                began = self._frame_began
                held = self._clock() - began if began is not None else 0.0
                log.error("the gate loop is stuck in one frame's work (%.1f s): no watchdog ping", held)
                self.notifier.send(f"STATUS=stuck in one frame's work for {held:.0f} s; {self._status}")
            elif was_stuck and not stuck:
                log.warning("the gate loop is moving again: watchdog pings resume")
                self.notifier.send("WATCHDOG=1", f"STATUS={self._status}")
            elif not stuck:
                self.notifier.send("WATCHDOG=1")
            was_stuck = stuck


@contextmanager
def service_watchdog(status: str, environ: Mapping[str, str] | None = None) -> Iterator[Watchdog]:
    """READY=1 with `status` on entering (call it once the loops are open), the watchdog pings while inside,
    STOPPING=1 on leaving however the loops ended. Nothing is sent when $NOTIFY_SOCKET is unset."""
    environ = os.environ if environ is None else environ
    notifier = Notifier(environ)
    watchdog = Watchdog(notifier, watchdog_interval_s(environ) if notifier.enabled else None)
    try:
        watchdog.ready(status)
        yield watchdog
    finally:
        watchdog.stopping()
        notifier.close()
