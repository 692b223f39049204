"""The walk-up evaluation's report: the transaction tables (text and Markdown), the Markdown page and the plot."""

from __future__ import annotations

from pathlib import Path

from evaluation.figures import Figure, threshold_axes
from evaluation.results import GateReport, Rate
from evaluation.walkups import MAX_ENROL_PHOTOS

# --- report -------------------------------------------------------------------------------------------------------


def _pct(entry: Rate) -> str:
    if entry.rate is None:
        return "-"
    return f"{entry.count}/{entry.of} ({100 * entry.rate:.1f}%)"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main_table(report: GateReport, early_deny: bool | None = None) -> list[list[str]]:
    """One row per grid point (only those with this `early_deny` rule, when given): policy, threshold, FAR,
    misidentification, FRR, FTA, frames and ms to a grant."""
    header = [
        "N/M",
        "threshold",
        "stranger FAR",
        "misidentified",
        "FRR",
        "of which a frame had passed",
        "no usable face",
        "frames to grant (median / p95)",
        "ms to grant (median / p95)",
    ]
    rows = [header]
    for point in report.grid:
        if early_deny is not None and point.early_deny != early_deny:
            continue
        grant = point.to_grant
        rows.append(
            [
                f"{point.votes_needed}/{point.window}",
                f"{point.threshold:.3f} {point.threshold_label}",
                _pct(point.far),
                _pct(point.misidentification),
                _pct(point.frr),
                str(point.rejected_own_passed.count),
                _pct(point.fta_employees),
                f"{_num(grant.frames.median, 1)} / {_num(grant.frames.p95, 1)}",
                f"{_num(grant.ms.median)} / {_num(grant.ms.p95)}",
            ]
        )
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def markdown_report(report: GateReport, command: str = "", plot_name: str = "gate.png") -> str:
    """The run as a Markdown page: setup, enrolment, both denial rules' tables, frame times, failures."""
    lines = _md_setup(report, command) + _md_transactions(report, plot_name)
    lines += _md_latency(report) + _md_failures(report)
    return "\n".join(lines) + "\n"


def _md_setup(report: GateReport, command: str) -> list[str]:
    setup = report.setup
    configured = setup.configured
    enrolled = [e for e in report.enrolment if e.status == "enrolled"]
    refused = [e for e in report.enrolment if e.status != "enrolled"]
    lines = [
        "# Gate walk-up evaluation",
        "",
        f"Model `{setup.model_id}`; {setup.employees} employees and {setup.strangers} strangers drawn from "
        f"LFW {setup.people_file} (seed {setup.seed}), never trained on. Employees are enrolled from up to "
        f"{MAX_ENROL_PHOTOS} photos and walk with a photo that was not enrolled.",
        f"Video: {setup.frame_size[0]}x{setup.frame_size[1]} at {setup.fps:g} fps, {setup.walk_s:g} s "
        f"per walk, {setup.gap_s:g} s between walks, {setup.frames} frames, {setup.tracks} face tracks; "
        f"smallest face searched {setup.min_face_px} px; cooldown {setup.cooldown_s:g} s; configured policy "
        f"{configured.votes_needed}/{configured.window} at threshold {configured.threshold:.3f} "
        f"(FAR {configured.target_far}). Wall time {setup.seconds / 60:.1f} min.",
    ]
    if command:
        lines += ["", f"Command: `{command}`"]
    return lines + [
        "",
        f"Enrolled {len(enrolled)}/{len(report.enrolment)} employees"
        + (f"; {len(refused)} refused by `add_person`, left out of the rates:" if refused else "."),
        *(f"- {e.person}: {e.status.removeprefix('refused: ')}" for e in refused),
        "",
        f"Replaying the configured point reproduces the running gate's decisions: "
        f"{'yes' if report.live_matches_replay else 'NO (a bug)'}.",
    ]


