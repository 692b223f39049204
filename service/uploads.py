"""Uploaded photos made into files for the enrolment code: each must say it is an image (else 415), all together
stay under the size limit (else 413), and each must be readable by the gate's image loader (else the enrolment
is refused, 422, with every photo's outcome)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from fastapi import HTTPException
from starlette.datastructures import UploadFile

from enrollment.people import EnrollmentRefused, every_outcome
from enrollment.photos import PhotoOutcome
from gate.errors import FaceGateError
from gate.vision.imageio import load_image

CHUNK = 1 << 20
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 120


def _file_name(upload: UploadFile, index: int) -> str:
    """The photo's own name, reduced to safe characters (it is reported in the outcomes and the audit)."""
    name = UNSAFE.sub("_", Path(upload.filename or "").name).strip("._")[:MAX_NAME]
    return name or f"photo-{index + 1}"


def _copy(upload: UploadFile, target: Path, budget: int) -> int:
    """Copy one upload to `target`; returns its size, or 413 when it overruns the budget left."""
    size = 0
    upload.file.seek(0)
    with target.open("wb") as out:
        while chunk := upload.file.read(CHUNK):
            size += len(chunk)
            if size > budget:
                raise HTTPException(413, "the photos together exceed [service] max_upload_mb")
            out.write(chunk)
    return size


def _unreadable(target: Path, name: str) -> PhotoOutcome | None:
    """The outcome of a photo the gate's image loader cannot read (the error names the upload, not the temp
    file), or None when it reads."""
    try:
        load_image(target)
    except FaceGateError as error:
        return PhotoOutcome(target, "rejected", str(error).replace(str(target), name).removeprefix(f"{name}: "))
    return None


def save_photos(uploads: Sequence[UploadFile], folder: Path, max_bytes: int) -> list[Path]:
    """The uploads as files in `folder` (one subfolder each, so names may repeat), checked as the docstring of
    this module says; the caller deletes the folder. Unreadable photos refuse the enrolment (422, every photo's
    outcome)."""
    if not uploads:
        raise EnrollmentRefused("no photos to enroll: upload one or more image files as photos", [])
    paths: list[Path] = []
    unreadable: dict[Path, PhotoOutcome] = {}
    budget = max_bytes
    for index, upload in enumerate(uploads):
        name = _file_name(upload, index)
        kind = (upload.content_type or "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            raise HTTPException(415, f"{name}: content type {kind or 'none'} is not an image")
        target = folder / str(index) / name
        target.parent.mkdir(mode=0o700)
        budget -= _copy(upload, target, budget)
        if (outcome := _unreadable(target, name)) is not None:
            unreadable[target] = outcome
        paths.append(target)
    if unreadable:
        first = next(iter(unreadable.values()))
        raise EnrollmentRefused(f"{first.path.name}: {first.reason}", every_outcome(paths, unreadable, []))
    return paths


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
