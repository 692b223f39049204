"""The face pipeline of one frame: detect every face, align it onto the template, and grade its quality."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gate.config import DetectorSettings, QualitySettings
from gate.vision.alignment import ARCFACE_112, CropTemplate, align
from gate.vision.detection import Detector, Face
from gate.vision.following import FaceFollower
from gate.vision.quality import GRADING_TEMPLATE, Reason, assess, grade

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
        self.settings = detector or DetectorSettings()
        self.quality = quality or QualitySettings()
        self.detector = Detector(self.settings, self.quality)  # the smallest face searched follows the quality gate
        self.template = template

    def follower(self) -> FaceFollower | None:
        """A new follower for one camera stream when `[detector] follow` is on (keep one per stream, pass it to
        every `process` call of that stream); None when it is off (every frame is searched whole)."""
        if not self.settings.follow:
            return None
        return FaceFollower(self.detector, self.settings.full_every)

    def crop(self, frame: np.ndarray, face: Face) -> FaceCrop:
        crop, matrix = align(frame, face.landmarks, self.template)
        if self.template == GRADING_TEMPLATE:  # graded on the very crop
            return FaceCrop(face=face, crop=crop, rejected=assess(face, crop, matrix, self.template, self.quality))
        return FaceCrop(face=face, crop=crop, rejected=grade(frame, face, self.quality))

    def process(self, frame: np.ndarray, follower: FaceFollower | None = None) -> list[FaceCrop]:
        """Every face of an RGB uint8 frame, aligned and graded. `follower`: the stream's FaceFollower (from
        `follower()`), which finds the faces it follows without searching the whole frame; None: a full search."""
        faces = follower.detect(frame) if follower is not None else self.detector.detect(frame)
        return [self.crop(frame, face) for face in faces]

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
