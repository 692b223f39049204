"""The face pipeline of one frame: detect every face, align it onto the template, and grade its quality."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gate.alignment import ARCFACE_112, CropTemplate, align
from gate.config import DetectorSettings, QualitySettings
from gate.detection import Detector, Face
from gate.quality import GRADING_TEMPLATE, Reason, assess, grade

BACKGROUND = (Reason.TOO_SMALL, Reason.LOW_CONFIDENCE)  # rejections that mark a face as background, not a person


@dataclass(frozen=True)
class FaceCrop:
    """A detected face with its aligned crop; `rejected` names why it must not be matched (None: usable)."""

    face: Face
    crop: np.ndarray  # (size, size, 3) RGB uint8
    rejected: Reason | None


class FacePipeline:
    """detect -> align (onto the model's template) -> quality for whole frames; `process(frame) -> list[FaceCrop]`,
    largest face first."""

    def __init__(
        self,
        detector: DetectorSettings | None = None,
        quality: QualitySettings | None = None,
        template: CropTemplate = ARCFACE_112,
    ) -> None:
        """`template`: the crop of the model in use (`Embedder.template`)."""
        self.detector = Detector(detector)
        self.quality = quality or QualitySettings()
        self.template = template

    def crop(self, frame: np.ndarray, face: Face) -> FaceCrop:
        crop, matrix = align(frame, face.landmarks, self.template)
        if self.template == GRADING_TEMPLATE:  # graded on the very crop
            return FaceCrop(face=face, crop=crop, rejected=assess(face, crop, matrix, self.template, self.quality))
        return FaceCrop(face=face, crop=crop, rejected=grade(frame, face, self.quality))

    def process(self, frame: np.ndarray) -> list[FaceCrop]:
        return [self.crop(frame, face) for face in self.detector.detect(frame)]

    def one_face(self, frame: np.ndarray) -> FaceCrop | Reason:
        """A photo's single usable face (what enrolment takes), or the reason there is none. Faces too small or too
        unsure to be matched are background (a bystander far behind), not a second person."""
        faces = self.process(frame)
        if not faces:
            return Reason.NO_FACE
        people = [face for face in faces if face.rejected not in BACKGROUND]
        if len(people) > 1:
            return Reason.SEVERAL_FACES
        if not people or people[0].rejected is not None:
            return faces[0].rejected or Reason.NO_FACE
        return people[0]
