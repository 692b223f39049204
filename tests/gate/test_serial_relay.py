"""Tests of the serial relay board over a real pseudo-terminal pair: pyserial opens the slave's path, the test reads
the exact bytes the board would receive from the master side (the off at start, the pulse's on and off, the off at
close); a board unplugged and plugged back (the port's symlink moved to a new pair) is failed, then reopened."""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gate.config import ActuatorSettings
from gate.door.actuators import build_actuator
from gate.door.requests import DoorOutcome, DoorRequest
from gate.door.serial_relay import SerialRelayActuator, lcus_frame
from gate.errors import FaceGateError

REQUEST = DoorRequest(gate_id="front", person_id="e7", name="Ada Lovelace", score=0.8123)
ON = bytes.fromhex("A0 01 01 A2")
OFF = bytes.fromhex("A0 01 00 A1")


class Board:
    """The far end of a pseudo-terminal: what a relay board plugged into the slave's path would read."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        os.close(slave)  # pyserial opens the path itself

    def read(self, size: int, within_s: float = 2.0) -> bytes:
        """Exactly `size` bytes, or what arrived by `within_s` (while nobody has the slave open, reads fail: wait)."""
        data = b""
        deadline = time.monotonic() + within_s
        while len(data) < size and (left := deadline - time.monotonic()) > 0:
            if select.select([self.master], [], [], left)[0]:
                try:
                    data += os.read(self.master, size - len(data))
                except OSError:
                    time.sleep(0.02)
        return data

    def quiet(self, for_s: float) -> bool:
        """Whether no byte arrives for `for_s` seconds (while nobody has the slave open, reads fail: nothing sent)."""
        deadline = time.monotonic() + for_s
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.master], [], [], left)[0]:
                return True
            try:
                if os.read(self.master, 64):
                    return False
            except OSError:
                time.sleep(0.02)
        return True

    def unplug(self) -> None:
        os.close(self.master)
        self.master = -1  # closed: the fixture has nothing left to close


@pytest.fixture
def board() -> Iterator[Board]:
    found = Board()
    yield found
    if found.master >= 0:
        with contextlib.suppress(OSError):
            os.close(found.master)


def relay(port: str, **values: object) -> SerialRelayActuator:
    actuator = build_actuator(ActuatorSettings(kind="serial_relay", port=port, **values))  # type: ignore[arg-type]
    assert isinstance(actuator, SerialRelayActuator)
    return actuator


def test_lcus_frames_carry_the_checksum() -> None:
    assert lcus_frame(1, True) == ON
    assert lcus_frame(1, False) == OFF
    assert lcus_frame(4, True) == bytes.fromhex("A0 04 01 A5")


def test_serial_relay_pulses_on_then_off_without_blocking(board: Board) -> None:
    door = relay(board.path, open_s=0.6)
    assert board.read(4) == OFF  # the door shut at start
    started = time.monotonic()
    assert door.open(REQUEST) is DoorOutcome.OPENED
    assert time.monotonic() - started < 0.4  # the gate loop does not wait out the pulse
    assert board.read(4) == ON
    assert board.read(4) == OFF
    assert time.monotonic() - started >= 0.55
    door.close()
    assert board.read(4) == OFF  # close sends the off again, whatever the state
    assert board.quiet(0.2)


def test_serial_relay_close_during_a_pulse_switches_off_at_once(board: Board) -> None:
    door = relay(board.path, open_s=30)
    board.read(4)
    assert door.open(REQUEST) is DoorOutcome.OPENED
    assert board.read(4) == ON
    started = time.monotonic()
    door.close()
    assert board.read(4) == OFF
    assert time.monotonic() - started < 1.0
    assert board.quiet(0.3)  # the pending off was cancelled, not sent late
    assert door.open(REQUEST) is DoorOutcome.FAILED  # closed: no more grants


def test_serial_relay_grant_during_a_pulse_restarts_it(board: Board) -> None:
    door = relay(board.path, open_s=0.5)
    board.read(4)
    door.open(REQUEST)
    assert board.read(4) == ON
    time.sleep(0.3)
    second = time.monotonic()
    door.open(REQUEST)
    assert board.read(4) == ON
    assert board.read(4, within_s=2.0) == OFF  # one off, 0.5 s after the second grant
    assert time.monotonic() - second >= 0.45
    assert board.quiet(0.3)
    door.close()


def test_serial_relay_sends_configured_bytes(board: Board) -> None:
    door = relay(board.path, on_bytes="FE 05 00 00 FF 00", off_bytes="fe0500000000", open_s=0.2)
    assert board.read(6) == bytes.fromhex("FE0500000000")
    door.open(REQUEST)
    assert board.read(6) == bytes.fromhex("FE050000FF00")
    assert board.read(6) == bytes.fromhex("FE0500000000")
    door.close()


def test_serial_relay_two_doors_share_one_board(board: Board) -> None:
    front, back = relay(board.path, channel=1, open_s=0.2), relay(board.path, channel=2, open_s=0.2)
    assert board.read(8) == OFF + lcus_frame(2, False)
    assert front.open(REQUEST) is DoorOutcome.OPENED
    assert back.open(REQUEST) is DoorOutcome.OPENED
    frames = board.read(16)
    assert sorted(frames[i : i + 4] for i in range(0, 16, 4)) == sorted(
        [ON, OFF, lcus_frame(2, True), lcus_frame(2, False)]
    )
    assert frames.index(ON) < frames.index(OFF)
    front.close()
    back.close()


def test_serial_relay_missing_port_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match=r"actuator.port .*ttyUSB9: cannot use the relay board: No such file"):
        relay(str(tmp_path / "ttyUSB9"))


def test_serial_relay_unplugged_board_fails_the_grant_then_is_reopened(board: Board, tmp_path: Path) -> None:
    port = tmp_path / "ttyRELAY"  # like /dev/serial/by-id/...: a link that udev points at the board's node
    port.symlink_to(board.path)
    door = relay(str(port), open_s=0.5)  # the failed grant's off is due at 0.5 s: the next grant restarts it
    assert board.read(4) == OFF
    board.unplug()
    assert door.open(REQUEST) is DoorOutcome.FAILED  # the write fails, the node is gone: reported, not raised
    replugged = Board()
    try:
        port.unlink()
        port.symlink_to(replugged.path)
        assert door.open(REQUEST) is DoorOutcome.OPENED
        assert replugged.read(4) == ON
        assert replugged.read(4) == OFF
        door.close()
    finally:
        os.close(replugged.master)


def _linked_door(board: Board, tmp_path: Path, open_s: float, retry_s: float) -> tuple[Path, SerialRelayActuator]:
    """A relay on a link to the board (as /dev/serial/by-id/... is), retrying a failed off every `retry_s`; the
    off it sends at start already read."""
    port = tmp_path / "ttyRELAY"
    port.symlink_to(board.path)
    door = relay(str(port), open_s=open_s)
    door.retry_s = retry_s
    assert board.read(4) == OFF
    return port, door


def _replug(port: Path) -> Board:
    """A board plugged back in: the port's link moved to a new pair."""
    replugged = Board()
    port.unlink()
    port.symlink_to(replugged.path)
    return replugged


