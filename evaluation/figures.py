"""matplotlib, from the `evaluate` extra: every plot takes its Figure from here, so a missing install is one line."""

from __future__ import annotations

from gate.errors import FaceGateError

try:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
except ImportError:
    raise FaceGateError("the plots need matplotlib, the evaluate extra: pip install 'facegate[evaluate]'") from None

__all__ = ["Figure", "FixedLocator", "NullFormatter", "ScalarFormatter"]
