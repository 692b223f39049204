"""Tests of the paced MJPEG stream: frame numbers survive JPEG, OpenCV reads the stream, limits end it."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from evaluation.paced_stream import PacedStream, draw_frame, read_sequence


@pytest.mark.parametrize("sequence", [0, 1, 2, 255, 4097, 65535])
def test_frame_number_survives_jpeg_and_colour_order(sequence: int) -> None:
    texture = np.random.default_rng(1).normal(0, 12, (480, 640)).astype(np.int16)
    _, jpeg = cv2.imencode(".jpg", draw_frame(sequence, (640, 480), texture), [cv2.IMWRITE_JPEG_QUALITY, 60])
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert read_sequence(decoded) == sequence
    assert read_sequence(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)) == sequence


def test_opencv_reads_the_stream_at_its_pace_until_the_connection_limit() -> None:
    with PacedStream(fps=20, size=(160, 120), frames_per_connection=5, connections=1) as stream:
        capture = cv2.VideoCapture(stream.url)
        sequences, times = [], []
        while (read := capture.read())[0]:
            sequences.append(read_sequence(read[1]))
            times.append(time.monotonic())
        capture.release()
        again = cv2.VideoCapture(stream.url)  # answered 503: the stream is gone
        assert not again.isOpened()
    assert len(sequences) == 5 and sequences == list(range(sequences[0], sequences[0] + 5))
    assert times[-1] - times[0] > 2 * 0.05  # paced, not all at once (five frames span four intervals)
    assert all(stream.captured_at(s) <= t for s, t in zip(sequences, times, strict=True))
    assert stream.sent == 5 and stream.skipped == 0 and stream.accepted == 1
