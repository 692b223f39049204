"""The passive liveness test on synthetic scenes: a textured plane moved by homographies (smoothly, or with a slight
perspective warp of its own in every frame) against a textured surface with depth relief turned by a few degrees;
both residual methods; the verdict's timing, memory bounds and track bookkeeping."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from gate.decision.liveness import (
    RESIDUALS,
    LivenessParams,
    LivenessTracker,
    face_patch,
    inner_face_mask,
    plane_residual,
    registered_residual,
)
from gate.vision.alignment import arcface_template
from gate.vision.detection import Face

SIZE = (480, 640)  # frame height, width
FACE_CENTRE = np.array([320.0, 240.0])
POINTS = (arcface_template(112).array - 56.0) * 1.6 + FACE_CENTRE  # 5 landmarks, about 56 px between the eyes


def texture(seed: int = 0) -> np.ndarray:
    """A (H, W, 3) uint8 image with detail at several scales, like skin, hair and background together."""
    rng = np.random.default_rng(seed)
    image = np.zeros(SIZE, np.float32)
    for cells, weight in ((8, 60.0), (32, 40.0), (128, 25.0)):
        noise = rng.normal(0, 1, (cells * SIZE[0] // SIZE[1], cells)).astype(np.float32)
        image += weight * cv2.resize(noise, SIZE[::-1], interpolation=cv2.INTER_CUBIC)
    gray = np.clip(image + 128, 0, 255).astype(np.uint8)
    return np.dstack([gray, gray, gray])


def face(points: np.ndarray) -> Face:
    x1, y1 = points.min(axis=0) - 40
    x2, y2 = points.max(axis=0) + 40
    return Face((float(x1), float(y1), float(x2), float(y2)), 0.99, points.astype(np.float32))


def planar_motion(t: float) -> np.ndarray:
    """A held picture's homography at moment t: approaching (scale), drifting, tilting about both axes."""
    scale, shift = 0.8 + 0.4 * t, np.array([30 * t, -10 * t])
    tilt_x, tilt_y = 0.00025 * math.sin(3 * t), 0.00015 * math.cos(2 * t)  # up to ~9 degrees of perspective tilt
    centre = np.array([[1, 0, -FACE_CENTRE[0]], [0, 1, -FACE_CENTRE[1]], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, 1, 0], [tilt_x, tilt_y, 1]])
    place = np.array([[scale, 0, FACE_CENTRE[0] + shift[0]], [0, scale, FACE_CENTRE[1] + shift[1]], [0, 0, 1]])
    return place @ tilt @ centre


def corner_jitter(rng: np.random.Generator, share: float) -> np.ndarray:
    """A homography moving each frame corner by a normal draw of `share` of the frame's side."""
    corners = np.array([[0, 0], [SIZE[1], 0], [SIZE[1], SIZE[0]], [0, SIZE[0]]], np.float32)
    moved = corners + rng.normal(0, share, (4, 2)).astype(np.float32) * np.array(SIZE[::-1], np.float32)
    return cv2.getPerspectiveTransform(corners, moved).astype(np.float64)


def flat_clip(frames: int, seed: int = 0, jitter: float = 0.0) -> list[tuple[np.ndarray, Face]]:
    """A textured plane moved by homographies, blurred, lit and noised per frame; landmarks jittered by 1 px. With
    `jitter`, every frame's plane is further warped by a homography of its own (corners moved by that share)."""
    rng, image = np.random.default_rng(seed), texture(seed)
    clip = []
    for step in range(frames):
        homography = planar_motion(step / frames)
        if jitter:
            homography = corner_jitter(rng, jitter) @ homography
        frame = cv2.warpPerspective(image, homography, SIZE[::-1], borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        frame = cv2.GaussianBlur(frame, (0, 0), 1.2 * (1 - step / frames) + 0.3) * (0.8 + 0.3 * step / frames)
        frame = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
        points = cv2.perspectiveTransform(POINTS[None].astype(np.float64), homography)[0] + rng.normal(0, 1, (5, 2))
        clip.append((frame, face(points)))
    return clip


def relief() -> np.ndarray:
    """Height towards the camera (pixels): a dome the size of a head with a nose-sized bump below the eyes."""
    ys, xs = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float32)
    u, v = (xs - FACE_CENTRE[0]) / 75, (ys - FACE_CENTRE[1]) / 100
    dome = 80 * np.sqrt(np.clip(1 - u**2 - v**2, 0, None))
    nose = 25 * np.exp(-0.5 * (((xs - POINTS[2, 0]) / 12) ** 2 + ((ys - POINTS[2, 1] + 10) / 22) ** 2))
    return cv2.GaussianBlur(dome + nose, (0, 0), 4)


