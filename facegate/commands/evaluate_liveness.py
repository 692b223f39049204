"""`facegate evaluate-liveness`: the passive liveness test on presentation attacks of several species against
3D-like walk-ups of LFW people (a thin wrapper over evaluation.liveness)."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext
from gate.errors import FaceGateError

if TYPE_CHECKING:
    from tqdm import tqdm

QUIET_LOGGERS = ("gate", "training")


# LivenessRun's keys as the user typed them, for a refusal
OPTIONS = {"lfw_dir": "--data", "train_people": "--train-people", "test_people": "--test-people", "seed": "--seed"} | {
    "clip.fps": "--fps",
    "clip.walk_s": "--walk-seconds",
    "(root)": "--walk-seconds, --fps",
}


def _bar(description: str, total: int) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total or None, desc=description, unit="person")


def evaluate_liveness_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for liveness.json and liveness.png.")],
    train_people: Annotated[int, typer.Option("--train-people", help="peopleDevTrain people (thresholds).")] = 60,
    test_people: Annotated[int, typer.Option("--test-people", help="peopleDevTest people (reported).")] = 100,
    seed: Annotated[int, typer.Option(help="Which people, which photos, the clips' paths and swings.")] = 0,
    fps: Annotated[float, typer.Option(help="Frame rate of the simulated camera.")] = 12.0,
    walk_s: Annotated[float, typer.Option("--walk-seconds", help="How long each walk-up lasts.")] = 2.5,
    threads: Annotated[
        int, typer.Option(help="CPU threads for MTCNN and OpenCV (1: many times faster on a busy box).")
    ] = 1,
    data: Annotated[
        Path | None, typer.Option(help="Folder holding lfw/ (default: $FACEGATE_DATA, else ../shared/datasets).")
    ] = None,
) -> None:
    """Measure the liveness test on simulated attacks.

    Renders each person's presentation attacks (a flat replay, the same with per-frame perspective jitter, prints
    bent mildly and strongly, the photo animated into a head turn) and a 3D-like walk-up (a small synthetic head
    turn); runs MTCNN, the tracker and both liveness methods on every frame; chooses thresholds on the train
    people and reports APCER per species (the worst counts) and BPCER with 95 % intervals on the test people.
    Six clips a person: the defaults (160 people) take about an hour on 2 cores; docs/research/liveness.md used
    30 + 50."""
    import cv2  # the work's imports load when it runs: other commands start without the networks
    import torch

    from evaluation.liveness import LivenessRun, evaluate_liveness
    from evaluation.liveness_report import plot_scores, text_table
    from evaluation.turnstile import WALKUP_MIN_FACE_PX
    from gate.config import validated
    from gate.vision.detection import Detector
    from training.datasets import dataset_root, lfw_images

    context: AppContext = ctx.obj
    settings = context.settings
    lfw_dir = lfw_images(data if data is not None else dataset_root())
    if not lfw_dir.is_dir():
        raise FaceGateError(f"LFW folder not found: {lfw_dir} (give --data or set $FACEGATE_DATA)")
    people = {"lfw_dir": lfw_dir, "train_people": train_people, "test_people": test_people, "seed": seed}
    run = validated(LivenessRun, people | {"clip": {"fps": fps, "walk_s": walk_s}}, "evaluate-liveness", OPTIONS)
    detector_settings = settings.detector.model_copy(
        update={"min_face_px": max(settings.detector.min_face_px, WALKUP_MIN_FACE_PX)}
    )
    if threads < 1:
        raise FaceGateError("--threads must be at least 1")
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    if settings.logging.level != "DEBUG":
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    report = evaluate_liveness(Detector(detector_settings), run, _bar)
    out.mkdir(parents=True, exist_ok=True)
    command = "facegate " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    ran = report.setup.model_copy(update={"command": command, "detector_min_face_px": detector_settings.min_face_px})
    result = replace(report, setup=ran).result()
    (out / "liveness.json").write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    plot_scores(report, out / "liveness.png")
    typer.echo(text_table(report))
    typer.echo(f"data {out / 'liveness.json'}, plot {out / 'liveness.png'}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("evaluate-liveness")(evaluate_liveness_command)
