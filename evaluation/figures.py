"""matplotlib, from the `evaluate` extra: every plot takes its Figure from here, so a missing install is one line."""

from __future__ import annotations

from gate.errors import FaceGateError

try:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
except ImportError:
    raise FaceGateError("the plots need matplotlib, the evaluate extra: pip install 'facegate[evaluate]'") from None

__all__ = ["Figure", "FixedLocator", "NullFormatter", "ScalarFormatter", "threshold_axes"]


def threshold_axes(axes: Axes, thresholds: dict[str, float], title: str) -> None:
    """A rate-against-threshold panel: the card's thresholds as dotted lines labelled by FAR (the configured one
    starred), its title, the score axis and a 0-1 rate axis."""
    for label, value in thresholds.items():
        axes.axvline(value, color="black", linestyle=":", linewidth=0.8)
        text = label.replace(" (configured)", "*").replace("FAR ", "")
        axes.text(value, 0.5, text, rotation=90, fontsize=7, va="center", ha="right")
    axes.set_title(title)
    axes.set_xlabel("score threshold (the model card's scale)")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(True, alpha=0.3)
