"""The evaluation as a Markdown report a security officer can read: verification, intervals, identification."""

from __future__ import annotations

import os
from pathlib import Path

from evaluation.results import GallerySkipped, IdentificationResult, VerificationResult


def _pct(value: float) -> str:
    return f"{100.0 * value:.1f} %"


def _interval(result: VerificationResult, key: str, percent: bool = True) -> str:
    ci = result.confidence_intervals.intervals.get(key) if result.confidence_intervals else None
    if ci is None:
        return "–"
    low, high = ci
    return f"{_pct(low)} – {_pct(high)}" if percent else f"{low:.4f} – {high:.4f}"


def verification_section(result: VerificationResult) -> list[str]:
    """Accuracy, AUC, EER and the operating points, each with its support and interval."""
    lines = [
        "## Verification (is this the same person?)",
        "",
        f"{result.pairs} pairs ({result.genuine_pairs} same person, {result.impostor_pairs} different "
        f"people) over {result.images} images; no face found in {result.failed_to_detect} images "
        f"(failure to acquire {_pct(result.failure_to_acquire_rate)}; {result.pairs_failed} pairs scored "
        "below every threshold, a certain reject).",
        "",
        "| metric | value | 95 % interval (bootstrap by person) |",
        "|---|---|---|",
        f"| accuracy (k-fold) | {_pct(result.accuracy)} ± {_pct(result.accuracy_std)} | "
        f"{_interval(result, 'accuracy')} |",
        f"| ROC AUC | {result.auc:.4f} | {_interval(result, 'auc', percent=False)} |",
        f"| EER | {_pct(result.eer)} | {_interval(result, 'eer')} |",
        "",
        "| FAR (= FMR) | threshold | TAR | FNMR | impostor pairs it may let through | 95 % interval of TAR |",
        "|---|---|---|---|---|---|",
    ]
    for far, tar in result.tar_at_far.items():
        support = result.far_support[far]
        if support:
            lines.append(
                f"| {far} | {result.thresholds_at_far[far]:.4f} | {_pct(tar)} | "
                f"{_pct(result.fnmr_at_fmr[far])} | {support} | {_interval(result, f'tar_at_far_{far}')} |"
            )
        else:
            lines.append(
                f"| {far} | – | – | – | 0 of {result.impostor_pairs}: below this data's resolution "
                f"(needs ≥ {int(round(1 / float(far)))} impostor pairs) | – |"
            )
    ci = result.confidence_intervals
    if ci is not None:
        lines += [
            "",
            f"Intervals: {ci.resamples} resamples of the people (with replacement; every pair of a drawn person "
            f"comes along), {ci.skipped} skipped for lacking genuine or impostor pairs.",
        ]
    return lines


def identification_section(identification: IdentificationResult) -> list[str]:
    """Closed-set ranks and open-set FNIR at FPIR for each gallery size."""
    fpirs = None
    lines = [
        "## Identification (who is this, if anyone?)",
        "",
        f"{identification.enrolled_people} people could be enrolled "
        f"({identification.not_enrolled_no_face} left out: no face in their template photos); "
        f"{identification.stranger_photos} photos of {identification.stranger_people} never-enrolled people "
        f"play the strangers. Up to {identification.templates_per_person} template photo(s) per person, "
        f"person score: {identification.match} template.",
        "",
    ]
    rows = []
    for size, entry in identification.gallery_sizes.items():
        if isinstance(entry, GallerySkipped):
            rows.append(f"| {size} | skipped: {entry.skipped} |")
            continue
        fpirs = fpirs or list(entry.fnir_at_fpir)
        cells = [
            f"FNIR {_pct(entry.fnir_at_fpir[f])} (thr {entry.thresholds_at_fpir[f]:.3f})"
            if entry.fpir_support[f]
            else "below resolution"
            for f in fpirs
        ]
        rows.append(
            f"| {size} | {entry.mated_probes} | {entry.strangers} | {_pct(entry.rank1)} | "
            f"{_pct(entry.rank5)} | " + " | ".join(cells) + " |"
        )
    fpirs = fpirs or []
    lines.append(
        "| gallery people | mated probes | stranger probes | rank-1 | rank-5 | "
        + " | ".join(f"at FPIR {f}" for f in fpirs)
        + " |"
    )
    lines.append("|---" * (5 + len(fpirs)) + "|")
    lines += rows
    lines += [
        "",
        "FNIR = share of enrolled people's probes not identified as themselves at the threshold that lets at most "
        "that share of strangers match someone (FPIR). Pick the threshold for your gallery's size: the more people "
        "enrolled, the more chances a stranger has to resemble one of them.",
    ]
    return lines


def write_report(result: VerificationResult, path: str | os.PathLike, command: str, plots: dict[str, Path]) -> Path:
    """Write the Markdown report: the command, verification, identification (if run), the plots."""
    path = Path(path)
    lines = [
        f"# FaceGate evaluation: {result.model_id}",
        "",
        "Reproduce with:",
        "",
        f"    {command}",
        "",
        *verification_section(result),
    ]
    if result.identification is not None:
        lines += ["", *identification_section(result.identification)]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({plot.name})" for name, plot in plots.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
