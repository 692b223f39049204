"""How old a live frame is when a slow gate finishes with it: every frame in order against LiveSource's newest frame.

Run: `python benchmarks/live_latency.py [--fps 15] [--seconds 30] [--delays 0.5 1.5 3] [--plot docs/live-latency.png]`.
The camera is evaluation.paced_stream: 640x480 MJPEG over HTTP from a thread, frame n captured at start + n / fps
and numbered in its pixels, opened by URL through OpenCV (its FFmpeg backend), as an IP camera would be. The gate is
simulated: a sleep of `delay` x the frame interval per frame, no CPU. Two consumers, each on a fresh stream for
`--seconds`:

- in order: cv2.VideoCapture read in the consumer's thread, one frame per pass (LiveSource before its reader thread);
- newest: gate.vision.sources.LiveSource (a reader thread keeps only the newest frame; older ones are dropped).

A frame's age is the time the simulated processing ends minus the time the camera captured it: the floor of the
decision's latency. "dropped" are frames LiveSource read and never yielded; "skipped" are frames the camera passed
over because the consumer's socket was full (OpenCV's, FFmpeg's and the kernel's buffers hold the rest); "behind"
is how many frames newer than the last one processed the camera had captured when the run ended.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from evaluation.paced_stream import PacedStream, read_sequence
from gate.config import CameraSettings
from gate.vision.sources import LiveSource

SIZE = (640, 480)
MODES = ("in order", "newest")


@dataclass
class Run:
    """One consumer on one stream: per processed frame, when processing ended (s from the start) and its age."""

    mode: str
    delay_factor: float
    ends: list[float] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)
    last_sequence: int = -1
    dropped: int = 0
    skipped: int = 0
    behind: int = 0


def in_order_images(stream: PacedStream, counts: Run) -> Iterator[np.ndarray]:
    """Every frame of the stream in order, read in the caller's thread (the old LiveSource; nothing to count)."""
    capture = cv2.VideoCapture(stream.url)
    try:
        while (read := capture.read())[0]:
            yield read[1]
    finally:
        capture.release()


def newest_images(stream: PacedStream, counts: Run) -> Iterator[np.ndarray]:
    """The newest frame not yet seen, each time one is asked for (LiveSource); its drops go into `counts`."""
    source = LiveSource(stream.url, CameraSettings())
    try:
        for frame in source.frames():
            yield frame.image
            counts.dropped = source.dropped
    finally:
        source.close()
        counts.dropped = source.dropped


def consume(mode: str, fps: float, delay_factor: float, seconds: float) -> Run:
    """Run one consumer for `seconds` on a fresh stream: read a frame, 'process' it (sleep), record its age."""
    run = Run(mode, delay_factor)
    read = in_order_images if mode == "in order" else newest_images
    with PacedStream(fps=fps, size=SIZE) as stream:
        images = read(stream, run)
        start = time.monotonic()
        for image in images:
            time.sleep(delay_factor / fps)  # the simulated pipeline
            ended = time.monotonic()
            run.last_sequence = read_sequence(image)
            run.ends.append(ended - start)
            run.ages.append(ended - stream.captured_at(run.last_sequence))
            if ended - start >= seconds:
                break
        run.behind = stream.newest() - run.last_sequence
        images.close()
        run.skipped = stream.skipped
    return run


def table(runs: list[Run], fps: float) -> str:
    """The runs as a Markdown table: age p50 / p95 / max and the frame counts."""
    lines = [
        "| gate time per frame | source | age p50 | age p95 | age max | processed | dropped | skipped | behind |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        p50, p95 = np.percentile(run.ages, [50, 95])
        delay = f"{run.delay_factor:g}x ({1000 * run.delay_factor / fps:.0f} ms)"
        lines.append(
            f"| {delay} | {run.mode} | {p50:.3f} s | {p95:.3f} s | {max(run.ages):.3f} s | {len(run.ages)} "
            f"| {run.dropped} | {run.skipped} | {run.behind} |"
        )
    return "\n".join(lines)


def plot(runs: list[Run], fps: float, path: Path) -> Path:
    """Frame age against time, one panel per gate speed, both sources."""
    factors = sorted({run.delay_factor for run in runs})
    figure = Figure(figsize=(4.2 * len(factors), 3.8), dpi=100)
    for column, factor in enumerate(factors, start=1):
        axes = figure.add_subplot(1, len(factors), column)
        for run in (r for r in runs if r.delay_factor == factor):
            axes.plot(run.ends, run.ages, ".-", markersize=3, linewidth=0.8, label=run.mode)
        bound = (1 + factor) / fps
        axes.axhline(bound, color="grey", linestyle=":", linewidth=0.8, label="one frame interval + gate time")
        axes.set_ylim(0, None)
        axes.set_xlabel("time (s)")
        axes.set_ylabel("frame age when processed (s)")
        axes.set_title(f"gate at {factor:g}x the frame interval")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
    figure.suptitle(f"Live stream at {fps:g} fps, {SIZE[0]}x{SIZE[1]} MJPEG over HTTP")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, default=15.0, help="the camera's frame rate")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each consumer runs")
    parser.add_argument("--delays", type=float, nargs="+", default=[0.5, 1.5, 3.0], help="gate time / frame interval")
    parser.add_argument("--plot", type=Path, default=Path("docs/live-latency.png"), help="the PNG to write")
    args = parser.parse_args(argv)
    runs = []
    for factor in args.delays:
        for mode in MODES:
            runs.append(consume(mode, args.fps, factor, args.seconds))
            print(f"{mode}, {factor:g}x: {len(runs[-1].ages)} frames processed", file=sys.stderr)
    print(table(runs, args.fps))
    print(f"plot: {plot(runs, args.fps, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
