"""Enrollment photos to aligned face crops: exactly one usable face per photo, or the reason why not."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from gate.errors import FaceGateError
from gate.vision import imageio
from gate.vision.alignment import ARCHIVE, CropTemplate, align, realign, stored_crop_template
from gate.vision.faces import FacePipeline
from gate.vision.imageio import image_files, load_image
from gate.vision.quality import Reason

log = logging.getLogger(__name__)

Status = Literal["added", "duplicate", "rejected"]


@dataclass(frozen=True)
class PhotoOutcome:
    """What enrollment did with one photo; `reason` says why it was rejected or skipped."""

    path: Path
    status: Status
    reason: str = ""


@dataclass(frozen=True)
class UsableFace:
    """The one good face of a photo: its crop for the model in use (S, S, 3) RGB uint8, the same face in the
    model-independent archive template (what is stored, for re-embedding later) and the detector probability."""

    path: Path
    sha256: str
    crop: np.ndarray
    archive_crop: np.ndarray
    quality: float


def expand_photos(photos: Sequence[Path]) -> list[Path]:
    """Files as given, folders replaced by the image files inside them; refuses an empty result."""
    files: list[Path] = []
    for photo in photos:
        photo = Path(photo)
        files.extend(image_files(photo) if photo.is_dir() else [photo])
    if not files:
        raise FaceGateError("no photos to enroll: give image files or folders holding them")
    return files


def read_face(pipeline: FacePipeline, path: Path) -> UsableFace | str:
    """The photo's single usable face, or the reason it cannot be enrolled (a Reason name or a file error)."""
    try:
        frame = load_image(path)
    except FaceGateError as error:
        return str(error)
    face = pipeline.one_face(frame)
    if isinstance(face, Reason):
        return face
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    archive = align(frame, face.face.landmarks, ARCHIVE)[0]
    return UsableFace(path=path, sha256=digest, crop=face.crop, archive_crop=archive, quality=face.face.prob)


def decode_crop(data: bytes, template: CropTemplate) -> np.ndarray:
    """A stored crop cut again for a model's template: (size, size, 3) RGB uint8."""
    crop = imageio.decode_crop(data)
    return realign(crop, stored_crop_template(crop.shape[0]), template)
