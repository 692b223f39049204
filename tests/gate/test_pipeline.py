"""The face pipeline: alignment maths (no faces), and MTCNN + alignment + quality on real LFW photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gate.config import DetectorSettings, QualitySettings
from gate.errors import FaceGateError
from gate.model.dlib_resnet import CROP_TEMPLATE as DLIB_150
from gate.vision.alignment import (
    ARCFACE_112,
    ARCHIVE,
    CropTemplate,
    align,
    arcface_template,
    realign,
    similarity_transform,
    stored_crop_template,
    transform_points,
)
from gate.vision.detection import Detector, Face, central_face
from gate.vision.faces import FacePipeline
from gate.vision.imageio import load_image
from gate.vision.quality import Reason, assess, sharpness, yaw


def test_similarity_transform_recovers_known_rotation_scale_shift():
    angle, scale, shift = np.radians(20), 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_112.array.astype(np.float64)
    dst = scale * src @ rotation.T + shift
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix[:, :2], scale * rotation, atol=1e-4)
    assert np.allclose(matrix[:, 2], shift, atol=1e-3)


def test_similarity_transform_mirrored_points_still_a_rotation():
    src = ARCFACE_112.array.astype(np.float64)
    dst = src * np.array([-1.0, 1.0])  # a reflection is not a similarity: the best fit must not flip
    matrix = similarity_transform(src, dst)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_template_scales_linearly_and_rejects_points_outside_the_crop():
    assert np.allclose(arcface_template(224).array, ARCFACE_112.array * 2)
    with pytest.raises(FaceGateError, match="5 points inside"):
        CropTemplate(112, ((38.0, 51.0), (73.0, 51.0), (56.0, 71.0), (41.0, 92.0), (170.0, 92.0)))
    with pytest.raises(FaceGateError, match="5 points inside"):
        CropTemplate(112, ((38.0, 51.0), (73.0, 51.0)))


def test_stored_crops_are_archive_or_legacy_arcface_by_size():
    assert stored_crop_template(224) == ARCHIVE and stored_crop_template(112) == ARCFACE_112


def test_archive_crop_realigned_for_dlib_equals_aligning_the_frame_directly():
    """Re-embedding cuts a model's crop out of the stored archive crop: it must match the direct crop."""
    yy, xx = np.mgrid[0:400, 0:500]
    frame = np.dstack([(xx * 0.5) % 256, (yy * 0.6) % 256, ((xx + yy) * 0.3) % 256]).astype(np.uint8)
    landmarks = ARCFACE_112.array * 1.6 + np.array([150.0, 90.0], np.float32)
    stored = align(frame, landmarks, ARCHIVE)[0]
    direct = align(frame, landmarks, DLIB_150)[0].astype(np.int16)
    again = realign(stored, ARCHIVE, DLIB_150).astype(np.int16)
    assert again.shape == (150, 150, 3)
    assert np.median(np.abs(again - direct)) <= 2  # one more interpolation, no black border inside the chip
    assert (again[140:, 5:-5] > 0).any(axis=-1).all()


def test_align_puts_landmarks_on_template():
    frame = np.zeros((300, 400, 3), np.uint8)
    landmarks = ARCFACE_112.array * 1.5 + np.array([100.0, 40.0], np.float32)
    crop, matrix = align(frame, landmarks, ARCFACE_112)
    assert crop.shape == (112, 112, 3)
    assert np.allclose(transform_points(landmarks, matrix), ARCFACE_112.array, atol=1e-3)


def test_sharpness_blurred_crop_lower():
    crop = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    assert sharpness(cv2.GaussianBlur(crop, (9, 9), 3)) < sharpness(crop) / 10


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline()


