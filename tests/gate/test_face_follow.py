"""Following faces between full detections: the schedule (a stand-in detector), the settings, and real MTCNN on
videos made by moving LFW photos over a plain background."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gate.config import DetectorSettings, QualitySettings, settings_from_dict
from gate.errors import FaceGateError
from gate.vision.boxes import Box
from gate.vision.detection import Detector, Face, smallest_face_px
from gate.vision.faces import FacePipeline
from gate.vision.following import FaceFollower, Followed
from gate.vision.imageio import load_image

FRAME = (480, 640, 3)


def _face(box: Box, prob: float = 0.99) -> Face:
    x1, y1, x2, y2 = box
    eyes = [(x1 + 0.3 * (x2 - x1), y1 + 0.4 * (y2 - y1)), (x1 + 0.7 * (x2 - x1), y1 + 0.4 * (y2 - y1))]
    rest = [((x1 + x2) / 2, y1 + 0.6 * (y2 - y1)), (x1 + 0.35 * (x2 - x1), y2 - 10), (x1 + 0.65 * (x2 - x1), y2 - 10)]
    return Face(box=box, prob=prob, landmarks=np.array(eyes + rest, np.float32))


class ScriptedDetector:
    """A stand-in Detector: `scene[i]` is the faces in frame i (the frame holds its index in pixel 0); `refine`
    finds a scene face overlapping the region, as MTCNN's later stages would."""

    def __init__(self, scene: list[list[Face]]) -> None:
        self.scene = scene
        self.calls: list[str] = []

    def detect(self, frame: np.ndarray) -> list[Face]:
        self.calls.append("full")
        return list(self.scene[int(frame[0, 0, 0])])

    def refine(self, frame: np.ndarray, regions: list[Box]) -> list[Face | None]:
        self.calls.append("refine")
        faces = self.scene[int(frame[0, 0, 0])]
        return [next((f for f in faces if _inside(f.box, region)), None) for region in regions]


def _inside(box: Box, region: Box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def _frames(count: int) -> list[np.ndarray]:
    frames = [np.zeros((4, 4, 3), np.uint8) for _ in range(count)]
    for index, frame in enumerate(frames):
        frame[0, 0, 0] = index
    return frames


def test_follower_full_search_first_then_every_full_every_frame():
    scene = [[_face((100.0 + 4 * i, 100.0, 200.0 + 4 * i, 200.0))] for i in range(7)]
    detector = ScriptedDetector(scene)
    follower = FaceFollower(detector, full_every=3)  # type: ignore[arg-type]
    found = [follower.detect(frame) for frame in _frames(7)]
    assert detector.calls == ["full", "refine", "refine", "full", "refine", "refine", "full"]
    assert all(len(faces) == 1 for faces in found)
    assert follower.followed[0].velocity[0] > 0  # it has seen the face move right


def test_follower_new_face_found_within_full_every_frames_whatever_the_phase():
    for appears in range(1, 7):
        scene = [[_face((100.0, 100.0, 200.0, 200.0))] for _ in range(10)]
        for index in range(appears, 10):
            scene[index].append(_face((400.0, 150.0, 480.0, 230.0)))
        follower = FaceFollower(ScriptedDetector(scene), full_every=3)  # type: ignore[arg-type]
        counts = [len(follower.detect(frame)) for frame in _frames(10)]
        assert 2 in counts[appears : appears + 3], (appears, counts)


def test_follower_lost_face_searches_the_same_frame_and_leaves_no_ghost():
    scene = [[_face((100.0, 100.0, 200.0, 200.0))]] * 2 + [[]] * 4
    detector = ScriptedDetector(scene)
    follower = FaceFollower(detector, full_every=5)  # type: ignore[arg-type]
    counts = [len(follower.detect(frame)) for frame in _frames(6)]
    assert counts == [1, 1, 0, 0, 0, 0]
    assert detector.calls[:4] == ["full", "refine", "refine", "full"]  # lost in frame 2: searched at once
    assert follower.followed == []
    follower.reset()
    follower.detect(_frames(1)[0])
    assert detector.calls[-1] == "full"


def test_followed_region_moves_with_velocity_and_two_tracks_on_one_face_merge():
    followed = Followed(_face((100.0, 100.0, 200.0, 200.0))).moved_to(_face((110.0, 100.0, 210.0, 200.0)))
    assert followed.velocity == (5.0, 0.0)
    x1, y1, x2, y2 = followed.predicted_region()
    assert (x1 + x2) / 2 == pytest.approx(165.0) and x2 - x1 == pytest.approx(130.0)
    same = _face((101.0, 100.0, 201.0, 200.0), prob=0.95)
    scene = [[_face((100.0, 100.0, 200.0, 200.0)), _face((160.0, 100.0, 260.0, 200.0))], [same]]
    follower = FaceFollower(ScriptedDetector(scene), full_every=5)  # type: ignore[arg-type]
    assert len(follower.detect(_frames(1)[0])) == 2
    assert follower.detect(_frames(2)[1]) == [same]  # both regions hold the one face now: it is kept once


def test_detector_settings_follow_keys_validated_in_one_line():
    settings = settings_from_dict({"detector": {"follow": True, "full_every": 5}})
    assert settings.detector.follow and settings.detector.full_every == 5
    for key, value, message in (
        ("full_every", 0, r"detector\.full_every: .*greater than or equal to 1"),
        ("follow", "often", r"detector\.follow: .*'often'"),
        ("min_face_px", 5, r"detector\.min_face_px: .*0 \(derived from the quality gate\) or at least 10"),
    ):
        with pytest.raises(FaceGateError, match=message) as error:
            settings_from_dict({"detector": {key: value}})
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="full_every"):
        FaceFollower(None, full_every=0)  # type: ignore[arg-type]


