"""PNG plots of an evaluation: ROC, DET, genuine/impostor score histograms, CMC (matplotlib, no display)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evaluation.figures import Figure
from evaluation.results import GalleryEntry, IdentificationResult, VerificationResult
from training.metrics import roc


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def plot_roc(result: VerificationResult, path: str | os.PathLike) -> Path:
    """A ROC curve PNG (TAR against FAR on a log axis), with the reported operating points marked."""
    far, tar, _ = roc(result.scores, result.labels)
    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.add_subplot()
    keep = far > 0  # a log axis cannot show FAR = 0
    axes.plot(far[keep], tar[keep], label=f"{result.model_id} (AUC {result.auc:.4f})")
    for far_key, value in result.tar_at_far.items():
        if result.far_support[far_key]:
            axes.plot(float(far_key), value, "o", label=f"TAR {value:.3f} @ FAR {far_key}")
    axes.set_xscale("log")
    axes.set_xlim(1.0 / max(result.impostor_pairs, 1) / 2, 1.0)
    axes.set_ylim(0.0, 1.01)
    axes.set_xlabel("false accept rate")
    axes.set_ylabel("true accept rate")
    axes.set_title(f"Verification ROC, {result.pairs} pairs")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_det(result: VerificationResult, path: str | os.PathLike) -> Path:
    """A DET curve PNG: false non-match rate against false match rate, both on log axes, EER marked."""
    fmr, tar, _ = roc(result.scores, result.labels)
    fnmr = 1.0 - tar
    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.add_subplot()
    keep = (fmr > 0) & (fnmr > 0)
    axes.plot(fmr[keep], fnmr[keep], label=result.model_id)
    axes.plot(result.eer, result.eer, "o", label=f"EER {result.eer:.3f}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("false match rate (impostor pairs accepted)")
    axes.set_ylabel("false non-match rate (genuine pairs rejected)")
    axes.set_title(f"DET, {result.pairs} pairs")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper right")
    return _save(figure, path)


def plot_histograms(result: VerificationResult, path: str | os.PathLike) -> Path:
    """Genuine and impostor score histograms (pairs where a face was missing, scored -inf, left out), with the
    thresholds at the reported FARs."""
    scores, labels = np.asarray(result.scores), np.asarray(result.labels, dtype=bool)
    scored = np.isfinite(scores)
    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.add_subplot()
    low, high = (float(scores[scored].min()), float(scores[scored].max())) if scored.any() else (0.0, 1.0)
    bins = np.linspace(low, high, 61).tolist()  # the data's own range: cosines near 1, or normalised scores
    axes.hist(scores[scored & labels], bins=bins, alpha=0.6, density=True, label="same person (genuine)")
    axes.hist(scores[scored & ~labels], bins=bins, alpha=0.6, density=True, label="different people (impostor)")
    for far, threshold in result.thresholds_at_far.items():
        if result.far_support[far]:
            axes.axvline(threshold, linestyle="--", linewidth=1, color="black")
            axes.text(threshold, axes.get_ylim()[1] * 0.95, f" FAR {far}", rotation=90, va="top", fontsize=8)
    axes.set_xlabel("score (the model card's scale: cosine, or normalised)")
    axes.set_ylabel("density")
    axes.set_title("Score distributions")
    axes.legend(loc="upper left")
    return _save(figure, path)


def plot_cmc(identification: IdentificationResult, path: str | os.PathLike) -> Path:
    """CMC curves (identification rate against rank), one per gallery size."""
    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.add_subplot()
    for size, entry in identification.gallery_sizes.items():
        if isinstance(entry, GalleryEntry):
            curve = entry.cmc
            axes.plot(range(1, len(curve) + 1), curve, marker=".", label=f"{size} people")
    axes.set_xlabel("rank")
    axes.set_ylabel("identification rate")
    axes.set_ylim(0.0, 1.01)
    axes.set_title(f"CMC, closed set ({identification.match} template)")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)
