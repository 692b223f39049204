"""A track's embedding: each frame's own, or the quality-weighted mean of the track's usable frames so far."""

from __future__ import annotations

import numpy as np
import pytest

from gate.decision.aggregation import TrackEmbeddings, frame_weight
from gate.vision.alignment import ARCFACE_112
from gate.vision.detection import Face


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, np.float32)
    return vector / np.linalg.norm(vector)


def _face(eye_distance: float, prob: float = 1.0) -> Face:
    landmarks = np.array([[0, 0], [eye_distance, 0], [0, 1], [0, 2], [1, 2]], np.float32)
    return Face(box=(0.0, 0.0, 10.0, 10.0), prob=prob, landmarks=landmarks)


def test_frame_mode_matches_each_frame_as_it_is():
    tracks = TrackEmbeddings("frame")
    first, second = _unit(1, 0), _unit(0, 1)
    assert np.array_equal(tracks.query(1, first, 1.0), first)
    assert np.array_equal(tracks.query(1, second, 1.0), second)


def test_mean_mode_is_the_weighted_mean_of_the_tracks_frames_and_ends_with_it():
    tracks = TrackEmbeddings("mean")
    tracks.query(1, _unit(1, 0), 3.0)
    tracks.query(2, _unit(-1, 0), 1.0)  # another track does not mix in
    mean = tracks.query(1, _unit(0, 1), 1.0)
    assert np.allclose(mean, _unit(3, 1)) and np.isclose(np.linalg.norm(mean), 1.0)
    tracks.end(1)
    assert np.allclose(tracks.query(1, _unit(0, 1), 1.0), _unit(0, 1))  # a new track with the same id starts afresh


def test_frame_weight_grows_with_face_size_up_to_the_crops_resolution_and_with_certainty():
    full = ARCFACE_112.eye_distance
    assert frame_weight(_face(full / 2), ARCFACE_112) == pytest.approx(0.5, abs=1e-3)
    assert frame_weight(_face(full * 3), ARCFACE_112) == 1.0
    assert frame_weight(_face(full, prob=0.9), ARCFACE_112) == pytest.approx(0.9, abs=1e-3)


def test_unknown_mode_refused():
    with pytest.raises(ValueError, match="frame"):
        TrackEmbeddings("median")