def test_smallest_face_derived_from_quality_unless_set():
    """Snapped down to MTCNN's usual pyramid (20 px / 0.709^k) at or below the smallest kept face's box."""
    assert smallest_face_px(DetectorSettings(), QualitySettings()) == pytest.approx(20 / 0.709)  # boxes >= 34.2
    assert smallest_face_px(DetectorSettings(), QualitySettings(min_eye_distance_px=40)) == pytest.approx(20 / 0.709**3)
    assert smallest_face_px(DetectorSettings(), QualitySettings(min_eye_distance_px=8)) == pytest.approx(20 * 0.709)
    assert smallest_face_px(DetectorSettings(), QualitySettings(min_eye_distance_px=0)) == 10
    assert smallest_face_px(DetectorSettings(min_face_px=20), QualitySettings()) == 20


def test_pipeline_follower_only_when_configured():
    assert FacePipeline(DetectorSettings(follow=False)).follower() is None
    assert FacePipeline().follower() is not None  # following is the default
    pipeline = FacePipeline(DetectorSettings(follow=True, full_every=4))
    first, second = pipeline.follower(), pipeline.follower()
    assert first is not None and second is not None and first is not second  # one per stream
    assert first.detector is pipeline.detector and first.full_every == 4  # the networks are shared


# --- real MTCNN on moving LFW photos


def _background() -> np.ndarray:
    frame = np.zeros(FRAME, np.uint8)
    frame[:] = np.linspace(60, 140, FRAME[1], dtype=np.uint8)[None, :, None]
    return frame


def _paste(frame: np.ndarray, photo: np.ndarray, left: int, top: int, size: int) -> None:
    tile = cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA)
    frame[top : top + size, left : left + size] = tile


@pytest.fixture(scope="module")
def photos(lfw_root: Path) -> list[np.ndarray]:
    return [
        load_image(lfw_root / name) for name in ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "AJ_Lamas/AJ_Lamas_0001.jpg")
    ]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def _walk(photo: np.ndarray, frames: int) -> list[np.ndarray]:
    """A face walking up: moving right 7 px and growing 3 px a frame."""
    video = []
    for index in range(frames):
        frame = _background()
        _paste(frame, photo, 120 + 7 * index, 90 + index, 200 + 3 * index)
        video.append(frame)
    return video


def test_followed_face_stays_close_to_a_full_detection(detector: Detector, photos: list[np.ndarray]):
    follower = FaceFollower(detector, full_every=100)  # following only, after the first frame
    for frame in _walk(photos[0], 12):
        (followed,) = follower.detect(frame)
        (full,) = detector.detect(frame)
        eyes = full.eye_distance
        assert np.abs(followed.landmarks - full.landmarks).max() < 0.15 * eyes
        assert np.abs(np.subtract(followed.box, full.box)).max() < 0.1 * (full.box[2] - full.box[0])
        assert followed.prob > 0.95 and followed.landmarks.dtype == np.float32
    assert follower.full_detections == 1 and follower.refined == 11


def test_face_appearing_mid_video_found_within_full_every_frames(detector: Detector, photos: list[np.ndarray]):
    video = _walk(photos[0], 9)
    for frame in video[4:]:
        _paste(frame, photos[1], 440, 240, 180)
    for start in range(3):  # the newcomer arrives at each phase of the full-search schedule
        follower = FaceFollower(detector, full_every=3)
        counts = [len(follower.detect(frame)) for frame in video[start:]]
        arrival = 4 - start
        assert counts[:arrival] == [1] * arrival
        assert 2 in counts[arrival : arrival + 3], counts
        assert counts[-1] == 2


def test_face_leaving_ends_its_track_no_ghost(detector: Detector, photos: list[np.ndarray]):
    video = _walk(photos[0], 4) + [_background() for _ in range(4)]
    follower = FaceFollower(detector, full_every=10)
    counts = [len(follower.detect(frame)) for frame in video]
    assert counts == [1, 1, 1, 1, 0, 0, 0, 0]
    assert follower.followed == [] and follower.full_detections == 2


def test_pipeline_process_with_follower_gives_the_same_crops(photos: list[np.ndarray]):
    pipeline = FacePipeline(DetectorSettings(follow=True, full_every=5))
    follower = pipeline.follower()
    for frame in _walk(photos[0], 4):
        (followed,) = pipeline.process(frame, follower)
        (full,) = pipeline.process(frame)
        assert followed.rejected is full.rejected is None and followed.crop.shape == full.crop.shape
        assert np.abs(followed.crop.astype(int) - full.crop.astype(int)).mean() < 12
