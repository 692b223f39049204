"""Tests of the V4L2 device listing (gate/vision/v4l2.py): the ioctl numbers, structure sizes and parsing checked
against <linux/videodev2.h> itself (a C program fills the real structures), and the listing on device folders
that hold no camera (real files and a real character device)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from gate.vision import v4l2
from gate.vision.v4l2 import (
    CaptureDevice,
    FrameRates,
    FrameSize,
    describe_device,
    fourcc,
    fourcc_code,
    list_devices,
    parse_capability,
    parse_format,
    parse_frame_interval,
    parse_frame_size,
)

HEADER = Path("/usr/include/linux/videodev2.h")

# fills each structure the way a driver answers (a UVC webcam's metadata node, Motion-JPEG at 1920x1080, ...)
PROBE_C = r"""
#include <stdio.h>
#include <string.h>
#include <linux/videodev2.h>
static void dump(const char *name, const void *p, size_t n) {
    const unsigned char *b = p; printf("%s ", name);
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
    printf("\n");
}
int main(void) {
    printf("sizes %zu %zu %zu %zu\n", sizeof(struct v4l2_capability), sizeof(struct v4l2_fmtdesc),
           sizeof(struct v4l2_frmsizeenum), sizeof(struct v4l2_frmivalenum));
    printf("ioctls %lu %lu %lu %lu\n", (unsigned long)VIDIOC_QUERYCAP, (unsigned long)VIDIOC_ENUM_FMT,
           (unsigned long)VIDIOC_ENUM_FRAMESIZES, (unsigned long)VIDIOC_ENUM_FRAMEINTERVALS);
    struct v4l2_capability cap; memset(&cap, 0, sizeof cap);
    strcpy((char *)cap.driver, "uvcvideo"); strcpy((char *)cap.card, "HD Pro Webcam C920");
    strcpy((char *)cap.bus_info, "usb-0000:00:14.0-1"); cap.version = 0x060100;
    cap.capabilities = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_META_CAPTURE | V4L2_CAP_STREAMING | V4L2_CAP_DEVICE_CAPS;
    cap.device_caps = V4L2_CAP_META_CAPTURE | V4L2_CAP_STREAMING;
    dump("metadata_node", &cap, sizeof cap);
    cap.device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
    dump("capture_node", &cap, sizeof cap);
    struct v4l2_fmtdesc fmt; memset(&fmt, 0, sizeof fmt);
    fmt.index = 1; fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE; fmt.flags = V4L2_FMT_FLAG_COMPRESSED;
    strcpy((char *)fmt.description, "Motion-JPEG"); fmt.pixelformat = V4L2_PIX_FMT_MJPEG;
    dump("fmtdesc", &fmt, sizeof fmt);
    struct v4l2_frmsizeenum size; memset(&size, 0, sizeof size);
    size.pixel_format = V4L2_PIX_FMT_MJPEG; size.type = V4L2_FRMSIZE_TYPE_DISCRETE;
    size.discrete.width = 1920; size.discrete.height = 1080;
    dump("size_discrete", &size, sizeof size);
    size.type = V4L2_FRMSIZE_TYPE_STEPWISE; size.stepwise.min_width = 32; size.stepwise.max_width = 3840;
    size.stepwise.step_width = 2; size.stepwise.min_height = 32; size.stepwise.max_height = 2160;
    size.stepwise.step_height = 2;
    dump("size_stepwise", &size, sizeof size);
    struct v4l2_frmivalenum ival; memset(&ival, 0, sizeof ival);
    ival.pixel_format = V4L2_PIX_FMT_YUYV; ival.width = 640; ival.height = 480; ival.type = V4L2_FRMIVAL_TYPE_DISCRETE;
    ival.discrete.numerator = 1001; ival.discrete.denominator = 30000;
    dump("interval_discrete", &ival, sizeof ival);
    ival.type = V4L2_FRMIVAL_TYPE_CONTINUOUS; ival.stepwise.min.numerator = 1; ival.stepwise.min.denominator = 60;
    ival.stepwise.max.numerator = 1; ival.stepwise.max.denominator = 1;
    ival.stepwise.step.numerator = 1; ival.stepwise.step.denominator = 1;
    dump("interval_continuous", &ival, sizeof ival);
    printf("fourccs %u %u\n", V4L2_PIX_FMT_MJPEG, V4L2_PIX_FMT_Y16);
    return 0;
}
"""


@pytest.fixture(scope="module")
def from_the_header(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What a C program compiled against <linux/videodev2.h> prints: sizes, ioctl numbers, filled structures."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not HEADER.is_file():
        pytest.skip("needs a C compiler and the kernel's <linux/videodev2.h> (linux-libc-dev)")
    folder = tmp_path_factory.mktemp("v4l2")
    (folder / "probe.c").write_text(PROBE_C, encoding="utf-8")
    subprocess.run([compiler, "-o", str(folder / "probe"), str(folder / "probe.c")], check=True, timeout=60)
    printed = subprocess.run([str(folder / "probe")], check=True, capture_output=True, text=True).stdout
    return dict(line.split(" ", 1) for line in printed.splitlines())


def test_structure_sizes_and_ioctl_numbers_match_the_kernel_header(from_the_header: dict[str, str]) -> None:
    sizes = [v4l2.CAPABILITY.size, v4l2.FMTDESC.size, v4l2.FRMSIZEENUM.size, v4l2.FRMIVALENUM.size]
    assert from_the_header["sizes"].split() == [str(size) for size in sizes]
    ioctls = [v4l2.VIDIOC_QUERYCAP, v4l2.VIDIOC_ENUM_FMT, v4l2.VIDIOC_ENUM_FRAMESIZES, v4l2.VIDIOC_ENUM_FRAMEINTERVALS]
    assert from_the_header["ioctls"].split() == [str(number) for number in ioctls]
    assert from_the_header["fourccs"].split() == [str(fourcc_code("MJPG")), str(fourcc_code("Y16"))]


def test_structures_filled_by_c_are_read_back(from_the_header: dict[str, str]) -> None:
    def raw(name: str) -> bytes:
        return bytes.fromhex(from_the_header[name])

    metadata, capture = parse_capability(raw("metadata_node")), parse_capability(raw("capture_node"))
    assert (capture.driver, capture.card, capture.bus) == ("uvcvideo", "HD Pro Webcam C920", "usb-0000:00:14.0-1")
    assert capture.captures_video and not metadata.captures_video  # the node's own caps, not the device's
    mjpeg = parse_format(raw("fmtdesc"))
    assert (mjpeg.fourcc, mjpeg.description, mjpeg.compressed, mjpeg.emulated) == ("MJPG", "Motion-JPEG", True, False)
    assert parse_frame_size(raw("size_discrete")) == FrameSize(1920, 1080)
    assert parse_frame_size(raw("size_stepwise")) == FrameSize(32, 32, 3840, 2160, (2, 2))
    assert parse_frame_interval(raw("interval_discrete")) == (v4l2.TYPE_DISCRETE, (29.97,))
    assert parse_frame_interval(raw("interval_continuous")) == (v4l2.TYPE_CONTINUOUS, (1.0, 60.0))


def test_fourcc_both_ways() -> None:
    assert fourcc(fourcc_code("YUYV")) == "YUYV" and fourcc(fourcc_code("Y16")) == "Y16 "
    assert fourcc_code("MJPG") == struct.unpack("<I", b"MJPG")[0]


def test_frame_sizes_and_rates_described() -> None:
    assert FrameSize(640, 480, rates=FrameRates((30.0, 15.0, 7.5))).describe() == "640x480 at 30, 15, 7.5 fps"
    stepwise = FrameSize(32, 32, 3840, 2160, (2, 2), FrameRates(lowest=1.0, highest=60.0))
    assert stepwise.describe() == "32x32 to 3840x2160 in steps of 2x2 at 1-60 fps"
    assert FrameSize(320, 240).describe() == "320x240 at rate not given"


def test_list_devices_in_a_folder_without_any_is_empty(tmp_path: Path) -> None:
    assert list_devices(tmp_path, tmp_path / "sys") == []


def test_list_devices_nodes_that_are_no_cameras_say_why(tmp_path: Path) -> None:
    devices, names = tmp_path / "dev", tmp_path / "sys"
    devices.mkdir()
    (devices / "video10").symlink_to("/dev/null")  # a real character device that answers no V4L2 ioctl
    (devices / "video2").write_bytes(b"")  # a plain file
    (devices / "audio0").write_bytes(b"")  # not a video node: not listed
    (names / "video2").mkdir(parents=True)
    (names / "video2" / "name").write_text("HD Pro Webcam C920\n", encoding="utf-8")
    listed = list_devices(devices, names)
    assert [Path(device.path).name for device in listed] == ["video2", "video10"]  # in number order
    assert listed[0] == CaptureDevice(str(devices / "video2"), "HD Pro Webcam C920", problem="not a V4L2 device")
    assert listed[1].problem == "not a V4L2 device" and listed[1].capability is None


def test_describe_device_missing_node_says_so(tmp_path: Path) -> None:
    assert describe_device(tmp_path / "video7", tmp_path).problem == "No such file or directory"
