"""`facegate evaluate`: verification (and on request identification) accuracy of a model on an LFW-style pairs
file or on any `<person>/<images>` folder, as a table, JSON, a Markdown report and plots (a thin wrapper)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext
from gate.errors import FaceGateError

if TYPE_CHECKING:
    from evaluation.results import VerificationResult
    from gate.model.embedder import Embedder
    from gate.vision.faces import FacePipeline


def format_table(result: VerificationResult) -> str:
    """The result as aligned `name  value` lines."""
    from evaluation.results import GallerySkipped

    intervals = result.confidence_intervals.intervals if result.confidence_intervals else {}

    def ci(key: str) -> str:
        return f"  [95% CI {intervals[key][0]:.4f}, {intervals[key][1]:.4f}]" if key in intervals else ""

    rows = [
        ("model", result.model_id),
        ("pairs", f"{result.pairs} ({result.genuine_pairs} same, {result.impostor_pairs} different)"),
        ("accuracy (k-fold)", f"{result.accuracy:.4f} +/- {result.accuracy_std:.4f}{ci('accuracy')}"),
        ("AUC", f"{result.auc:.4f}{ci('auc')}"),
        ("EER", f"{result.eer:.4f}{ci('eer')}"),
    ]
    for far, tar in result.tar_at_far.items():
        support = result.far_support[far]
        note = "" if support else f"  (below resolution: {result.impostor_pairs} impostor pairs)"
        threshold = result.thresholds_at_far[far]
        rows.append((f"TAR @ FAR {far}", f"{tar:.4f}  threshold {threshold:.4f}{note}{ci(f'tar_at_far_{far}')}"))
    rows.append(("no face found", f"{result.failed_to_detect} images, {result.pairs_failed} pairs"))
    sizes = result.identification.gallery_sizes if result.identification is not None else {}
    for size, entry in sizes.items():
        if isinstance(entry, GallerySkipped):
            rows.append((f"gallery {size}", f"skipped: {entry.skipped}"))
            continue
        fnir = ", ".join(f"FNIR {entry.fnir_at_fpir[f]:.3f} @ FPIR {f}" for f in entry.supported_fpirs())
        rows.append((f"gallery {size}", f"rank-1 {entry.rank1:.4f}, rank-5 {entry.rank5:.4f}; {fnir or '-'}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise FaceGateError(f"--gallery-sizes must be comma-separated whole numbers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise FaceGateError(f"--gallery-sizes must be positive, got {text!r}")
    return sorted(set(sizes))


def evaluate(
    ctx: typer.Context,
    images: Annotated[Path, typer.Option("--images", help="Folder holding <person>/<images>.")],
    pairs_file: Annotated[
        Path | None,
        typer.Argument(help="LFW pairs file (pairs.txt, pairsDevTest.txt ...); none: pairs made from --images."),
    ] = None,
    people: Annotated[
        Path | None,
        typer.Option(
            help="Only these people (an LFW people file or one name a line), e.g. DevTest; with a pairs file, "
            "only the pairs of two listed people."
        ),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Without a pairs file: identity-disjoint folds.")] = 10,
    per_fold: Annotated[int, typer.Option(min=1, help="Without a pairs file: same and different pairs a fold.")] = 300,
    seed: Annotated[int, typer.Option(help="Which pairs, splits and resamples are drawn.")] = 0,
    identification: Annotated[
        bool, typer.Option(help="Also gallery/probe identification: rank-1/5, CMC, FNIR at FPIR per gallery size.")
    ] = False,
    gallery_sizes: Annotated[str, typer.Option(help="Identification: gallery sizes (people).")] = "10,100,1000",
    enrol: Annotated[int, typer.Option(min=1, help="Identification: template photos per enrolled person.")] = 1,
    stranger_share: Annotated[
        float, typer.Option(help="Identification: share of the people never enrolled (the strangers).")
    ] = 0.3,
    bootstrap: Annotated[int, typer.Option(min=0, help="Resamples (by person) for 95% intervals; 0: none.")] = 1000,
    report: Annotated[Path | None, typer.Option(help="Folder for report.md, results.json and the PNG plots.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a ROC curve PNG here.")] = None,
    write_threshold_far: Annotated[
        str | None,
        typer.Option("--write-threshold", help="Write the threshold at this FAR (0.01, 0.001, 0.0001) to the config."),
    ] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model card (.json) to use instead.")] = None,
) -> None:
    """Measure a model on face photos before trusting a threshold.

    Verification on face pairs (k-fold accuracy, AUC, EER, TAR at fixed FARs, 95 % intervals by person),
    optionally identification (rank-1/5, FNIR at FPIR per gallery size); writes a report a site can keep, and with
    --write-threshold sets [decision] threshold in the config."""
    from evaluation.model_eval import EvaluationSpec, evaluate_model

    context: AppContext = ctx.obj
    if write_threshold_far is not None:
        _check_threshold_request(context, write_threshold_far)
    _check_plotting(plot, report)
    spec = EvaluationSpec(
        images, pairs_file, people, folds, per_fold, seed, identification, tuple(_sizes(gallery_sizes)), enrol,
        stranger_share, bootstrap,
    )  # fmt: skip
    pairs = spec.pairs()
    embedder, pipeline = _model(context, model)
    if write_threshold_far is not None:  # refuse before minutes of embedding, not after
        _check_calibration(context, embedder, sum(not p.same for p in pairs), write_threshold_far)
    result = evaluate_model(spec, pairs, pipeline, embedder, context.settings.gallery.match)
    typer.echo(format_table(result))
    _write_outputs(result, json_path, plot, report)
    if write_threshold_far is not None:
        _calibrate_config(context, result, write_threshold_far, pairs_file or images)


def _check_plotting(plot: Path | None, report: Path | None) -> None:
    """Plots need matplotlib, the evaluate extra: without it, refuse before minutes of embedding, not after."""
    if plot is not None or report is not None:
        import evaluation.figures  # noqa: F401


def _model(context: AppContext, card: Path | None) -> tuple[Embedder, FacePipeline]:
    """The configured model and pipeline, or those of another card."""
    from gate.runtime.parts import load_embedder
    from gate.vision.faces import FacePipeline

    if card is None:
        return context.embedder, context.pipeline
    settings = context.settings
    embedder = load_embedder(settings, card)
    return embedder, FacePipeline(settings.detector, settings.quality, template=embedder.template)


def _write_outputs(result: VerificationResult, json_path: Path | None, plot: Path | None, report: Path | None) -> None:
    from evaluation.plots import plot_roc
    from evaluation.verification import write_json

    if json_path is not None:
        write_json(result, json_path)
        typer.echo(f"results written to {json_path}")
    if plot is not None:
        plot_roc(result, plot)
        typer.echo(f"ROC curve written to {plot}")
    if report is not None:
        _write_report_folder(result, report)


def _write_report_folder(result: VerificationResult, folder: Path) -> None:
    from evaluation.plots import plot_cmc, plot_det, plot_histograms, plot_roc
    from evaluation.report import write_report
    from evaluation.verification import write_json

    plots = {
        "ROC": plot_roc(result, folder / "roc.png"),
        "DET": plot_det(result, folder / "det.png"),
        "score histograms": plot_histograms(result, folder / "scores.png"),
    }
    if result.identification is not None:
        plots["CMC"] = plot_cmc(result.identification, folder / "cmc.png")
    write_json(result, folder / "results.json")
    command = "facegate " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    typer.echo(f"report written to {write_report(result, folder / 'report.md', command, plots)}")


def _check_calibration(context: AppContext, embedder: Embedder, impostor_pairs: int, far: str) -> None:
    from training.metrics import allowed_false_accepts

    if not allowed_false_accepts(impostor_pairs, float(far)):
        raise FaceGateError(
            f"FAR {far} cannot be calibrated from {impostor_pairs} impostor pairs (needs at least "
            f"{round(1 / float(far))}); use more people/pairs or a larger FAR; the config was not changed"
        )
    if embedder.model_id != context.embedder.model_id:
        raise FaceGateError(
            f"the threshold would belong to {embedder.model_id}, but the config's model is "
            f"{context.embedder.model_id}; point [model] path at that card first; the config was not changed"
        )


def _check_threshold_request(context: AppContext, far: str) -> None:
    """--write-threshold: a FAR the report has, and a site config to write it into (never a new ./config.toml)."""
    from evaluation.verification import REPORT_FARS

    if far not in REPORT_FARS:
        raise FaceGateError(f"--write-threshold must be one of {', '.join(REPORT_FARS)}, got {far!r}")
    context.require_config()


def _calibrate_config(context: AppContext, result: VerificationResult, far: str, source: Path) -> None:
    from facegate.config_file import write_threshold

    threshold = result.thresholds_at_far[far]
    note = f"FAR {far} on {result.impostor_pairs} impostor pairs of {source.name}, model {result.model_id}"
    write_threshold(context.config_file, threshold, note)
    typer.echo(f"[decision] threshold = {threshold:.4f} written to {context.config_file} ({note})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("evaluate")(evaluate)
