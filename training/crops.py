"""Aligned-crop datasets: every photo of a `<person>/<images>` folder run through the gate's own detector and
aligner once, stored compactly (WebP bytes in one .npz per source) for training and evaluation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from gate.errors import FaceGateError
from gate.vision.alignment import ARCFACE_112, CropTemplate, align, arcface_template
from gate.vision.imageio import IMAGE_SUFFIXES, decode_crop, encode_crop, load_image

if TYPE_CHECKING:
    from gate.vision.detection import Detector

log = logging.getLogger(__name__)

WEBP_QUALITY = 80  # about 1.7 kB a 112x112 crop: 24k training crops fit the GPU machine's 64 MiB upload
BATCH = 16


@dataclass
class CropSet:
    """Aligned crops with their identity labels; `detected[i]` is False where the fallback rule was used."""

    crops: np.ndarray  # (N, S, S, 3) RGB uint8
    person: np.ndarray  # (N,) str
    file: np.ndarray  # (N,) str, relative to the image root
    detected: np.ndarray  # (N,) bool
    teacher: np.ndarray  # (N, 128) float32 teacher descriptors (training/teacher.py), NaN where none

    def __len__(self) -> int:
        return len(self.person)

    def subset(self, mask: np.ndarray) -> CropSet:
        return CropSet(*(getattr(self, f.name)[mask] for f in fields(CropSet)))

    @staticmethod
    def concat(a: CropSet, b: CropSet) -> CropSet:
        return CropSet(*(np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in fields(CropSet)))


def list_photos(root: Path, people: set[str] | None = None) -> list[Path]:
    """Every image under root/<person>/, optionally only for the given people, in a stable order."""
    if not root.is_dir():
        raise FaceGateError(f"{root}: image folder not found")
    return sorted(
        p
        for d in root.iterdir()
        if d.is_dir() and (people is None or d.name in people)
        for p in d.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES
    )


def build_crops(
    root: Path,
    out: Path,
    template: CropTemplate = ARCFACE_112,
    detector: Detector | None = None,
    people: set[str] | None = None,
) -> Path:
    """Detect, align onto `template` and store every photo under root. No-face photos use the mean landmarks of
    the detected ones, scaled to the photo (LFW and Pins photos are roughly centred), and are flagged."""
    from gate.vision.detection import Detector, central_face  # here: loading stored crops needs no detector stack

    detector = detector or Detector()
    photos = list_photos(root, people)
    blobs: dict[int, bytes] = {}
    relative_marks: list[np.ndarray] = []
    missing: list[int] = []
    for start in tqdm(range(0, len(photos), BATCH), desc=f"aligning {root.name}", unit="batch"):
        indices = list(range(start, min(start + BATCH, len(photos))))
        images = [load_image(photos[i]) for i in indices]
        found = detector.detect_batch(images)
        for i, image, faces in zip(indices, images, found, strict=True):
            height, width = image.shape[:2]
            face = central_face(faces, width, height)
            if face is None:
                missing.append(i)
                continue
            relative_marks.append(face.landmarks / np.array([width, height], np.float32))
            blobs[i] = encode_crop(align(image, face.landmarks, template)[0], WEBP_QUALITY)
    mean_marks = np.mean(relative_marks, axis=0) if relative_marks else None
    for i in missing:
        image = load_image(photos[i])
        if mean_marks is None:
            raise FaceGateError(f"{root}: no face found in any photo")
        marks = mean_marks * np.array([image.shape[1], image.shape[0]], np.float32)
        blobs[i] = encode_crop(align(image, marks, template)[0], WEBP_QUALITY)
    log.info("%s: %d photos, %d without a detected face", root, len(photos), len(missing))
    payload = [blobs[i] for i in range(len(photos))]
    offsets = np.cumsum([0] + [len(b) for b in payload]).astype(np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        blob=np.frombuffer(b"".join(payload), dtype=np.uint8),
        offsets=offsets,
        person=np.array([p.parent.name for p in photos]),
        files=np.array([str(p.relative_to(root)) for p in photos]),
        detected=~np.isin(np.arange(len(photos)), missing),
        size=np.array(template.size),
        template=template.array,
    )
    return out


def crop_template_of(path: Path) -> CropTemplate:
    """The template a crop file was aligned to (files from before templates were stored: ArcFace at their size)."""
    if not path.is_file():
        raise FaceGateError(f"{path}: crop file not found (run `facegate prepare` first)")
    with np.load(path) as data:
        size = int(data["size"])
        return CropTemplate.of(size, data["template"]) if "template" in data else arcface_template(size)


def load_crops(path: Path, people: set[str] | None = None) -> CropSet:
    """Decode a crop file made by build_crops, optionally keeping only some people."""
    if not path.is_file():
        raise FaceGateError(f"{path}: crop file not found (run `facegate prepare` first)")
    with np.load(path) as data:
        person, file, detected = data["person"], data["files"], data["detected"]
        keep = np.ones(len(person), bool) if people is None else np.isin(person, sorted(people))
        blob, offsets = data["blob"], data["offsets"]
        crops = np.stack([decode_crop(blob[offsets[i] : offsets[i + 1]]) for i in np.flatnonzero(keep)])
    cached = path.with_suffix(".teacher.npy")  # written by training.teacher.build_teacher_cache
    no_teacher = np.full((len(person), 128), np.nan, np.float32)
    teacher = np.load(cached).astype(np.float32) if cached.is_file() else no_teacher
    return CropSet(crops, person[keep], file[keep], detected[keep], teacher[keep])
