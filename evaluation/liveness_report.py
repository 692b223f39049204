"""The liveness run's table and plot: APCER / BPCER at each threshold with intervals, score histograms."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from evaluation.head_motion import FLAT, HEAD
from evaluation.liveness import TEST, TRAIN, LivenessReport

THRESHOLD_LABELS = {"min_acer": "lowest ACER on train", "bpcer_5pct": "BPCER <= 5 % on train"}
KIND_LABELS = {FLAT: "flat replays (attacks)", HEAD: "3D-like walk-ups (bona fide)"}


def _percent(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return "-"
    low, high = rate["ci95"]
    return f"{100 * rate['rate']:.1f} % ({rate['count']}/{rate['of']}, {100 * low:.1f}-{100 * high:.1f})"


def text_table(report: LivenessReport) -> str:
    """One line per threshold and split: the threshold, APCER and BPCER with counts and 95 % Wilson intervals."""
    points = report.to_json()["points"]
    lines = [f"{'threshold':<24} {'value':>8}  {'split':<5}  {'APCER':<30} {'BPCER':<30} no verdict"]
    for name, value in report.thresholds.items():
        for split in (TRAIN, TEST):
            point = points[name][split]
            apcer, bpcer = _percent(point["apcer"]), _percent(point["bpcer"])
            label = THRESHOLD_LABELS.get(name, name)
            lines.append(f"{label:<24} {value:>8.5f}  {split:<5}  {apcer:<30} {bpcer:<30} {point['no_verdict']}")
    return "\n".join(lines)


def plot_scores(report: LivenessReport, path: str | os.PathLike) -> Path:
    """Histograms of the clips' scores, flat against 3D-like, train people (where the thresholds were chosen)
    beside test people, the thresholds drawn on both (log x)."""
    figure = Figure(figsize=(11, 4.5), dpi=100)
    every = [s for split in (TRAIN, TEST) for kind in (FLAT, HEAD) for s in report.scores(split, kind)] or [1e-3]
    low, high = max(min(every), 1e-5) / 1.5, max(every) * 1.5
    bins = np.geomspace(low, high, 40)
    for column, (split, people) in enumerate(((TRAIN, "peopleDevTrain"), (TEST, "peopleDevTest"))):
        axes = figure.add_subplot(1, 2, column + 1)
        for kind, colour in ((FLAT, "tab:red"), (HEAD, "tab:blue")):
            scores = report.scores(split, kind)
            label = f"{KIND_LABELS[kind]}, n={len(scores)}"
            axes.hist(np.clip(scores, low, high), bins=bins, alpha=0.6, color=colour, label=label)
        for (name, value), style in zip(report.thresholds.items(), ("-", "--"), strict=False):
            label = f"{THRESHOLD_LABELS.get(name, name)}: {value:.4f}"
            axes.axvline(value, color="black", linestyle=style, label=label)
        axes.set_xscale("log")
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("score: flow one plane leaves unexplained / eye distance")
        axes.set_ylabel("clips")
        axes.set_title(f"{split} people ({people})")
        axes.legend(loc="upper right", fontsize=7)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
