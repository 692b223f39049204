"""The local cameras as Linux's V4L2 lists them: each /dev/video* device's name and the modes it offers (pixel
formats, frame sizes, frame rates), asked through the VIDIOC_QUERYCAP / ENUM_FMT / ENUM_FRAMESIZES /
ENUM_FRAMEINTERVALS ioctls. The structures are read with `struct` in the layout of <linux/videodev2.h> (all
32-bit fields, the same on every architecture Linux runs V4L2 on)."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DEVICES = Path("/dev")
NAMES = Path("/sys/class/video4linux")  # <node>/name: the device's name as its driver gives it
MAX_ENTRIES = 256  # a driver's list stops at EINVAL; this bounds one that never says so

# <linux/videodev2.h>
CAPABILITY = struct.Struct("=16s32s32sIII3I")  # struct v4l2_capability: driver, card, bus_info, version, caps ...
FMTDESC = struct.Struct("=III32sII3I")  # struct v4l2_fmtdesc: index, type, flags, description, pixelformat, ...
FRMSIZEENUM = struct.Struct("=III6I2I")  # struct v4l2_frmsizeenum: index, pixel_format, type, the union, reserved
FRMIVALENUM = struct.Struct("=IIIII6I2I")  # struct v4l2_frmivalenum: index, pixel_format, width, height, type, ...
BUF_TYPE_VIDEO_CAPTURE = 1
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
CAP_DEVICE_CAPS = 0x80000000  # device_caps holds this node's own capabilities (capabilities: the whole device's)
FMT_FLAG_COMPRESSED = 0x0001
FMT_FLAG_EMULATED = 0x0002
TYPE_DISCRETE, TYPE_CONTINUOUS, TYPE_STEPWISE = 1, 2, 3  # V4L2_FRMSIZE_TYPE_* and V4L2_FRMIVAL_TYPE_*


def _ioc(direction: int, number: int, size: int) -> int:
    """The _IOC() macro of <asm-generic/ioctl.h> for V4L2's type 'V' (direction: 2 read, 3 read and write)."""
    return (direction << 30) | (size << 16) | (ord("V") << 8) | number


VIDIOC_QUERYCAP = _ioc(2, 0, CAPABILITY.size)
VIDIOC_ENUM_FMT = _ioc(3, 2, FMTDESC.size)
VIDIOC_ENUM_FRAMESIZES = _ioc(3, 74, FRMSIZEENUM.size)
VIDIOC_ENUM_FRAMEINTERVALS = _ioc(3, 75, FRMIVALENUM.size)


@dataclass(frozen=True)
class Capability:
    """What VIDIOC_QUERYCAP says of a device node."""

    driver: str
    card: str
    bus: str
    capabilities: int  # this node's (device_caps where the driver gives them)

    @property
    def captures_video(self) -> bool:
        """A node that gives frames (a camera's other nodes give metadata)."""
        return bool(self.capabilities & (CAP_VIDEO_CAPTURE | CAP_VIDEO_CAPTURE_MPLANE))


@dataclass(frozen=True)
class FrameRates:
    """The frame rates offered at one size: a list (`rates`), or a range from `lowest` to `highest` fps."""

    rates: tuple[float, ...] = ()
    lowest: float = 0.0
    highest: float = 0.0

    def describe(self) -> str:
        if self.rates:
            return ", ".join(f"{rate:g}" for rate in self.rates) + " fps"
        return f"{self.lowest:g}-{self.highest:g} fps" if self.highest else "rate not given"


@dataclass(frozen=True)
class FrameSize:
    """A frame size a pixel format offers, with its rates; a range (up to max_width x max_height in `step`s) when
    the driver gives one instead of a list."""

    width: int
    height: int
    max_width: int = 0  # 0: one size
    max_height: int = 0
    step: tuple[int, int] = (1, 1)
    rates: FrameRates = FrameRates()

    def describe(self) -> str:
        size = f"{self.width}x{self.height}"
        if self.max_width:
            size += f" to {self.max_width}x{self.max_height}"
            size += f" in steps of {self.step[0]}x{self.step[1]}" if self.step != (1, 1) else ""
        return f"{size} at {self.rates.describe()}"


@dataclass(frozen=True)
class PixelFormat:
    """A pixel format a camera offers: its FOURCC (the [camera] pixel_format value), the driver's description,
    whether it is compressed (MJPG, H264) or converted by software (emulated), and its sizes."""

    fourcc: str
    description: str
    compressed: bool
    emulated: bool
    sizes: tuple[FrameSize, ...] = ()


@dataclass(frozen=True)
class CaptureDevice:
    """A /dev/video* node: its name (sysfs), what it is, and its modes; `problem` says why they could not be read."""

    path: str
    name: str
    capability: Capability | None = None
    formats: tuple[PixelFormat, ...] = ()
    problem: str = ""


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def fourcc(code: int) -> str:
    """A V4L2 pixel format number as its four characters ("MJPG"; "Y16 " keeps its space)."""
    return bytes((code >> shift) & 0xFF for shift in (0, 8, 16, 24)).decode("latin-1")


def fourcc_code(text: str) -> int:
    """v4l2_fourcc(): four characters as the number V4L2 uses."""
    a, b, c, d = text.ljust(4).encode("latin-1")
    return a | b << 8 | c << 16 | d << 24