def turned(image: np.ndarray, height: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """The surface turned by `yaw` radians about the vertical axis through the face centre (orthographic), and
    where the 5 landmarks land: x' = cx + (x - cx) cos(yaw) + height sin(yaw)."""
    ys, xs = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float32)
    shift = ((xs - FACE_CENTRE[0]) * (math.cos(yaw) - 1) + height * math.sin(yaw)).astype(np.float32)
    source = xs.copy()
    for _ in range(4):  # the pixel that lands on each output pixel
        source = xs - cv2.remap(shift, source, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    frame = cv2.remap(image, source, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    heights = height[POINTS[:, 1].round().astype(int), POINTS[:, 0].round().astype(int)]
    landed = POINTS.copy()
    landed[:, 0] = FACE_CENTRE[0] + (POINTS[:, 0] - FACE_CENTRE[0]) * math.cos(yaw) + heights * math.sin(yaw)
    return frame, landed


def head_clip(frames: int, swing_deg: float = 6.0, seed: int = 0) -> list[tuple[np.ndarray, Face]]:
    """The textured relief turning left and right by `swing_deg`, with sensor noise and 1 px landmark jitter."""
    rng, image, height = np.random.default_rng(seed), texture(seed), relief()
    clip = []
    for step in range(frames):
        frame, points = turned(image, height, math.radians(swing_deg) * math.sin(2 * math.pi * step / frames))
        frame = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
        clip.append((frame, face(points + rng.normal(0, 1, (5, 2)))))
    return clip


def track_score(clip: list[tuple[np.ndarray, Face]], params: LivenessParams | None = None) -> float:
    tracker = LivenessTracker(params)
    for frame, found in clip:
        tracker.add(7, frame, found)
    verdict = tracker.verdict(7)
    assert verdict is not None
    return verdict.score


def test_flat_plane_scores_below_the_threshold_and_a_turning_relief_above() -> None:
    flat, head = track_score(flat_clip(24)), track_score(head_clip(24))
    threshold = LivenessParams().threshold
    assert flat < threshold < head, (flat, head)
    assert head > 3 * flat


def test_registration_explains_away_a_per_frame_perspective_jitter() -> None:
    """The jittered plane scores above the smooth one by the one-pass fit (the flow is measured over bigger, uneven
    motions) but not once the pair is registered first: a plane under any perspective change stays a plane. Both
    methods keep a turning relief far above either plane."""
    clips = {"smooth": flat_clip(16), "jittered": flat_clip(16, jitter=0.02), "head": head_clip(16)}
    plane, registered = (
        {name: track_score(clip, LivenessParams(method=m)) for name, clip in clips.items()} for m in RESIDUALS
    )
    assert plane["jittered"] > 1.4 * plane["smooth"], plane
    assert registered["jittered"] < 1.2 * registered["smooth"] and registered["jittered"] < 0.5 * plane["jittered"]
    assert plane["head"] > 5 * plane["jittered"] and registered["head"] > 5 * registered["jittered"], registered
    tracker = LivenessTracker()
    first, later = (face_patch(frame, found.landmarks, tracker.template) for frame, found in clips["jittered"][::8])
    assert registered_residual(first, later, tracker.mask) < plane_residual(first, later, tracker.mask)


def test_unknown_method_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="plane, registered"):
        LivenessParams(method="optical")


def test_still_relief_scores_like_a_plane() -> None:
    """No turn, no parallax: a head that holds still is not told from a photo (the test's known limit)."""
    still = track_score(head_clip(20, swing_deg=0.0))
    assert still < LivenessParams().threshold


def test_plane_residual_zero_for_identical_patches_and_grows_with_relief() -> None:
    tracker = LivenessTracker()
    mask = inner_face_mask(tracker.template)
    flat = [tracker_patch(tracker, frame, found) for frame, found in flat_clip(2)]
    assert plane_residual(flat[0], flat[0], mask) < 0.05
    small, large = (head_clip(16, swing_deg=deg) for deg in (2.0, 8.0))
    residuals = [
        plane_residual(tracker_patch(tracker, *clip[0]), tracker_patch(tracker, *clip[4]), mask)
        for clip in (small, large)
    ]
    assert residuals[0] < residuals[1]


def tracker_patch(tracker: LivenessTracker, frame: np.ndarray, found: Face) -> np.ndarray:
    return face_patch(frame, found.landmarks, tracker.template)


def test_no_verdict_before_min_frames_then_one() -> None:
    params = LivenessParams(min_frames=10, baseline=4)
    tracker = LivenessTracker(params)
    clip = flat_clip(10)
    for frame, found in clip[:9]:
        tracker.add(1, frame, found)
        assert tracker.verdict(1) is None
    tracker.add(1, *clip[9])
    verdict = tracker.verdict(1)
    assert verdict is not None and verdict.frames == 10 and verdict.live is (verdict.score >= params.threshold)


def test_memory_per_track_is_bounded() -> None:
    params = LivenessParams(min_frames=6, baseline=3, max_pairs=5)
    tracker = LivenessTracker(params)
    frame, found = flat_clip(1)[0]
    for _ in range(40):
        tracker.add(1, frame, found)
    state = tracker._tracks[1]  # the private state is what is bounded
    assert len(state.patches) == 3 and len(state.residuals) == 5
    assert tracker.verdict(1).frames == 40


def test_tracks_are_kept_apart_ended_and_capped() -> None:
    tracker = LivenessTracker(LivenessParams(min_frames=6, baseline=2, max_tracks=3))
    frame, found = flat_clip(1)[0]
    for track_id in (1, 2, 3):
        tracker.add(track_id, frame, found)
    tracker.add(1, frame, found)  # track 1 is now the most recently fed
    tracker.add(4, frame, found)  # a fourth track drops the least recently fed: track 2
    assert tracker.tracks == 3
    for _ in range(6):
        tracker.add(1, frame, found)
    assert tracker.verdict(1) is not None and tracker.verdict(2) is None
    tracker.end(1)
    assert tracker.verdict(1) is None and tracker.tracks == 2


def test_faces_too_small_are_skipped() -> None:
    tracker = LivenessTracker(LivenessParams(min_frames=6, baseline=2, min_eye_px=100))
    for frame, found in flat_clip(8):
        tracker.add(1, frame, found)
    assert tracker.verdict(1) is None and tracker.tracks == 0


@pytest.mark.parametrize(
    "fields", [{"baseline": 0}, {"min_frames": 4, "baseline": 4}, {"max_pairs": 0}, {"patch_px": 16}, {"max_tracks": 0}]
)
def test_params_out_of_range_are_refused(fields: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        LivenessParams(**fields)
