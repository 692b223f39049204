"""The study's outputs: the results table, where each baseline catches up, the Markdown report, the plot, and
study.json / study.png / study.md written together."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.figures import Figure
from evaluation.results import StudyResult
from evaluation.study_config import END_TO_END, MIDDLE, SYSTEMS, TWO_STAGE


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def results_table(result: StudyResult) -> str:
    """The Markdown table: one row per k and system."""
    lines = [
        "| k | system | closed-set accuracy | TAR | FAR (test strangers) | FAR (calibration) | threshold | cost (s) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    order: dict[str, int] = {s: i for i, s in enumerate(SYSTEMS)}
    for row in sorted(result.rows, key=lambda r: (r.k, order[r.system])):
        cost = f"{row.seconds:.2f} enrol 1" if row.system == TWO_STAGE else f"{row.seconds:.0f} retrain"
        lines.append(
            f"| {row.k} | {row.system} | {_fmt(row.accuracy)} | {_fmt(row.tar)} | {_fmt(row.far)} "
            f"| {_fmt(row.far_calibration)} | {row.threshold:.3f} | {cost} |"
        )
    return "\n".join(lines)


def catch_up_text(result: StudyResult) -> str:
    ks = result.config.ks
    lines = []
    for system, k in result.catch_up.items():
        if k is None:
            lines.append(f"- {system}: does not catch up with the two-stage gate at any k <= {max(ks)}.")
        else:
            lines.append(f"- {system}: matches or beats the two-stage gate on accuracy and TAR from k = {k}.")
    return "\n".join(lines)


def _unseen_text(result: StudyResult) -> str:
    if result.config.people == "lfw":
        stated = "states" if "lfw" in (result.model.unseen or []) else "does NOT state"
        return f"its card {stated} that its training saw no LFW person. People: LFW (lfw-deepfunneled)."
    return f"its training held out {result.model.held_out_pins} Pins people. People: Pins."


def report_markdown(result: StudyResult, command: str, plot_name: str) -> str:
    """The study as a Markdown report (the command, the people, the table, the plot, where each baseline
    catches up)."""
    config, walks, people = result.config, result.walks, result.people
    warning = result.warning
    parts = []
    if warning:
        parts += [f"> **{warning}**", ""]
    parts += [
        "# Two stages versus end to end",
        "",
        f"Command: `{command}`",
        "",
        f"Embedder: `{result.model.model_id}` ({result.model.card}); {_unseen_text(result)}",
        f"Employees ({len(people.employees)}): {', '.join(people.employees)}.",
        f"Calibration strangers: {', '.join(people.calibration)}. Test strangers: {', '.join(people.test)}.",
        f"Walk-ups: {walks.employee} employee, {walks.calibration} calibration-stranger, {walks.test} "
        f"test-stranger; {walks.frames_per_walk} frames each (t = {', '.join(map(str, config.walk_t))}) at "
        f"{walks.camera[0]}x{walks.camera[1]}; {walks.frames_without_usable_face} of {walks.frames} "
        "frames without a usable face.",
        f"Thresholds set per system and k at FAR {config.target_far} on the calibration strangers' walk-ups.",
        "",
        results_table(result),
        "",
        f"![accuracy and false-accept rate against k]({plot_name})",
        "",
        "Where the direct approach catches up:",
        "",
        catch_up_text(result),
        "",
    ]
    return "\n".join(parts)


def plot_study(result: StudyResult, path: Path) -> None:
    """Closed-set accuracy (solid) and TAR (dashed), and FAR on test strangers, against k on a log axis."""
    figure = Figure(figsize=(11, 4.5), dpi=100)
    accuracy_axes, far_axes = figure.subplots(1, 2)
    colours = {TWO_STAGE: "tab:blue", END_TO_END: "tab:red", MIDDLE: "tab:green"}
    for system in SYSTEMS:
        rows = sorted((r for r in result.rows if r.system == system), key=lambda r: r.k)
        if not rows:
            continue
        ks = [r.k for r in rows]
        colour = colours[system]
        accuracy_axes.plot(ks, [r.accuracy for r in rows], "o-", color=colour, label=f"{system}: accuracy")
        accuracy_axes.plot(ks, [r.tar for r in rows], "s--", color=colour, alpha=0.7, label=f"{system}: TAR")
        far_axes.plot(ks, [r.far for r in rows], "o-", color=colour, label=system)
    employees = len(result.people.employees)
    accuracy_axes.axhline(1 / max(1, employees), color="grey", linestyle=":", label=f"chance 1/{employees}")
    target = result.config.target_far
    far_axes.axhline(target, color="grey", linestyle=":", label=f"target FAR {target}")
    for axes, title, ylabel in (
        (accuracy_axes, "Employees' walk-ups", "closed-set accuracy (solid), TAR (dashed)"),
        (far_axes, "Test strangers' walk-ups", "false-accept rate"),
    ):
        axes.set_xscale("log")
        axes.set_xticks(list(result.config.ks), [str(k) for k in result.config.ks])
        axes.minorticks_off()
        axes.set_xlabel("photos per employee (k)")
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
    accuracy_axes.set_ylim(0, 1.02)
    far_axes.set_ylim(0, max(0.2, 1.2 * max((r.far for r in result.rows), default=0)))
    accuracy_axes.legend(fontsize=7, loc="best")
    far_axes.legend(fontsize=7, loc="best")
    if result.warning:
        figure.suptitle(result.warning, color="red", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def write_outputs(result: StudyResult, out: Path, command: str) -> dict[str, Path]:
    """study.json, study.png and study.md in out."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "study.json", "plot": out / "study.png", "report": out / "study.md"}
    paths["json"].write_text(json.dumps(result.to_json() | {"command": command}, indent=2) + "\n", encoding="utf-8")
    plot_study(result, paths["plot"])
    paths["report"].write_text(report_markdown(result, command, paths["plot"].name), encoding="utf-8")
    return paths
