"""`facegate model` subcommands: import dlib's network, calibrate a card's thresholds, list the shipped models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gate.model.card import SHIPPED_CARD, SHIPPED_MODELS, read_card, shipped_model_names

model_app = typer.Typer(
    help="Models: list the shipped ones, import dlib's network, calibrate thresholds, retrain the last layer.",
    no_args_is_help=True,
)


@model_app.command("import")
def import_(
    out: Annotated[Path, typer.Option(help="Card to write; the weights go beside it (.pt).")] = Path(
        "runs/dlib-resnet-v1/model.json"
    ),
    source: Annotated[
        Path | None, typer.Option(help="dlib's network file (default: the one in face_recognition_models).")
    ] = None,
) -> None:
    """Convert dlib's network into a model file and card.

    dlib's face-recognition ResNet, read from its file, becomes FaceGate's PyTorch weights and a card; then
    `facegate model calibrate` sets its thresholds."""
    from training.dlib_import import import_dlib_model

    card = import_dlib_model(out, source)
    typer.echo(f"{out}: {card.model_id}, from {card.source['file']} (sha256 {card.source['sha256'][:16]}...)")


@model_app.command("calibrate")
def calibrate(
    card: Annotated[Path, typer.Argument(help="The model card to calibrate (its thresholds are replaced).")],
    crops: Annotated[Path, typer.Option(help="LFW crop file aligned for this model (`facegate prepare`).")] = Path(
        ".crops150/lfw.npz"
    ),
    people: Annotated[
        Path | None, typer.Option(help="LFW people file of people the model never saw (default: peopleDevTrain).")
    ] = None,
    top_k: Annotated[
        int, typer.Option(help="Score normalisation: top cohort scores per face, e.g. 100 (0: plain cosine).")
    ] = 0,
) -> None:
    """Set a card's thresholds from people it never saw.

    Thresholds at FAR 1e-2 ... 1e-5 from every impostor pair of never-trained people; with --top-k, first
    draw a score-normalisation cohort from them (people with 2+ photos outside the training runs' validation
    people, so `benchmarks/compare_models.py --validation` can still compare)."""
    from training.calibrate_card import CohortPlan, calibrate_card, cohort_candidates
    from training.calibration import CalibrationSummary
    from training.datasets import dataset_root, read_people

    people = people or dataset_root() / "lfw" / "peopleDevTrain.txt"
    counts = read_people(people)
    note = f"every detected crop of the people in {people.name} (people the model never trained on)"
    plan = CohortPlan(cohort_candidates(counts), top_k=top_k) if top_k > 0 else None
    result = calibrate_card(card, crops, set(counts), note, plan)
    summary = CalibrationSummary.of_card(result)
    typer.echo(f"{card}: {summary.impostor_pairs} impostor and {summary.genuine_pairs} genuine pairs")
    if result.score_norm:
        norm = result.score_norm
        typer.echo(f"  scores normalised against {norm['images']} crops of {norm['people']} people, top {top_k}")
    for far, threshold in result.thresholds.items():
        typer.echo(f"  FAR {far:>8}: threshold {threshold:.4f}, TAR {summary.tar_at_far[far]:.3f}")


@model_app.command("head")
def head(
    recipe: Annotated[str, typer.Option(help="triplet, wccn or lda.")] = "triplet",
    out: Annotated[
        Path | None, typer.Option(help="Card to write (default runs/head-<recipe><dim>/model.json).")
    ] = None,
    base: Annotated[
        Path, typer.Option(help="The dlib_resnet card whose trunk stays frozen.", show_default="the shipped default")
    ] = SHIPPED_CARD,
    crops: Annotated[
        Path, typer.Option(help="Crops aligned for it (`facegate prepare --backbone dlib_resnet`).")
    ] = Path(".crops150"),
    dim: Annotated[int, typer.Option(help="Embedding size (lda: discriminant directions kept).")] = 128,
    epochs: Annotated[int, typer.Option(help="triplet: epochs over the pool.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the validation split and the sampler.")] = 0,
) -> None:
    """Learn the port's last layer again, trunk frozen.

    On the training people (triplet, WCCN or LDA); seconds once the features are cached."""
    from gate.config import validated
    from training.datasets import dataset_root
    from training.frozen_head import HeadConfig, train_head

    config = validated(HeadConfig, {"recipe": recipe, "dim": dim, "epochs": epochs, "seed": seed}, "model head")
    out = out or Path(f"runs/head-{recipe}{dim}/model.json")
    typer.echo(f"model card: {train_head(base, crops, dataset_root() / 'lfw', config, out)}")


@model_app.command("list")
def list_() -> None:
    """The models shipped with FaceGate.

    Select one by name in [model] path of the config ("" is the default), then `facegate enroll reembed`."""
    for name in shipped_model_names():
        card = read_card(SHIPPED_MODELS / f"{name}.json")
        scores = f"S-norm, {card.score_norm['images']}-face cohort" if card.score_norm else "cosine"
        thresholds = " ".join(f"{far}:{value:.4f}" for far, value in card.thresholds.items())
        typer.echo(f"{name:14} {card.model_id:32} {card.architecture:14} {card.input_size}px  {scores:28} {thresholds}")


def register(app: typer.Typer) -> None:
    """Add `facegate model` to the main app."""
    app.add_typer(model_app, name="model")
