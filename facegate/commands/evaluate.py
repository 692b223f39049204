"""`facegate evaluate`: verification accuracy of a model on an LFW-style pairs file, or on pairs made from any
`<person>/<images>` folder (a thin wrapper)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegate.context import AppContext
from gate.embedder import Embedder
from gate.pipeline import FacePipeline
from training.evaluate import evaluate_pairs, make_pairs, plot_roc, read_pairs, write_json


def format_table(result: dict) -> str:
    """The result as aligned `name  value` lines."""
    rows = [
        ("model", result["model_id"]),
        ("pairs", str(result["pairs"])),
        ("accuracy (k-fold)", f"{result['accuracy']:.4f} +/- {result['accuracy_std']:.4f}"),
        ("AUC", f"{result['auc']:.4f}"),
        ("EER", f"{result['eer']:.4f}"),
    ]
    for far, tar in result["tar_at_far"].items():
        support = result["far_support"][far]
        note = "" if support else f"  (below resolution: {result['impostor_pairs']} impostor pairs)"
        rows.append((f"TAR @ FAR {far}", f"{tar:.4f}  threshold {result['thresholds_at_far'][far]:.4f}{note}"))
    rows.append(("no face found", f"{result['failed_to_detect']} images, {result['pairs_failed']} pairs"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def evaluate(
    ctx: typer.Context,
    images: Annotated[Path, typer.Option("--images", help="Folder holding <person>/<images>.")],
    pairs_file: Annotated[
        Path | None,
        typer.Argument(help="LFW pairs file (pairs.txt, pairsDevTest.txt ...); none: pairs made from --images."),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Without a pairs file: identity-disjoint folds.")] = 10,
    per_fold: Annotated[int, typer.Option(min=1, help="Without a pairs file: same and different pairs a fold.")] = 300,
    seed: Annotated[int, typer.Option(help="Without a pairs file: which pairs are drawn.")] = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a ROC curve PNG here.")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model card (.json) to use instead.")] = None,
) -> None:
    """Verification on face pairs: k-fold accuracy, AUC, EER and TAR at fixed false-accept rates."""
    context: AppContext = ctx.obj
    pairs = read_pairs(pairs_file) if pairs_file else make_pairs(images, folds, per_fold, seed)
    if model is None:
        embedder, pipeline = context.embedder, context.pipeline
    else:
        settings = context.settings
        embedder = Embedder(model, device=settings.model.device, flip=settings.model.flip_average)
        pipeline = FacePipeline(settings.detector, settings.quality, crop_size=embedder.input_size)
    result = evaluate_pairs(pairs, images, pipeline, embedder)
    typer.echo(format_table(result))
    if json_path is not None:
        write_json(result, json_path)
        typer.echo(f"results written to {json_path}")
    if plot is not None:
        plot_roc(result, plot)
        typer.echo(f"ROC curve written to {plot}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("evaluate")(evaluate)
