"""A USB/serial relay board as the door's actuator, through pyserial: a grant switches the relay on and a timer
thread switches it off open_s later, so the gate loop never waits out the pulse; a grant during a pulse starts it
again. The off is also sent at start (a gate restarted after a crash shuts the door first) and at close.

The CH340 "LCUS" boards' frames are built in: A0 <channel> <state> <checksum>, the checksum the low byte of the
sum (A0 01 01 A2 on, A0 01 00 A1 off); other boards' frames are given as hex (on_bytes, off_bytes). A port that
cannot be opened at start is a FaceGateError (the gate does not start); one that goes away later (USB unplugged)
fails that grant, logged, never raised, and is reopened at the next send. An off that fails (the board away
when the pulse ends, or a grant whose on failed: a partial write may have switched the relay on all the same) is
tried again every OFF_RETRY_S, reopening the port, until it goes out or the gate closes the door.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

import serial

from gate.config import ActuatorSettings
from gate.door.requests import DoorOutcome, DoorRequest
from gate.errors import FaceGateError

log = logging.getLogger(__name__)

LCUS_HEAD = 0xA0
OFF_RETRY_S = 1.0  # a failed off is tried again this often, until it goes out: the door must not stay open


def lcus_frame(channel: int, on: bool) -> bytes:
    """An LCUS board's command switching relay `channel` (from 1) on or off."""
    state = int(on)
    return bytes([LCUS_HEAD, channel, state, (LCUS_HEAD + channel + state) & 0xFF])


def relay_frames(settings: ActuatorSettings) -> tuple[bytes, bytes]:
    """(on, off): the configured on_bytes/off_bytes, else the LCUS frames of `settings.channel`."""
    if settings.on_bytes:
        return bytes.fromhex(settings.on_bytes), bytes.fromhex(settings.off_bytes)
    return lcus_frame(settings.channel, True), lcus_frame(settings.channel, False)


def _reason(error: Exception) -> str:
    """pyserial's error in a few words: the system's message when it carries an errno."""
    number = getattr(error, "errno", None)
    return os.strerror(number) if isinstance(number, int) else str(error)


class SerialRelayActuator:
    """Pulses a relay on a serial board: on now, off after open_s from a timer thread; see the module."""

    def __init__(self, settings: ActuatorSettings) -> None:
        self.port = settings.port
        self.baudrate = settings.baudrate
        self.timeout_s = settings.timeout_s
        self.open_s = settings.open_s
        self.retry_s = OFF_RETRY_S
        self.on_frame, self.off_frame = relay_frames(settings)
        self._lock = threading.Lock()  # one writer at a time: the gate loop's grant or the timer's off
        self._serial: serial.Serial | None = None
        self._timer: threading.Timer | None = None
        self._pulse = 0  # the pulse a pending off belongs to: a later grant or close() makes it stale
        self._closed = False
        try:
            self._connected().write(self.off_frame)
        except (serial.SerialException, OSError) as error:
            self._drop()
            raise FaceGateError(
                f"actuator.port {self.port}: cannot use the relay board: {_reason(error)} "
                "(is it plugged in, and the service user in group dialout?)"
            ) from None

    def open(self, request: DoorRequest) -> DoorOutcome:
        with self._lock:
            if self._closed:
                log.error("relay board %s: a grant after the gate closed the door", self.port)
                return DoorOutcome.FAILED
            try:
                self._send(self.on_frame)
            except serial.SerialTimeoutException:
                self._drop()
                log.error("relay board %s took no command within %.1f s", self.port, self.timeout_s)
                return DoorOutcome.TIMED_OUT
            except (serial.SerialException, OSError) as error:
                self._drop()
                log.error("relay board %s: cannot switch the door on: %s", self.port, _reason(error))
                return DoorOutcome.FAILED
            finally:
                self._schedule_off(self.open_s)  # also when the on failed: part of it may have reached the board
        return DoorOutcome.OPENED

    def close(self) -> None:
        """Cancel a pending off and send it now (whether or not a pulse is running), then release the port."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pulse += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._switch_off("as the gate stops")
            self._drop()

    def _schedule_off(self, after_s: float, tries: int = 0) -> None:
        """Send the off `after_s` from now, as a new pulse (a later grant's restarts it; a retry of the same pulse's
        failed off, tries > 0, keeps the pulse's number)."""
        if tries == 0:
            self._pulse += 1
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(after_s, self._end_pulse, args=(self._pulse, tries))
        self._timer.daemon = True
        self._timer.start()

    def _end_pulse(self, pulse: int, tries: int) -> None:
        with self._lock:
            if pulse != self._pulse:  # a later grant restarted the pulse, or close() already switched off
                return
            self._timer = None
            when = f"after {self.open_s:g} s" if tries == 0 else f"at try {tries + 1}"
            if self._switch_off(when, quiet=tries > 0):
                if tries:
                    log.warning("relay board %s: the door switched off at last, at try %d", self.port, tries + 1)
                return
            self._schedule_off(self.retry_s, tries + 1)

    def _switch_off(self, when: str, quiet: bool = False) -> bool:
        """Send the off; whether it went out (a failure is logged: critical, or at debug level with `quiet`)."""
        try:
            self._send(self.off_frame)
        except (serial.SerialException, OSError) as error:
            self._drop()
            level = logging.DEBUG if quiet else logging.CRITICAL
            retry = "" if self._closed else f" (tried again every {self.retry_s:g} s)"
            log.log(level, "relay board %s: could not switch the door off %s: %s%s", self.port, when, _reason(error),
                    retry)  # fmt: skip
            return False
        return True

    def _send(self, frame: bytes) -> None:
        """Write `frame`, reopening the port once when the open handle has gone stale (a board unplugged and back)."""
        if self._serial is not None:
            try:
                self._serial.write(frame)
                return
            except serial.SerialTimeoutException:
                raise
            except (serial.SerialException, OSError) as error:
                log.warning("relay board %s went away (%s): reopening it", self.port, _reason(error))
                self._drop()
        self._connected().write(frame)

    def _connected(self) -> serial.Serial:
        """The open port, opened now if it is not. Not exclusive: the doors of several cameras may share a board,
        each its own channel (every frame goes out in one write)."""
        if self._serial is None:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=self.timeout_s, write_timeout=self.timeout_s)
        return self._serial

    def _drop(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            self._serial = None
