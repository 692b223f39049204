"""`facegate run` (the gate on the configured camera) and `facegate demo` (the gate on a generated video)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext
from gate.config import camera_settings
from gate.errors import FaceGateError

if TYPE_CHECKING:
    from gate.runtime.results import GateSummary

CAMERA_GAVE_UP = 3  # exit status: a camera stayed away for max_reconnects tries (systemd's Restart=on-failure)


def run(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Option(help="Webcam index, video file or rtsp:// URL (default: camera.source).")
    ] = None,
    annotate: Annotated[Path | None, typer.Option(help="Also write an annotated video (.mp4) here.")] = None,
) -> None:
    """Run the gate: recognise faces, open the door, record.

    Reads [camera] source (or --source) until its frames end or Ctrl-C / SIGTERM, and records every decision
    before the door opens. With [[cameras]] in the config, every camera listed runs in this one process. Exit
    status 1 when a decision went unrecorded, 3 when a camera gave up (camera.max_reconnects), for a service
    manager to restart the gate."""
    from gate.door.actuators import build_actuator
    from gate.runtime.run import run_gate
    from gate.vision.sources import configured_source, open_source

    app: AppContext = ctx.obj
    settings = app.settings
    app.require_config()  # without a config file, refuse before a camera is tried (the database would)
    if settings.cameras:
        if source is not None or annotate is not None:
            raise FaceGateError("--source and --annotate are for one camera: [[cameras]] gives each its source")
        _run_cameras(app)
        return
    frames = open_source(source or configured_source(settings), settings.camera)
    door = build_actuator(settings.actuator, settings.mqtt, settings.camera.gate_id)
    summary = run_gate(app.runtime, frames, door, annotate=annotate)
    _print_summary(summary, None)
    _exit_for([summary])


def _run_cameras(app: AppContext) -> None:
    """Every [[cameras]] entry in one process: one detector and embedder, each camera its own loop and door."""
    from gate.door.actuators import build_actuator
    from gate.runtime.cameras import run_cameras
    from gate.vision.sources import configured_source, open_source

    runtime = app.runtime
    with ExitStack() as opened:  # a camera that cannot be opened releases those opened before it
        cameras = []
        for settings in camera_settings(app.settings):
            frames = open_source(configured_source(settings), settings.camera)
            opened.callback(frames.close)
            door = build_actuator(settings.actuator, settings.mqtt, settings.camera.gate_id)
            opened.callback(door.close)
            cameras.append((replace(runtime, settings=settings), frames, door))
        opened.pop_all()  # run_cameras closes them from here on
    summaries = run_cameras(cameras)
    for (camera, _, _), summary in zip(cameras, summaries, strict=True):
        _print_summary(summary, camera.settings.camera.gate_id)
    _exit_for(summaries)


def _print_summary(summary: GateSummary, gate_id: str | None) -> None:
    typer.echo(
        f"{gate_id + ': ' if gate_id else ''}{summary.frames} frames ({summary.processed} processed), "
        f"{len(summary.decisions)} decisions: {summary.tally.describe()}"
    )


def _exit_for(summaries: list[GateSummary]) -> None:
    """Exit status 1 when a decision went unrecorded (lost, or a door kept shut for want of its record); else
    CAMERA_GAVE_UP when a camera stayed away for [camera] max_reconnects tries (for the service to restart it)."""
    if not all(summary.tally.complete for summary in summaries):
        typer.echo("error: not every decision was recorded (see the log above): check the disk and database", err=True)
        raise typer.Exit(1)
    if any(summary.camera_gave_up for summary in summaries):
        typer.echo(
            f"error: a camera gave up (camera.max_reconnects): exit status {CAMERA_GAVE_UP}, to be restarted", err=True
        )
        raise typer.Exit(CAMERA_GAVE_UP)


def demo(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(
            help="A <person>/<images> folder (default: $FACEGATE_DATA/lfw/lfw-deepfunneled, else LFW is "
            "downloaded once into data/lfw with scikit-learn's fetcher)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the video, database, annotated video, events.")] = Path(
        "out/demo"
    ),
    people: Annotated[int, typer.Option(min=0, help="Enrolled people walking past.")] = 4,
    strangers: Annotated[int, typer.Option(min=0, help="Unknown people walking past.")] = 2,
    seed: Annotated[int, typer.Option(help="Which people, and how they walk.")] = 0,
) -> None:
    """The gate on a generated walk-up video, tabulated.

    Enrols --people LFW people from a few photos each, renders a turnstile video of them (each walking with a
    photo never enrolled) and --strangers others walking up, runs the real gate on it and prints who was let in.
    Writes the video, the annotated video, events.json and table.csv to --out."""
    from facegate.demo import find_lfw, run_demo, table_text

    app: AppContext = ctx.obj
    result = run_demo(app.settings, app.embedder, data or find_lfw(), out, people, strangers, seed)
    typer.echo(table_text(result.rows))
    typer.echo(f"\nvideo {result.video}, annotated {result.annotated}, events {result.events}, table {result.table}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("run")(run)
    app.command("demo")(demo)
