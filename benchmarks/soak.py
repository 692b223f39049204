"""Soak: the real gate loop on a turnstile video played in a loop for a long time (default 5 min; the docs run is
one hour), sampling its memory (RSS), open files, threads and per-frame latency, and checking that every decision
reached the access log.

Run: `python benchmarks/soak.py [--minutes 60] [--employees 4 --strangers 4] [--out docs/soak]`.
Walkers are LFW DevTest people ($FACEGATE_DATA, default ../shared/datasets); employees are enrolled with the real
`add_person` into a fresh SQLite database in a temporary folder; the gate uses the configured defaults (shipped
model, FAR 1e-4 threshold, 3 of 5 frames) with a cooldown shorter than one loop of the video, so each pass of an
employee is a decision. Frames are processed as fast as the CPU allows (not paced); frame time runs on across
loops. Prints a table per time slice and writes soak.json and soak.png (RSS and latency over time) to --out.
Pin it for steadier numbers: `taskset -c 1 python benchmarks/soak.py ...` (latency depends on what else runs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from evaluation.walkups import enrol_employees, pick_walkers, render_walkers, walkup_settings, walkup_spec  # noqa: E402
from gate.config import Settings  # noqa: E402
from gate.door.actuators import LogActuator  # noqa: E402
from gate.runtime.loop import GateLoop  # noqa: E402
from gate.runtime.parts import Runtime  # noqa: E402
from gate.vision.sources import Frame, VideoFileSource  # noqa: E402
from training.datasets import dataset_root  # noqa: E402

SAMPLE_S = 10.0  # how often memory, files and threads are sampled
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sample:
    """The process at one moment of the soak, and the step latencies since the previous sample."""

    elapsed_s: float
    frames: int
    rss_mb: float
    open_files: int
    threads: int
    decisions: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_max_ms: float


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE / 2**20


def looped(path: Path, until: float) -> Iterator[Frame]:
    """The video's frames again and again until the monotonic clock passes `until`; index and time run on."""
    index, offset = 0, 0.0
    while time.monotonic() < until:
        source = VideoFileSource(path)
        last = 0.0
        for frame in source.frames():
            last = frame.time
            yield Frame(index, offset + frame.time, frame.image)
            index += 1
        source.close()
        offset += last + 1.0 / source.fps


def sample(start: float, loop: GateLoop, latencies: list[float]) -> Sample:
    ordered = sorted(latencies) or [0.0]
    return Sample(
        elapsed_s=round(time.monotonic() - start, 1),
        frames=loop.frames,
        rss_mb=round(rss_mb(), 1),
        open_files=len(os.listdir("/proc/self/fd")),
        threads=len(os.listdir("/proc/self/task")),
        decisions=len(loop.decisions),
        latency_p50_ms=round(1000 * statistics.median(ordered), 1),
        latency_p95_ms=round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        latency_max_ms=round(1000 * ordered[-1], 1),
    )


def soak(runtime: Runtime, video: Path, minutes: float) -> tuple[list[Sample], GateLoop]:
    loop = GateLoop(runtime, LogActuator())
    start = time.monotonic()
    samples, latencies, next_sample = [], [], start + SAMPLE_S
    for frame in looped(video, start + 60 * minutes):
        began = time.perf_counter()
        loop.step(frame)
        latencies.append(time.perf_counter() - began)
        if time.monotonic() >= next_sample:
            samples.append(sample(start, loop, latencies))
            print(json.dumps(asdict(samples[-1])), flush=True)
            latencies, next_sample = [], next_sample + SAMPLE_S
    loop.finish()
    return samples, loop


def table(samples: list[Sample], slices: int = 6) -> str:
    """One row per slice of the run: the slice's latency percentiles (of the samples' medians) and its last sample."""
    size = max(1, len(samples) // slices)
    rows = [
        "| minutes | frames | RSS MB | open files | threads | decisions | step p50 ms | step p95 ms | step max ms |"
    ]
    rows.append("|---|---|---|---|---|---|---|---|---|")
    for first in range(0, len(samples), size):
        part = samples[first : first + size]
        last = part[-1]
        rows.append(
            f"| {part[0].elapsed_s / 60:.0f}-{last.elapsed_s / 60:.0f} | {last.frames} | {last.rss_mb} | "
            f"{last.open_files} | {last.threads} | {last.decisions} | "
            f"{statistics.median(s.latency_p50_ms for s in part):.0f} | "
            f"{max(s.latency_p95_ms for s in part):.0f} | {max(s.latency_max_ms for s in part):.0f} |"
        )
    return "\n".join(rows)


def plot(samples: list[Sample], path: Path) -> None:
    minutes = [s.elapsed_s / 60 for s in samples]
    figure, (memory, latency) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    memory.plot(minutes, [s.rss_mb for s in samples], label="RSS (MB)")
    memory.plot(minutes, [s.open_files for s in samples], label="open files")
    memory.set_ylim(bottom=0)
    memory.legend()
    memory.set_title("FaceGate soak: the gate loop on a looping walk-up video")
    for field, label in [("latency_p50_ms", "p50"), ("latency_p95_ms", "p95"), ("latency_max_ms", "max")]:
        latency.plot(minutes, [getattr(s, field) for s in samples], label=f"step {label} (ms)")
    latency.set_ylim(bottom=0)
    latency.set_xlabel("minutes")
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def prepare(work: Path, employees: int, strangers: int) -> tuple[Runtime, Path]:
    """The walkers' video and a runtime with the employees enrolled, in `work`."""
    lfw = dataset_root() / "lfw"
    walkers = pick_walkers(lfw / "lfw-deepfunneled", lfw / "peopleDevTest.txt", employees, strangers, seed=7)
    base = Settings()
    settings = walkup_settings(base, work).model_copy(
        update={"decision": base.decision.model_copy(update={"cooldown_s": 5.0})}
    )
    runtime = Runtime.open(settings)
    enrol_employees(walkers, runtime)
    video, _ = render_walkers(walkers, work / "walk.mp4", walkup_spec(settings, fps=15.0, walk_s=2.5, seed=7))
    return runtime, video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--employees", type=int, default=4)
    parser.add_argument("--strangers", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("out/soak"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        runtime, video = prepare(Path(folder), args.employees, args.strangers)
        samples, loop = soak(runtime, video, args.minutes)
        recorded = len(runtime.database.events(limit=10**7))
        journal_empty = not loop.events.journal.pending()
    print(table(samples))
    print(f"decisions {len(loop.decisions)}, access events recorded {recorded}, journal empty: {journal_empty}")
    growth = samples[-1].rss_mb - samples[min(len(samples) - 1, 6)].rss_mb if samples else 0.0
    print(
        f"RSS after the first minute {samples[min(len(samples) - 1, 6)].rss_mb} MB, at the end "
        f"{samples[-1].rss_mb} MB ({growth:+.1f} MB)"
    )
    summary = {
        "minutes": args.minutes,
        "decisions": len(loop.decisions),
        "events_recorded": recorded,
        "journal_empty": journal_empty,
        "samples": [asdict(s) for s in samples],
    }
    (args.out / "soak.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    plot(samples, args.out / "soak.png")
    print(f"wrote {args.out / 'soak.json'} and {args.out / 'soak.png'}")


if __name__ == "__main__":
    main()
