"""Streams per box: how many 640x480 cameras at 10 fps one `facegate run` process serves with its decisions keeping
up (the p95 age of a frame, from capture to the end of its processing, under 200 ms).

Run: `python benchmarks/streams.py [--cameras 1 2 3 4 5 6] [--seconds 30] [--faces 1 5] [--follow both]
[--threads N] [--out docs/streams]`.
Each camera is a real MJPEG stream over loopback at camera pace (evaluation.paced_stream.PacedStream, what a
network camera sends), read by gate.vision.sources.LiveSource, all served by gate.runtime.cameras.run_cameras with the
shipped model, as `facegate run` with [[cameras]] does: one detector and one embedder, a gate loop per camera.
With 1 face the scene is benchmarks/latency.py's walk (one LFW photo walking up and back); with 5 faces, its five
still tiles. Nobody is enrolled: every face is embedded and searched, as a stranger's would be. The first
`--warmup` seconds of each run are left out. "frames/s" counts the frames the gate processed, all cameras
together; "dropped" the frames the cameras sent that the gate never saw (it takes the newest).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from dataclasses import replace as replaced
from pathlib import Path

import numpy as np
import torch
from latency import build_frames, walk_frames

from evaluation.paced_stream import PacedStream
from gate.config import Settings, settings_from_dict
from gate.door.actuators import LogActuator
from gate.runtime.cameras import run_cameras
from gate.runtime.parts import Runtime
from gate.vision.sources import LiveSource
from training.datasets import dataset_root

FPS, SIZE = 10.0, (640, 480)
KEEPS_UP_S = 0.2  # the p95 frame age under which decisions keep up with the cameras


@dataclass(frozen=True)
class Result:
    cameras: int
    faces: int
    follow: bool
    processed_per_s: float
    age_p50_s: float
    age_p95_s: float
    dropped_share: float

    def row(self) -> tuple[str, ...]:
        keeps_up = "yes" if self.age_p95_s < KEEPS_UP_S else "no"
        return (
            str(self.cameras),
            str(self.faces),
            "on" if self.follow else "off",
            f"{self.processed_per_s:.1f}",
            f"{self.processed_per_s / self.cameras:.1f}",
            f"{self.age_p50_s * 1000:.0f}",
            f"{self.age_p95_s * 1000:.0f}",
            f"{self.dropped_share:.0%}",
            keeps_up,
        )


HEADER = ("cameras", "faces", "follow", "frames/s", "per camera", "age p50 ms", "age p95 ms", "dropped", "keeps up")


def site_settings(folder: Path, follow: bool) -> Settings:
    return settings_from_dict(
        {
            "database": {"url": f"sqlite:///{folder / 'gate.db'}", "journal_path": str(folder / "events.journal")},
            "gallery": {"index_path": str(folder / "gallery.faiss")},
            "detector": {"follow": follow},
            "logging": {"level": "WARNING"},
        },
        base_dir=folder,
    )


def with_gate_id(settings: Settings, gate_id: str) -> Settings:
    """A camera of the run: its own gate id; when its stream goes away at the end, it gives up after one retry."""
    camera = settings.camera.model_copy(update={"gate_id": gate_id, "max_reconnects": 1, "reconnect_initial_s": 0.1})
    return settings.model_copy(update={"camera": camera})


def markdown(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([lines[0], "|" + "---|" * len(rows[0]), *lines[1:]])


def serve(
    runtime: Runtime, frames: list[np.ndarray], faces: int, cameras: int, seconds: float, warmup: float
) -> Result:
    """`cameras` streams of `frames` served for `seconds` by one run_cameras; the streams then go away."""
    streams = [PacedStream(fps=FPS, size=SIZE, images=[f[:, :, ::-1].copy() for f in frames]) for _ in range(cameras)]
    runtimes = [replaced(runtime, settings=with_gate_id(runtime.settings, f"cam-{i}")) for i in range(cameras)]
    sources = [LiveSource(s.url, r.settings.camera) for s, r in zip(streams, runtimes, strict=True)]
    timer = threading.Timer(seconds, lambda: [stream.close() for stream in streams])
    timer.start()
    started = time.monotonic()
    summaries = run_cameras([(r, s, LogActuator()) for r, s in zip(runtimes, sources, strict=True)])
    elapsed = time.monotonic() - started
    kept = [age for s in summaries for age in s.frame_ages_s[int(len(s.frame_ages_s) * warmup / seconds) :]]
    sent = sum(stream.sent for stream in streams)
    processed = sum(s.processed for s in summaries)
    return Result(
        cameras,
        faces,
        runtime.settings.detector.follow,
        processed / elapsed,
        statistics.median(kept),
        float(np.percentile(kept, 95)),
        max(0.0, 1 - processed / sent) if sent else 0.0,
    )


def plot(results: list[Result], path: Path) -> None:
    """p95 frame age against cameras, one line per (faces, follow), with the 200 ms line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for faces, follow in sorted({(r.faces, r.follow) for r in results}):
        runs = sorted((r for r in results if (r.faces, r.follow) == (faces, follow)), key=lambda r: r.cameras)
        label = f"{faces} face{'s' if faces > 1 else ''}, following {'on' if follow else 'off'}"
        axis.plot([r.cameras for r in runs], [r.age_p95_s * 1000 for r in runs], marker="o", label=label)
    axis.axhline(KEEPS_UP_S * 1000, color="grey", linestyle="--", label="keeping up (p95 < 200 ms)")
    axis.set_xlabel("640x480 cameras at 10 fps, one process")
    axis.set_ylabel("frame age p95 (ms)")
    axis.set_yscale("log")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--faces", type=int, nargs="+", choices=(1, 5), default=[1, 5])
    parser.add_argument("--follow", choices=("on", "off", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="also write OUT.json and OUT.png (p95 age against cameras)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, one per core)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("gate.vision.sources").setLevel(logging.CRITICAL)  # each run ends by its streams going away
    lfw = dataset_root() / "lfw" / "lfw-deepfunneled"
    scenes = {1: walk_frames(lfw, 120), 5: [build_frames(lfw)["5 faces"]]}
    follows = {"on": [True], "off": [False], "both": [False, True]}[args.follow]
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        for follow in follows:
            runtime = Runtime.open(site_settings(Path(folder) / f"follow-{follow}", follow))
            for faces in args.faces:
                for cameras in args.cameras:
                    results.append(serve(runtime, scenes[faces], faces, cameras, args.seconds, args.warmup))
                    print(" | ".join(results[-1].row()), flush=True)
            runtime.close()
    print()
    print(markdown([HEADER, *(result.row() for result in results)]))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
        plot(results, args.out.with_suffix(".png"))
        print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