def test_serial_relay_failed_off_is_retried_until_the_board_takes_it(
    board: Board, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port, door = _linked_door(board, tmp_path, open_s=0.3, retry_s=0.2)
    assert door.open(REQUEST) is DoorOutcome.OPENED
    assert board.read(4) == ON
    board.unplug()  # gone while the door is on: the off at 0.3 s fails, and the retries after it
    time.sleep(0.9)
    assert "could not switch the door off after 0.3 s" in caplog.text
    replugged = _replug(port)
    try:
        assert replugged.read(4) == OFF  # a retry reopened the port: the door is shut
        assert replugged.quiet(0.5)  # and the retries stop
        assert "the door switched off at last" in caplog.text
        door.close()
        assert replugged.read(4) == OFF
    finally:
        door.close()
        os.close(replugged.master)


def test_serial_relay_failed_grant_still_switches_off(board: Board, tmp_path: Path) -> None:
    port, door = _linked_door(board, tmp_path, open_s=0.3, retry_s=0.2)
    board.unplug()
    assert door.open(REQUEST) is DoorOutcome.FAILED  # part of the on may have reached the board all the same
    replugged = _replug(port)
    try:
        assert replugged.read(4) == OFF  # the failed grant's off, sent when the board is back
        assert replugged.quiet(0.4)
    finally:
        door.close()
        os.close(replugged.master)


def test_serial_relay_close_stops_the_retries(board: Board, tmp_path: Path) -> None:
    port, door = _linked_door(board, tmp_path, open_s=0.1, retry_s=0.1)
    board.unplug()
    assert door.open(REQUEST) is DoorOutcome.FAILED
    time.sleep(0.3)
    door.close()  # its own off fails too: logged, and no retry after it
    replugged = _replug(port)
    try:
        assert replugged.quiet(0.5)
    finally:
        os.close(replugged.master)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "needs port"),
        ({"port": "/dev/ttyUSB0", "on_bytes": "A0 01 01 A2"}, "on_bytes and off_bytes together"),
        ({"port": "/dev/ttyUSB0", "on_bytes": "A0 0G", "off_bytes": "A0"}, "is not hex bytes"),
    ],
)
def test_serial_relay_settings_refused_in_one_line(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ActuatorSettings(kind="serial_relay", **values)
