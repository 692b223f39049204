"""Face boxes: (x1, y1, x2, y2) in pixels, and their overlap (IoU), shared by detection, following and tracking."""

from __future__ import annotations

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


def as_box(values: object, scale: float = 1.0) -> Box:
    """Four numbers (an array row, a list) as a Box of floats, each times `scale`."""
    x1, y1, x2, y2 = (float(v) * scale for v in values)  # type: ignore[attr-defined]
    return (x1, y1, x2, y2)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes: 1 for the same box, 0 for disjoint ones."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
