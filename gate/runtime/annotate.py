"""Drawing the gate's view: a box and a label per face, and the annotated video they are written to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gate.runtime.results import TrackReport
from gate.vision.boxes import Box
from gate.vision.faces import FaceCrop

GREEN, RED, YELLOW, GREY = (0, 200, 0), (230, 40, 40), (240, 200, 0), (150, 150, 150)  # RGB
FONT, FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.5


@dataclass(frozen=True)
class Overlay:
    box: Box
    label: str
    color: tuple[int, int, int]


class AnnotatedVideo:
    """Writes the frames with their face boxes and labels to an .mp4 (opened on the first frame)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray, overlays: list[Overlay]) -> None:
        canvas = draw_overlays(image, overlays)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = canvas.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (width, height))
        self._writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def _ink(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on `background` (RGB)."""
    red, green, blue = background
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 110 else (255, 255, 255)


def draw_overlays(image: np.ndarray, overlays: list[Overlay], scale: float = 1.0) -> np.ndarray:
    """A copy of the RGB `image` with each face's box and its label (on a patch of the box's colour) drawn;
    `scale`: the image is the frame the boxes were found in, resized by this factor (a snapshot's smaller copy)."""
    canvas = image.copy()
    for overlay in overlays:
        x1, y1, x2, y2 = (round(v * scale) for v in overlay.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), overlay.color, 2)
        (width, height), _ = cv2.getTextSize(overlay.label, FONT, FONT_SCALE, 1)
        top = max(0, y1 - height - 8)  # the label on the box's top edge, inside the frame
        cv2.rectangle(canvas, (x1 - 1, top), (x1 + width + 6, top + height + 8), overlay.color, cv2.FILLED)
        ink = _ink(overlay.color)
        cv2.putText(canvas, overlay.label, (x1 + 3, top + height + 3), FONT, FONT_SCALE, ink, 1, cv2.LINE_AA)
    return canvas


def overlay_for(track_id: int, report: TrackReport, crop: FaceCrop) -> Overlay:
    """A face's box and label: its decision (green or red), why it was not matched (grey), or its best score."""
    decision = report.decision
    if decision is not None:
        who = decision.name or str(decision.verdict)
        score = "" if decision.score is None else f" {decision.score:.2f}"
        return Overlay(crop.face.box, f"{who}{score}", GREEN if decision.granted else RED)
    if crop.rejected is not None:
        return Overlay(crop.face.box, f"#{track_id} {crop.rejected}", GREY)
    score = "" if report.best_score is None else f" {report.best_score:.2f}"
    return Overlay(crop.face.box, f"#{track_id}{score}", YELLOW)
