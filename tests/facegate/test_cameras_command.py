"""`facegate cameras` as a user runs it: this machine's own /dev (one line when it has no camera), and how a
camera, a metadata node and an unreadable node are printed."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from facegate.cli import app
from facegate.commands.cameras import NONE_FOUND, device_lines
from gate.vision.v4l2 import Capability, CaptureDevice, FrameRates, FrameSize, PixelFormat

UVC = Capability("uvcvideo", "HD Pro Webcam C920", "usb-0000:00:14.0-1", 0x1 | 0x04000000)


def test_cameras_command_lists_this_machines_devices_or_says_there_are_none(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    outcome = CliRunner().invoke(app, ["--config", str(config), "cameras"])
    assert outcome.exit_code == 0, outcome.output
    nodes = sorted(Path("/dev").glob("video*"))
    if nodes:  # a machine with cameras: each node has its line
        assert all(str(node) in outcome.output for node in nodes)
    else:
        assert outcome.output == NONE_FOUND + "\n"


def test_a_camera_is_printed_with_its_pixel_formats_sizes_and_rates() -> None:
    sizes = (FrameSize(1920, 1080, rates=FrameRates((30.0, 15.0))), FrameSize(640, 480, rates=FrameRates((30.0,))))
    formats = (
        PixelFormat("MJPG", "Motion-JPEG", compressed=True, emulated=False, sizes=sizes),
        PixelFormat("YUYV", "YUYV 4:2:2", compressed=False, emulated=False, sizes=sizes[1:]),
    )
    text = device_lines(CaptureDevice("/dev/video0", "HD Pro Webcam C920", UVC, formats))
    assert text.splitlines() == [
        "/dev/video0  HD Pro Webcam C920  (uvcvideo, usb-0000:00:14.0-1)",
        '  pixel_format = "MJPG"  Motion-JPEG (compressed)',
        "    1920x1080 at 30, 15 fps",
        "    640x480 at 30 fps",
        '  pixel_format = "YUYV"  YUYV 4:2:2',
        "    640x480 at 30 fps",
    ]


def test_a_metadata_node_and_an_unreadable_node_are_named_as_such() -> None:
    metadata = Capability("uvcvideo", "HD Pro Webcam C920", "usb-0000:00:14.0-1", 0x00800000)
    assert "not a video capture node" in device_lines(CaptureDevice("/dev/video1", "HD Pro Webcam C920", metadata))
    denied = CaptureDevice("/dev/video2", "", problem="permission denied: add the user to the video group")
    assert device_lines(denied) == "/dev/video2  (no name): permission denied: add the user to the video group"
