"""`facegate study`: two stages (the gate) versus a classifier trained end to end, and the middle way, against
the number of photos per employee (a thin wrapper over evaluation.study)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from facegate.context import AppContext


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
        elif isinstance(value, list):
            parts += [part for item in value for part in (flag, shlex.quote(str(item)))]
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def study(
    ctx: typer.Context,
    model: Annotated[
        Path,
        typer.Option(
            "--model", help="Embedder card whose training never saw the study people (held-out Pins, or unseen LFW)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for study.md, study.json and study.png.")] = Path(
        "out/study"
    ),
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="key=value override of a study setting (evaluation/study_config.py StudyConfig), repeatable: e.g. "
            "people=lfw ks=1,2,5 employees=30 strangers=10 test_photos=10 stranger_photos=40 samples=4000 "
            "pool_frames=3000 frame_width=160 frame_height=120 target_far=0.05 match=mean seed=0 "
            "systems=two-stage,end-to-end,middle",
        ),
    ] = None,
    allow_seen: Annotated[
        bool, typer.Option("--allow-seen", help="Smoke tests only: let study people the embedder has seen in.")
    ] = False,
    cache: Annotated[
        Path, typer.Option(help="Rendered walk-ups and classifier results are kept here and reused.")
    ] = Path("runs/study-cache"),
    crops: Annotated[
        Path | None,
        typer.Option(
            help="The study photos' aligned-crop file (default: .crops/pins.npz for Pins; for LFW one built for the "
            "study people under --cache)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Two stages versus end to end, measured.

    Accuracy, TAR and FAR of the gate and of a ResNet-18 classifier (whole frames, or aligned crops) for k
    photos per employee, on turnstile walk-ups of people the embedder never saw: Pins people its card holds out,
    or LFW people (--set people=lfw) when its card states that LFW is unseen."""
    from evaluation.study import StudyConfig, StudyPaths, run_study
    from evaluation.study_report import results_table, write_outputs
    from training.datasets import dataset_root, lfw_images
    from training.recipes import build_config, parse_overrides

    context: AppContext = ctx.obj
    settings = context.settings
    values: dict[str, object] = {"match": settings.gallery.match, **parse_overrides(set_)}
    config = build_config(StudyConfig, values | ({"allow_seen": True} if allow_seen else {}), "study")
    paths_in = StudyPaths(dataset_root() / "pins", crops, cache, lfw_images())
    result = run_study(model, paths_in, config, settings, not quiet)
    paths = write_outputs(result, out, command_line(ctx))
    if result.warning:
        typer.secho(result.warning, fg=typer.colors.RED, err=True)
    typer.echo(results_table(result))
    typer.echo(f"report {paths['report']}, results {paths['json']}, plot {paths['plot']}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("study")(study)