def _md_transactions(report: GateReport, plot_name: str) -> list[str]:
    configured_early = report.setup.configured.early_deny
    return [
        "",
        "## Transactions",
        "",
        "Stranger FAR: strangers' walks that opened the door. Misidentified: employees' walks that opened the door "
        "for someone else (a false accept too). FRR: employees' walks after which the door stayed shut, including "
        "those with no usable face (also shown alone); 'of which a frame had passed': those kept out although some "
        "usable frame of their walk named them at or above the threshold (the policy had already denied the track, "
        "or the votes never came together). Frames to grant: video frames from the walk's first visible "
        "frame to the frame whose processing opened the door, for correct grants; ms to grant: those frames at the "
        "video's fps plus the measured processing time of the deciding frame, i.e. what a person at the door waits "
        "at this camera frame rate when the gate keeps up with the camera.",
        "",
        f"With the configured rule (early_deny = {str(configured_early).lower()}: "
        + (
            "a track is denied as soon as a full window has no frame above the threshold"
            if configured_early
            else "a track is watched until it ends"
        )
        + "):",
        "",
        markdown_table(main_table(report, configured_early)),
        "",
        f"With early_deny = {str(not configured_early).lower()} instead (the same recorded frames, replayed):",
        "",
        markdown_table(main_table(report, not configured_early)),
        "",
        f"![FAR and FRR against threshold]({plot_name})",
    ]


def _md_latency(report: GateReport) -> list[str]:
    setup, latency = report.setup, report.latency_ms
    lines = [
        "",
        "## Per-frame processing time",
        "",
        "| frames | count | p50 ms | p95 ms | p99 ms | mean ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, label in ((latency.all_frames, "all processed"), (latency.frames_with_face, "with a face")):
        if s.frames:
            lines.append(
                f"| {label} | {s.frames} | {s.p50:.1f} | {s.p95:.1f} | {s.p99:.1f} | {s.mean:.1f} | {s.max:.1f} |"
            )
    return lines + [
        "",
        f"Frames over the {latency.frame_budget_ms:.0f} ms budget of {setup.fps:g} fps: {_pct(latency.over_budget)}.",
    ]


def _md_failures(report: GateReport) -> list[str]:
    lines = ["", "## Failures at the configured point", ""]
    failures = [
        w
        for w in report.walks_at_configured
        if (w.role == "employee" and w.granted_as != w.employee_id)
        or (w.role == "stranger" and w.granted_as is not None)
    ]
    if not failures:
        lines.append("None.")
    for w in failures:
        lines.append(
            f"- {w.role} {w.person}: {w.verdict}"
            + (f" as {w.granted_as}" if w.granted_as else "")
            + f", score {_num(w.score, 3)}, {w.usable_frames} usable frames"
            + (f", {w.top1_own_frames} with their own id on top" if w.role == "employee" else "")
            + f", best top-1 score {_num(w.best_top1_score, 3)}"
        )
    return lines


def plot_sweep(report: GateReport, path: Path) -> None:
    """Strangers' FAR (left) and employees' FRR (right) against threshold, one line per N/M; the grid's thresholds
    dotted (the configured one starred)."""
    sweep_data = report.sweep
    setup = report.setup
    figure = Figure(figsize=(10, 4.5), dpi=100)
    panels = figure.subplots(1, 2, sharex=True, sharey=True)
    for axes, rates_of, title in (
        (panels[0], lambda curve: curve.far, f"stranger FAR ({setup.strangers} strangers)"),
        (panels[1], lambda curve: curve.frr, f"FRR ({setup.employees} employees)"),
    ):
        for name, curve in sweep_data.curves.items():
            axes.plot(sweep_data.thresholds, rates_of(curve), label=f"{name} frames")
        threshold_axes(axes, setup.thresholds, title)
    panels[0].set_ylabel("share of walks")
    panels[1].legend(title="N of M", fontsize=8, loc="upper left")
    figure.suptitle(f"Walk-ups through the gate, model {setup.model_id} (dotted: card thresholds by FAR)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
