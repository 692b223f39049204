"""`facegate cameras`: the local cameras (V4L2 devices) and the modes each offers, the values of [camera] source,
pixel_format, width, height and fps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from gate.vision.v4l2 import CaptureDevice, PixelFormat

NONE_FOUND = (
    "no cameras found: this machine has no /dev/video* device (a USB camera plugged in? its driver loaded?); "
    "a network camera is given by its URL, as [camera] source"
)


def cameras() -> None:
    """List the local cameras and the modes each offers.

    Each /dev/video* device with its name and, for a camera, the pixel formats, frame sizes and frame rates it
    offers: what [camera] source, pixel_format, width, height and fps may be set to. A camera's other nodes
    (metadata) are named as such. Network cameras (rtsp://, http://) are not listed."""
    from gate.vision.v4l2 import list_devices

    devices = list_devices()
    typer.echo("\n".join(device_lines(device) for device in devices) if devices else NONE_FOUND)


def device_lines(device: CaptureDevice) -> str:
    """A device as `facegate cameras` prints it: a line naming it, then a line per pixel format and size."""
    name = device.name or "(no name)"
    if device.problem:
        return f"{device.path}  {name}: {device.problem}"
    capability = device.capability
    if capability is None or not capability.captures_video:
        return f"{device.path}  {name}: not a video capture node (a camera's metadata, or another kind of device)"
    head = f"{device.path}  {name}  ({capability.driver}, {capability.bus})"
    if not device.formats:
        return f"{head}\n  no pixel formats listed"
    return "\n".join([head, *(line for found in device.formats for line in _format_lines(found))])


def _format_lines(found: PixelFormat) -> list[str]:
    notes = [note for note, on in (("compressed", found.compressed), ("converted in software", found.emulated)) if on]
    kind = f" ({', '.join(notes)})" if notes else ""
    lines = [f'  pixel_format = "{found.fourcc.strip()}"  {found.description}{kind}']
    lines += [f"    {size.describe()}" for size in found.sizes] or ["    sizes not listed"]
    return lines


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("cameras")(cameras)
