"""Tests of the IoU tracker: stable ids, greedy matching, timeouts."""

from __future__ import annotations

import pytest

from gate.decision.tracking import Tracker
from gate.vision.boxes import iou


def test_iou_same_and_disjoint_boxes_one_and_zero() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_iou_half_overlap_one_third() -> None:
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_tracker_moving_face_keeps_its_id() -> None:
    tracker = Tracker(timeout_s=1.0)
    ids = [tracker.update([(10 + 3 * i, 10, 60 + 3 * i, 60)], now=i * 0.1).track_ids[0] for i in range(10)]
    assert len(set(ids)) == 1


def test_tracker_two_faces_keep_separate_ids_when_order_swaps() -> None:
    tracker = Tracker(timeout_s=1.0)
    left, right = (0, 0, 50, 50), (200, 0, 250, 50)
    first = tracker.update([left, right], now=0.0).track_ids
    second = tracker.update([(202, 0, 252, 50), (2, 0, 52, 50)], now=0.1).track_ids
    assert first[0] != first[1]
    assert second == [first[1], first[0]]


def test_tracker_unseen_past_timeout_ends_and_new_id() -> None:
    tracker = Tracker(timeout_s=1.0)
    first = tracker.update([(0, 0, 50, 50)], now=0.0).track_ids[0]
    still = tracker.update([], now=0.9)
    assert still.ended == []
    later = tracker.update([(0, 0, 50, 50)], now=2.5)
    assert [t.track_id for t in later.ended] == [first]
    assert later.track_ids[0] != first


def test_tracker_seen_within_timeout_keeps_id_after_gap() -> None:
    tracker = Tracker(timeout_s=1.0)
    first = tracker.update([(0, 0, 50, 50)], now=0.0).track_ids[0]
    assert tracker.update([(4, 0, 54, 50)], now=0.8).track_ids == [first]


def test_tracker_far_jump_starts_new_track() -> None:
    tracker = Tracker(timeout_s=1.0)
    first = tracker.update([(0, 0, 50, 50)], now=0.0).track_ids[0]
    update = tracker.update([(300, 300, 350, 350)], now=0.1)
    assert update.track_ids[0] != first
    assert len(tracker.live) == 2


def test_tracker_end_all_returns_live_tracks_and_clears() -> None:
    tracker = Tracker(timeout_s=1.0)
    tracker.update([(0, 0, 50, 50), (100, 0, 150, 50)], now=0.0)
    tracker.update([(0, 0, 50, 50), (100, 0, 150, 50)], now=0.1)
    ended = tracker.end_all()
    assert sorted(t.hits for t in ended) == [2, 2]
    assert tracker.live == []