def test_detect_lfw_photo_one_face_landmarks_in_order(pipeline: FacePipeline, lfw_root: Path):
    frame = load_image(lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    faces = pipeline.detector.detect(frame)
    assert len(faces) == 1
    face = faces[0]
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert face.prob > 0.99 and 30 < face.eye_distance < 60
    assert left_eye[0] < nose[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < nose[1]
    assert nose[1] < min(mouth_left[1], mouth_right[1])
    x1, y1, x2, y2 = face.box
    assert 80 < (x1 + x2) / 2 < 170 and 80 < (y1 + y2) / 2 < 170  # deep-funneled LFW is centred


def test_process_aligned_crop_matches_template_golden(pipeline: FacePipeline, lfw_root: Path):
    frame = load_image(lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    (result,) = pipeline.process(frame)
    assert result.rejected is None and result.crop.shape == (112, 112, 3)
    # re-detecting on the aligned crop finds the landmarks near the template (within a few pixels)
    faces = Detector().detect(cv2.copyMakeBorder(result.crop, 40, 40, 40, 40, cv2.BORDER_CONSTANT))
    again = central_face(faces, 192, 192)
    assert again is not None
    assert np.abs(again.landmarks - 40 - ARCFACE_112.array).max() < 6


def test_process_tiny_face_rejected_too_small(pipeline: FacePipeline, lfw_root: Path):
    frame = load_image(lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    small = cv2.resize(frame, (100, 100), interpolation=cv2.INTER_AREA)
    canvas = np.full((240, 320, 3), 120, np.uint8)
    canvas[70:170, 110:210] = small
    results = pipeline.process(canvas)
    assert results and results[0].rejected is Reason.TOO_SMALL


def test_process_blurred_face_rejected_blurry(lfw_root: Path):
    frame = load_image(lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    pipeline = FacePipeline(quality=QualitySettings(min_sharpness=50.0))
    blurred = cv2.GaussianBlur(frame, (0, 0), 3)
    results = pipeline.process(blurred)
    assert results and results[0].rejected is Reason.BLURRY


def test_process_empty_and_one_pixel_frames_no_faces(pipeline: FacePipeline):
    assert pipeline.process(np.full((240, 320, 3), 90, np.uint8)) == []
    assert pipeline.process(np.zeros((1, 1, 3), np.uint8)) == []


def _face(landmarks: np.ndarray, prob: float = 0.999) -> Face:
    return Face(box=(0.0, 0.0, 112.0, 112.0), prob=prob, landmarks=landmarks.astype(np.float32))


def test_assess_reasons_in_order_small_unsure_turned():
    crop = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)  # sharp
    settings = QualitySettings()
    frontal = ARCFACE_112.array * 1.0
    turned = frontal.copy()
    turned[2, 0] += 0.6 * (frontal[1, 0] - frontal[0, 0])  # nose well past the eye midline: head turned
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    assert assess(_face(frontal), crop, identity, ARCFACE_112, settings) is None
    assert abs(yaw(_face(frontal), identity, ARCFACE_112)) < 0.01
    assert assess(_face(turned), crop, identity, ARCFACE_112, settings) is Reason.TURNED
    assert assess(_face(frontal, prob=0.5), crop, identity, ARCFACE_112, settings) is Reason.LOW_CONFIDENCE
    assert assess(_face(frontal * 0.3), crop, identity, ARCFACE_112, settings) is Reason.TOO_SMALL


def test_quality_is_graded_on_one_crop_whatever_the_models_template():
    """min_sharpness keeps its meaning: dlib's chip shows the face larger (smoother), yet grades the same."""
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (300, 300, 3), np.uint8), (0, 0), 1.5)
    face = Face(box=(60.0, 60.0, 220.0, 220.0), prob=0.999, landmarks=ARCFACE_112.array + np.float32(90.0))
    settings = QualitySettings()
    assert sharpness(align(frame, face.landmarks, DLIB_150)[0]) < settings.min_sharpness
    assert sharpness(align(frame, face.landmarks, ARCFACE_112)[0]) >= settings.min_sharpness
    graded = [FacePipeline(quality=settings, template=t).crop(frame, face) for t in (ARCFACE_112, DLIB_150)]
    assert [g.rejected for g in graded] == [None, None]
    assert graded[1].crop.shape == (150, 150, 3)


def test_large_photo_is_searched_bounded_and_its_landmarks_mapped_back(lfw_root: Path):
    """A 12-megapixel photo: detection runs on a copy of at most max_side, points come back in full pixels."""
    photo = load_image(lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    large = cv2.resize(photo, (4000, 4000), interpolation=cv2.INTER_CUBIC)
    bounded, unbounded = Detector(DetectorSettings(max_side=1280)), Detector(DetectorSettings(max_side=10000))
    near = bounded.detect(photo)[0].landmarks * (4000 / 250)
    found = bounded.detect(large)
    assert len(found) == 1 and np.abs(found[0].landmarks - near).max() < 4000 / 250 * 3  # within 3 source pixels
    assert np.abs(found[0].landmarks - unbounded.detect(large)[0].landmarks).max() < 60
    small, scale = bounded.bounded_copy(large)
    assert max(small.shape[:2]) == 1280 and scale == pytest.approx(4000 / 1280)
    assert bounded.bounded_copy(photo)[1] == 1.0  # small frames are left alone
