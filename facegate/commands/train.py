"""`facegate` subcommands: prepare (aligned crops), teach (the dlib teacher's cache), train (an embedding
network), ship (make a model the default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def prepare(
    data: Annotated[
        Path | None, typer.Option(help="Folder holding lfw/ and pins/ (default: $FACEGATE_DATA or ../shared/datasets).")
    ] = None,
    crops: Annotated[Path, typer.Option(help="Where the aligned crops go.")] = Path(".crops"),
    backbone: Annotated[
        str, typer.Option(help="Align for this backbone's crop template (each backbone has its own).")
    ] = "mobilefacenet",
    force: Annotated[bool, typer.Option(help="Rebuild crops that exist already.")] = False,
) -> None:
    """Align the training and evaluation photos once.

    Detects and aligns every LFW and Pins photo with the gate's own pipeline, onto the crop template of
    --backbone, into --crops (lfw.npz, pins.npz)."""
    from gate.model.backbones import template_for_backbone
    from training.crops import build_crops
    from training.datasets import dataset_root

    data = data or dataset_root()
    template = template_for_backbone(backbone)
    sources = {"pins": data / "pins", "lfw": data / "lfw" / "lfw-deepfunneled"}
    for name, folder in sources.items():
        out = crops / f"{name}.npz"
        if out.exists() and not force:
            typer.echo(f"{out}: exists (use --force to rebuild)")
            continue
        typer.echo(f"{build_crops(folder, out, template)}: written")


def teach(
    crops: Annotated[Path, typer.Option(help="Folder of crop files made by `facegate prepare`.")] = Path(".crops"),
    every: Annotated[int, typer.Option(min=1, help="Describe every n-th crop only (dlib: ~0.1 s a crop).")] = 1,
    lfw_people: Annotated[
        Path | None, typer.Option(help="Describe only these LFW people's crops (an LFW people file).")
    ] = None,
    only: Annotated[str | None, typer.Option(help="One crop file only: lfw or pins.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes (dlib uses one core each).")] = 1,
) -> None:
    """Cache the dlib teacher's descriptors of the crops.

    For distillation (`facegate train --set distill_weight=1`); needs the peer extra (dlib)."""
    from training.datasets import read_people
    from training.teacher import build_teacher_cache

    if only not in (None, "lfw", "pins"):
        raise typer.BadParameter(f"--only {only!r}: expected lfw or pins")
    people = {"lfw": set(read_people(lfw_people)) if lfw_people else None, "pins": None}
    for name in [only] if only else ["lfw", "pins"]:
        typer.echo(f"{build_teacher_cache(crops / f'{name}.npz', every, people[name], workers)}: written")


def train(
    recipe: Annotated[Path | None, typer.Option(help="TOML file of TrainConfig overrides.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value override, repeatable.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder (checkpoint, model.json).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from <out>/checkpoint.pt.")] = False,
) -> None:
    """Train an embedding network; exports <out>/model.json.

    A triplet loss with online mining in PxK batches (batch-hard or semi-hard), or contrastive pairs, optionally
    with an ArcFace term (arcface_weight) and distillation from dlib's network (distill_weight). Every TrainConfig
    key can be set with --set key=value or a TOML --recipe (recipes/mobilefacenet.toml: the small shipped
    model's). Crops are prepared first when missing."""
    from training.recipes import make_config
    from training.train import train as run_training

    config = make_config(recipe, set_, out=out, epochs=epochs, device=device)
    crops = Path(config.crops)
    if not (crops / "lfw.npz").exists() or not (crops / "pins.npz").exists():
        prepare(data=Path(config.data) if config.data else None, crops=crops, backbone=config.backbone)
    typer.echo(f"model card: {run_training(config, resume=resume)}")


def ship(
    card: Annotated[Path, typer.Argument(help="A trained model's card (runs/<name>/model.json).")],
    results: Annotated[
        list[Path] | None, typer.Option("--results", help="`facegate evaluate --json` output(s) to record.")
    ] = None,
) -> None:
    """Make a trained model the gate's default.

    Copies the model and its card into the package as gate/models/default, replacing the shipped default
    (dlib's ResNet); the --results files are recorded in the card."""
    from training.ship import ship_model

    typer.echo(f"shipped: {ship_model(card, results or [])}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(prepare)
    app.command()(teach)
    app.command()(train)
    app.command()(ship)
