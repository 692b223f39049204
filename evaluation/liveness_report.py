"""The liveness run's tables and plot: APCER per attack species (the worst counts) and BPCER at each method's
thresholds with Wilson intervals, and the score distributions per species with the thresholds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evaluation.figures import Figure, FixedLocator, NullFormatter, ScalarFormatter
from evaluation.liveness import TEST, LivenessReport
from evaluation.liveness_species import (
    ANIMATED,
    BEND_MILD,
    BEND_RADIUS_EYES,
    BEND_STRONG,
    BONA_FIDE,
    FLAT,
    JITTER,
    SPECIES,
)
from evaluation.results import Rate

THRESHOLD_LABELS = {"min_acer": "lowest ACER on train", "bpcer_5pct": "BPCER <= 5 % on train"}
SPECIES_LABELS = {
    FLAT: "flat replay",
    JITTER: "flat, per-frame perspective jitter",
    BEND_MILD: f"print bent, radius {BEND_RADIUS_EYES[BEND_MILD]:g} eye dist.",
    BEND_STRONG: f"print bent, radius {BEND_RADIUS_EYES[BEND_STRONG]:g} eye dist.",
    ANIMATED: "photo animated into a head turn",
    BONA_FIDE: "3D-like walk-up (bona fide)",
}
SPECIES_COLOURS = {
    FLAT: "tab:red",
    JITTER: "tab:orange",
    BEND_MILD: "tab:olive",
    BEND_STRONG: "tab:brown",
    ANIMATED: "tab:purple",
    BONA_FIDE: "tab:blue",
}

SCORE_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)  # labelled scores on the log axis


def percent(rate: Rate) -> str:
    """A rate as '5.0 % (5/100; 2.2-11.2)', or '-' when nothing was counted."""
    if rate.rate is None:
        return "-"
    low, high = rate.ci95
    return f"{100 * rate.rate:.1f} % ({rate.count}/{rate.of}; {100 * low:.1f}-{100 * high:.1f})"


def method_table(report: LivenessReport, method: str) -> list[str]:
    """The method's lines: per threshold, each species' APCER, the worst, and BPCER, on train and on test."""
    lines = []
    for name, point in report.points(method).items():
        value = report.thresholds[method][name]
        lines.append(f"method {method}, threshold {THRESHOLD_LABELS.get(name, name)}: {value:.5f}")
        lines.append(f"  {'':<34} {'train':<28} {'test':<28}")
        train, test = point.train, point.test
        for species in train.apcer:
            cells = [percent(split.apcer[species]) for split in (train, test)]
            lines.append(f"  APCER {SPECIES_LABELS.get(species, species):<28} {cells[0]:<28} {cells[1]:<28}")
        worst = [f"{percent(split.apcer_worst)} {split.apcer_worst.species}" for split in (train, test)]
        lines.append(f"  {'APCER, worst species':<34} {worst[0]:<28} {worst[1]}")
        bpcer = [percent(split.bpcer) for split in (train, test)]
        lines.append(f"  {'BPCER, 3D-like walk-ups':<34} {bpcer[0]:<28} {bpcer[1]:<28}")
        lines.append(f"  {'clips without a verdict':<34} {train.no_verdict:<28} {test.no_verdict}")
    return lines


def text_table(report: LivenessReport) -> str:
    """Every method's table, one after the other."""
    return "\n".join(line for method in report.thresholds for line in method_table(report, method))


def plot_scores(report: LivenessReport, path: str | os.PathLike) -> Path:
    """One panel per method: each species' test clips as a row of dots on a log score axis, with the method's
    thresholds (chosen on train) as vertical lines; a dot right of a line is a clip scored live there."""
    methods = list(report.thresholds)
    figure = Figure(figsize=(6 * len(methods), 4.5), dpi=100)
    every = [s for m in methods for scores in report.scores(TEST, m).values() for s in scores] or [1e-3]
    low, high = max(min(every), 1e-5) / 1.3, max(every) * 1.3
    jitter = np.random.default_rng(0)
    for column, method in enumerate(methods):
        axes = figure.add_subplot(1, len(methods), column + 1)
        by_species = report.scores(TEST, method)
        rows = [species for species in SPECIES if species in by_species]
        for row, species in enumerate(rows):
            scores = np.clip(by_species[species], low, high)
            heights = row + jitter.uniform(-0.25, 0.25, len(scores))
            axes.scatter(scores, heights, s=10, alpha=0.6, color=SPECIES_COLOURS.get(species, "black"))
        for (name, value), style in zip(report.thresholds[method].items(), ("-", "--"), strict=False):
            label = f"{THRESHOLD_LABELS.get(name, name)}: {value:.4f}"
            axes.axvline(value, color="black", linestyle=style, label=label)
        axes.set_yticks(range(len(rows)), [f"{SPECIES_LABELS.get(s, s)}, n={len(by_species[s])}" for s in rows])
        axes.tick_params(axis="y", labelsize=7)
        axes.set_xscale("log")
        axes.set_xlim(low, high)
        axes.xaxis.set_major_locator(FixedLocator([v for v in SCORE_TICKS if low <= v <= high]))
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("score: flow one plane leaves unexplained / eye distance")
        axes.set_title(f"method {method}: test people (peopleDevTest)", fontsize=9)
        axes.legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
