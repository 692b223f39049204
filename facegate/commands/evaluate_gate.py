"""`facegate evaluate-gate`: the gate as a whole system on walk-up videos of never-trained people (a thin wrapper
over evaluation.walkups)."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext
from gate.errors import FaceGateError

if TYPE_CHECKING:
    from tqdm import tqdm

    from evaluation.walkups import WalkupRun
    from gate.model.embedder import Embedder

QUIET_LOGGERS = ("gate", "enrollment", "training")  # one INFO line per decision would break the progress bars


# WalkupRun's keys as the user typed them, for a refusal
OPTIONS = {key: f"--{key}" for key in ("employees", "strangers", "seed", "fps", "policies")} | {
    "walk_s": "--walk-seconds",
    "lfw_dir": "--data",
    "people_file": "--data",
}


def parse_policies(text: str) -> list[tuple[int, int]]:
    """ "1/1,2/3,3/5" -> [(1, 1), (2, 3), (3, 5)]; a malformed or impossible item is a one-line error."""
    policies = []
    for item in (part.strip() for part in text.split(",")):
        votes, slash, window = item.partition("/")
        if not slash or not votes.strip().isdigit() or not window.strip().isdigit():
            raise FaceGateError(f"--policies: {item!r} is not N/M (e.g. 3/5: 3 agreeing of the last 5 frames)")
        n, m = int(votes), int(window)
        if not 1 <= n <= m <= 100:
            raise FaceGateError(f"--policies: {item}: need 1 <= N <= M <= 100")
        policies.append((n, m))
    return policies


def _bar(description: str, total: int) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total or None, desc=description, unit="frame" if description == "gate" else "person")


def evaluate_gate_command(
    ctx: typer.Context,
    employees: Annotated[int, typer.Option("--employees", help="Enrolled people walking up (2+ photos each).")],
    strangers: Annotated[int, typer.Option("--strangers", help="Never-enrolled people walking up.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the report, JSON, plot, video and database.")],
    seed: Annotated[int, typer.Option(help="Which people, which photos, the walking order and paths.")] = 0,
    model: Annotated[Path | None, typer.Option("--model", help="Model card (.json) instead of the configured.")] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of the simulated camera.")] = 12.0,
    walk_s: Annotated[float, typer.Option("--walk-seconds", help="How long each walk-up lasts.")] = 2.5,
    policies: Annotated[
        str | None,
        typer.Option(
            help="N/M pairs to replay: N agreeing of the last M usable frames (default 1/1,2/3,3/5,4/7,5/10)."
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Folder holding lfw/ (default: $FACEGATE_DATA, else ../shared/datasets).")
    ] = None,
    second_visit: Annotated[
        bool,
        typer.Option(
            "--second-visit",
            help="Walk everyone twice (employees need 3+ photos); between the visits confirm the faces of the first"
            " visit's denied employees; report the second visit's rates with and without those confirmations.",
        ),
    ] = False,
) -> None:
    """Measure the whole gate on simulated walk-ups.

    Walks enrolled LFW peopleDevTest people and strangers up to the real gate once, then replays its N-of-M
    policy for several N/M and thresholds: strangers let in, employees turned away, misidentifications, time to
    decision, frame latency."""
    from evaluation.walkups import DEFAULT_POLICIES, WalkupRun
    from gate.config import validated
    from gate.runtime.parts import load_embedder
    from training.datasets import dataset_root, lfw_images

    context: AppContext = ctx.obj
    settings = context.settings
    pairs = parse_policies(policies) if policies else list(DEFAULT_POLICIES)
    root = data if data is not None else dataset_root()
    lfw_dir, people_file = lfw_images(root), root / "lfw" / "peopleDevTest.txt"
    if not lfw_dir.is_dir():
        raise FaceGateError(f"LFW folder not found: {lfw_dir} (give --data or set $FACEGATE_DATA)")
    walkers = {"lfw_dir": lfw_dir, "people_file": people_file, "employees": employees, "strangers": strangers}
    camera = {"seed": seed, "fps": fps, "walk_s": walk_s, "policies": pairs}
    run = validated(WalkupRun, walkers | camera, "evaluate-gate", OPTIONS)  # before the model loads
    embedder = context.embedder if model is None else load_embedder(settings, model)
    if settings.logging.level != "DEBUG":
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    command = "facegate " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    if second_visit:
        _second_visit(context, embedder, run, out, command)
        return
    _one_visit(context, embedder, run, out, command)


def _one_visit(context: AppContext, embedder: Embedder, run: WalkupRun, out: Path, command: str) -> None:
    """Walk everyone once, replay the policy grid, write gate.json/.png and gate-report.md and print the tables."""
    from evaluation.gate_report import main_table, markdown_report, plot_sweep, text_table
    from evaluation.walkups import evaluate_gate

    settings = context.settings
    report = evaluate_gate(settings, embedder, run, out, _bar)
    (out / "gate.json").write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    plot_sweep(report, out / "gate.png")
    (out / "gate-report.md").write_text(markdown_report(report, command, "gate.png"), encoding="utf-8")
    early = settings.decision.early_deny
    typer.echo(f"early_deny = {str(early).lower()} (configured):")
    typer.echo(text_table(main_table(report, early)))
    typer.echo(f"\nearly_deny = {str(not early).lower()} (the same frames replayed):")
    typer.echo(text_table(main_table(report, not early)))
    latency = report.latency_ms.all_frames
    typer.echo(
        f"\nper-frame processing: p50 {latency.p50:.1f} ms, p95 {latency.p95:.1f} ms, p99 {latency.p99:.1f} ms"
        f" over {latency.frames} frames"
    )
    typer.echo(f"report {out / 'gate-report.md'}, data {out / 'gate.json'}, plot {out / 'gate.png'}")


def _second_visit(context: AppContext, embedder: Embedder, run: WalkupRun, out: Path, command: str) -> None:
    """`--second-visit`: walk twice, confirm between, write second-visit.json/.md/.png and print the table."""
    from evaluation.second_visit import evaluate_second_visit
    from evaluation.second_visit_report import markdown_report, plot_second_visit, summary_lines

    report = evaluate_second_visit(context.settings, embedder, run, out, _bar)
    (out / "second-visit.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    plot_second_visit(report, out / "second-visit.png")
    (out / "second-visit.md").write_text(markdown_report(report, command, "second-visit.png"), encoding="utf-8")
    for line in summary_lines(report):
        typer.echo(line)
    typer.echo(f"report {out / 'second-visit.md'}, data {out / 'second-visit.json'}, plot {out / 'second-visit.png'}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("evaluate-gate")(evaluate_gate_command)
