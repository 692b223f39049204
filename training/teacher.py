"""An optional teacher for distillation: dlib's face-recognition ResNet (face_recognition_models) applied to
our aligned crops once, cached beside the crop files. Training only; the gate never imports it."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from gate.errors import FaceGateError

log = logging.getLogger(__name__)

UPSCALE = 224  # dlib reads our 112x112 crops best enlarged ...
PAD = 64  # ... and reflect-padded, with one fixed face box (the template's face region)
FACE_BOX = (24, 24, 200, 224)  # left, top, right, bottom in the 224-pixel crop, before padding


def teacher_path(crops_file: Path) -> Path:
    return crops_file.with_suffix(".teacher.npy")


def prepare_targets(descriptors: np.ndarray) -> np.ndarray:
    """dlib's raw descriptors sit in a narrow cone (every pair has cosine ~0.84): centre them by their mean
    over the training crops, then scale to unit length. Rows without a descriptor stay NaN."""
    present = ~np.isnan(descriptors).any(axis=1)
    if not present.any():
        return descriptors
    centred = descriptors - descriptors[present].mean(axis=0)
    with np.errstate(invalid="ignore"):  # NaN rows stay NaN
        return centred / np.linalg.norm(centred, axis=1, keepdims=True)


def load_dlib() -> tuple[Any, Any, Any]:
    """(dlib, its 5-point shape predictor, its face-recognition ResNet) from the `peer` extra (dlib has no
    type hints: Any)."""
    try:
        import dlib
        import face_recognition_models as models
    except ImportError as error:
        raise FaceGateError(f"the dlib teacher needs the peer extra: pip install 'facegate[peer]' ({error})") from None
    shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    return dlib, shape, dlib.face_recognition_model_v1(models.face_recognition_model_location())


class DlibTeacher:
    """dlib's 128-d descriptors (RGB input) of aligned crops."""

    def __init__(self) -> None:
        dlib, self._shape, self._net = load_dlib()
        left, top, right, bottom = FACE_BOX
        self._box = dlib.rectangle(left + PAD, top + PAD, right + PAD, bottom + PAD)

    def describe(self, crop: np.ndarray) -> np.ndarray:
        image = cv2.resize(crop, (UPSCALE, UPSCALE), interpolation=cv2.INTER_CUBIC)
        image = np.ascontiguousarray(cv2.copyMakeBorder(image, PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT))
        return np.asarray(self._net.compute_face_descriptor(image, self._shape(image, self._box)), np.float32)


def _describe_chunk(crops: np.ndarray) -> np.ndarray:
    """One worker's share (a fresh process: dlib's models load per process, ~1 s)."""
    teacher = DlibTeacher()
    return np.stack([teacher.describe(crop) for crop in crops])


def build_teacher_cache(crops_file: Path, every: int = 1, people: set[str] | None = None, workers: int = 1) -> Path:
    """Descriptors of the crops of a crop file, in its order, saved as <name>.teacher.npy (float16).

    every > 1 describes only every n-th crop (dlib takes ~0.1 s a crop on one core); `people` limits it to
    those people's crops (e.g. LFW peopleDevTrain: the evaluation's people are never needed). The crops left
    out are NaN and get no distillation term. dlib uses one core: `workers` processes share the crops.
    """
    from training.crops import load_crops

    crop_set = load_crops(crops_file)
    chosen = np.arange(0, len(crop_set), every)
    if people is not None:
        chosen = chosen[np.isin(crop_set.person[chosen], sorted(people))]
    out = np.full((len(crop_set), 128), np.nan, np.float32)
    chunks = [chosen[i : i + 256] for i in range(0, len(chosen), 256)]
    progress = tqdm(total=len(chosen), desc=f"teacher {crops_file.name}", unit="crop")
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_describe_chunk, crop_set.crops[chunk]): chunk for chunk in chunks}
        for future in as_completed(futures):
            out[futures[future]] = future.result()
            progress.update(len(futures[future]))
    progress.close()
    np.save(teacher_path(crops_file), out.astype(np.float16))
    return teacher_path(crops_file)