def parse_capability(raw: bytes) -> Capability:
    driver, card, bus, _version, capabilities, device_caps, *_ = CAPABILITY.unpack(raw)
    own = device_caps if capabilities & CAP_DEVICE_CAPS else capabilities
    return Capability(_text(driver), _text(card), _text(bus), own)


def parse_format(raw: bytes) -> PixelFormat:
    _index, _type, flags, description, pixelformat, *_ = FMTDESC.unpack(raw)
    compressed, emulated = bool(flags & FMT_FLAG_COMPRESSED), bool(flags & FMT_FLAG_EMULATED)
    return PixelFormat(fourcc(pixelformat), _text(description), compressed, emulated)


def parse_frame_size(raw: bytes) -> FrameSize:
    _index, _format, kind, *union = FRMSIZEENUM.unpack(raw)
    if kind == TYPE_DISCRETE:
        return FrameSize(union[0], union[1])
    min_width, max_width, step_width, min_height, max_height, step_height = union[:6]
    return FrameSize(min_width, min_height, max_width, max_height, (step_width, step_height))


def _fps(numerator: int, denominator: int) -> float:
    """A frame interval (seconds, numerator / denominator) as frames per second, to 2 decimals (30000/1001: 29.97)."""
    return round(denominator / numerator, 2) if numerator else 0.0


def parse_frame_interval(raw: bytes) -> tuple[int, tuple[float, ...]]:
    """(type, frame rates): a discrete interval's one rate; a range's (lowest, highest) fps."""
    *_, kind, min_num, min_den, max_num, max_den, _step_num, _step_den, _r0, _r1 = FRMIVALENUM.unpack(raw)
    if kind == TYPE_DISCRETE:
        return kind, (_fps(min_num, min_den),)
    return kind, (_fps(max_num, max_den), _fps(min_num, min_den))  # the longest interval is the lowest rate


def _entries(fd: int, request: int, packed: Callable[[int], bytes]) -> Iterator[bytes]:
    """Each entry of a V4L2 list, asked for by index until the driver answers EINVAL (the end)."""
    for index in range(MAX_ENTRIES):
        buffer = bytearray(packed(index))
        try:
            fcntl.ioctl(fd, request, buffer)
        except OSError as error:
            if error.errno == errno.EINVAL:
                return
            raise
        yield bytes(buffer)


def _rates(fd: int, code: int, width: int, height: int) -> FrameRates:
    rates: list[float] = []
    for raw in _entries(fd, VIDIOC_ENUM_FRAMEINTERVALS, lambda i: FRMIVALENUM.pack(i, code, width, height, *[0] * 9)):
        kind, found = parse_frame_interval(raw)
        if kind != TYPE_DISCRETE:
            return FrameRates(lowest=found[0], highest=found[1])
        rates.extend(found)
    return FrameRates(tuple(sorted(set(rates), reverse=True)))


def _sizes(fd: int, code: int) -> tuple[FrameSize, ...]:
    sizes = []
    for raw in _entries(fd, VIDIOC_ENUM_FRAMESIZES, lambda i: FRMSIZEENUM.pack(i, code, *[0] * 9)):
        size = parse_frame_size(raw)
        sizes.append(FrameSize(size.width, size.height, size.max_width, size.max_height, size.step,
                               _rates(fd, code, size.width, size.height)))  # fmt: skip
    return tuple(sizes)


def _formats(fd: int) -> tuple[PixelFormat, ...]:
    formats = []
    for raw in _entries(fd, VIDIOC_ENUM_FMT, lambda i: FMTDESC.pack(i, BUF_TYPE_VIDEO_CAPTURE, 0, b"", *[0] * 5)):
        found = parse_format(raw)
        sizes = _sizes(fd, fourcc_code(found.fourcc))
        formats.append(PixelFormat(found.fourcc, found.description, found.compressed, found.emulated, sizes))
    return tuple(formats)


def _problem(error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied: add the user to the video group (sudo usermod -aG video $USER), log in again"
    if error.errno == errno.ENOTTY:
        return "not a V4L2 device"
    if error.errno == errno.EBUSY:
        return "busy: another program is using it"
    return os.strerror(error.errno or 0) or str(error)


def describe_device(path: Path, names: Path = NAMES) -> CaptureDevice:
    """One device node: its sysfs name, its capability and, for a video capture node, its modes."""
    name_file = names / path.name / "name"
    name = name_file.read_text(encoding="utf-8", errors="replace").strip() if name_file.is_file() else ""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except OSError as error:
        return CaptureDevice(str(path), name, problem=_problem(error))
    try:
        capability = parse_capability(_query(fd))
        formats = _formats(fd) if capability.captures_video else ()
        return CaptureDevice(str(path), name or capability.card, capability, formats)
    except OSError as error:
        return CaptureDevice(str(path), name, problem=_problem(error))
    finally:
        os.close(fd)


def _query(fd: int) -> bytes:
    buffer = bytearray(CAPABILITY.size)
    fcntl.ioctl(fd, VIDIOC_QUERYCAP, buffer)
    return bytes(buffer)


def _node_order(path: Path) -> tuple[str, int]:
    number = re.search(r"(\d+)$", path.name)
    return (path.name.rstrip("0123456789"), int(number.group(1)) if number else -1)


def list_devices(devices: Path = DEVICES, names: Path = NAMES) -> list[CaptureDevice]:
    """Every video* node under `devices` (/dev), in number order (video2 before video10), described."""
    return [describe_device(path, names) for path in sorted(devices.glob("video*"), key=_node_order)]
