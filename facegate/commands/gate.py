"""`facegate run` (the gate on the configured camera) and `facegate demo` (the gate on a generated video)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext

if TYPE_CHECKING:
    from facegate.demo import DemoRow


def run(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Option(help="Webcam index, video file or rtsp:// URL (default: camera.source).")
    ] = None,
    annotate: Annotated[Path | None, typer.Option(help="Also write an annotated video (.mp4) here.")] = None,
) -> None:
    """Run the gate until the source ends or Ctrl-C / SIGTERM: recognise, open the door, record events."""
    from gate.actuators import build_actuator
    from gate.daemon import run_gate
    from gate.sources import open_source

    app: AppContext = ctx.obj
    settings = app.settings
    spec = source
    if spec is None:
        spec = settings.camera.source
        if not spec.strip().isdigit() and "://" not in spec:
            spec = str(settings.resolve(spec))  # a file named in the config is relative to the config
    frames = open_source(spec, settings.camera)
    door = build_actuator(settings.actuator, settings.mqtt, settings.camera.gate_id)
    summary = run_gate(app.runtime, frames, door, annotate=annotate)
    granted = sum(decision.granted for decision in summary.decisions)
    typer.echo(
        f"{summary.frames} frames ({summary.processed} processed), {len(summary.decisions)} decisions, "
        f"{granted} granted"
    )


def _table(rows: list[DemoRow]) -> str:
    header = ("person", "enrolled", "decision", "reason", "frames", "score", "door opened for")
    lines = [header] + [
        (
            row.person,
            row.enrolled[:40],
            row.decision,
            row.reason,
            "-" if row.frames_to_decision is None else str(row.frames_to_decision),
            "-" if row.score is None else f"{row.score:.3f}",
            row.granted_as or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


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
    """Enrol LFW people from some photos, walk them (other photos) and strangers up to the gate, tabulate."""
    from facegate.demo import find_lfw, run_demo

    app: AppContext = ctx.obj
    result = run_demo(app.settings, app.embedder, data or find_lfw(), out, people, strangers, seed)
    typer.echo(_table(result.rows))
    typer.echo(f"\nvideo {result.video}, annotated {result.annotated}, events {result.events}, table {result.table}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("run")(run)
    app.command("demo")(demo)
