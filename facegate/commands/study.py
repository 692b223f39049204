"""`facegate study`: two stages (the gate) versus a classifier trained end to end, and the middle way, against
the number of photos per employee (a thin wrapper over evaluation.study)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from evaluation.study import DEFAULT_KS, SYSTEMS, StudyConfig, results_table, run_study, write_outputs
from facegate.context import AppContext
from gate.errors import FaceGateError
from training.datasets import dataset_root


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise FaceGateError(f"{option} wants comma-separated integers, got {text!r}") from None


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise FaceGateError(f"--frame-size wants WIDTHxHEIGHT, got {text!r}") from None
    if width < 32 or height < 32:
        raise FaceGateError(f"--frame-size {text}: at least 32x32 (ResNet-18 downsamples 32x)")
    return width, height


def command_line(ctx: typer.Context) -> str:
    """The `facegate study` call that reproduces this run: --model and every option not left at its default."""
    parts = ["facegate", "study"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name == "quiet" or (param.name != "model" and value == param.default):
            continue
        flag = param.opts[0]
        if isinstance(value, bool):
            parts += [flag] if value else []
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def study(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option("--model", help="Embedder card whose training held the study people out.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for study.md, study.json and study.png.")] = Path(
        "out/study"
    ),
    ks: Annotated[str, typer.Option("--ks", help="Photos per employee to test, comma-separated.")] = ",".join(
        map(str, DEFAULT_KS)
    ),
    target_far: Annotated[
        float, typer.Option("--target-far", help="False-accept rate per walk-up the thresholds are set at.")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="Photo split, walk-ups, training frames and classifier seeds.")] = 0,
    allow_seen: Annotated[
        bool, typer.Option("--allow-seen", help="Smoke tests only: let study people the embedder has seen in.")
    ] = False,
    employees: Annotated[int, typer.Option(min=2, help="Employees: the first held-out Pins names.")] = 30,
    strangers: Annotated[int, typer.Option(min=2, help="Strangers: the next names, half calibrate, half test.")] = 10,
    test_photos: Annotated[int, typer.Option(min=1, help="Held-out walk-ups per employee.")] = 10,
    stranger_photos: Annotated[int, typer.Option(min=1, help="Walk-ups per stranger.")] = 40,
    samples: Annotated[
        int, typer.Option(min=1, help="Classifier training images seen at k=1 (grows with log2 k).")
    ] = 4000,
    pool_frames: Annotated[int, typer.Option(min=1, help="End-to-end training frames rendered per k.")] = 3000,
    frame_size: Annotated[
        str, typer.Option(help="Whole frames are downscaled to this for the classifier.")
    ] = "160x120",
    match: Annotated[str | None, typer.Option(help="Two-stage: best or mean template (default: the config's).")] = None,
    systems: Annotated[str, typer.Option(help="Which systems to run, comma-separated.")] = ",".join(SYSTEMS),
    cache: Annotated[
        Path, typer.Option(help="Rendered walk-ups and classifier results are kept here and reused.")
    ] = Path("runs/study-cache"),
    crops: Annotated[Path, typer.Option(help="The Pins aligned-crop file.")] = Path(".crops/pins.npz"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Two stages versus end to end: accuracy, TAR and FAR of the gate and of a ResNet-18 classifier (whole frames,
    or aligned crops) for k photos per employee, on turnstile walk-ups of people the embedder never saw."""
    context: AppContext = ctx.obj
    settings = context.settings
    width, height = _size(frame_size)
    config = StudyConfig(
        ks=_ints(ks, "--ks"),
        employees=employees,
        strangers=strangers,
        test_photos=test_photos,
        stranger_photos=stranger_photos,
        frame_width=width,
        frame_height=height,
        pool_frames=pool_frames,
        samples=samples,
        target_far=target_far,
        match=match or settings.gallery.match,
        seed=seed,
        allow_seen=allow_seen,
        systems=tuple(part.strip() for part in systems.split(",") if part.strip()),
    )
    result = run_study(
        model,
        dataset_root() / "pins",
        crops,
        cache,
        config,
        detector=settings.detector,
        quality=settings.quality,
        flip=settings.model.flip_average,
        progress=not quiet,
    )
    command = command_line(ctx)
    paths = write_outputs(result, out, command)
    if result["warning"]:
        typer.secho(result["warning"], fg=typer.colors.RED, err=True)
    typer.echo(results_table(result))
    typer.echo(f"report {paths['report']}, results {paths['json']}, plot {paths['plot']}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("study")(study)
