"""The gate's snapshot for the admin page: off by default, when it takes (and encodes) nothing; on, one JPEG row per
gate, the latest annotated frame scaled to max_side, overwritten every every_s, sealed at rest with a key, deleted
on a clean stop and at start; a database that refuses it is skipped. The real loop's snapshot is its frame with
the boxes and labels the loop drew."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import text

from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.config import SnapshotSettings, settings_from_dict
from gate.door.actuators import LogActuator
from gate.matching.gallery import Gallery
from gate.model.embedder import Embedder
from gate.runtime.annotate import GREEN, RED, Overlay
from gate.runtime.loop import GateLoop
from gate.runtime.parts import Runtime
from gate.runtime.run import run_gate
from gate.runtime.snapshot import SnapshotTaker, snapshot_jpeg
from gate.store.database import Database
from gate.store.encryption import PREFIX, Cipher
from gate.store.snapshots import Snapshot
from gate.vision.faces import FacePipeline
from gate.vision.imageio import load_image
from gate.vision.sources import VideoFileSource

ON = SnapshotSettings(enabled=True, every_s=5.0, max_side=320, quality=80)
SPEC = TurnstileSpec(width=320, height=240, fps=10, walk_s=1.5, gap_s=0.5, seed=3)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(width: int = 1280, height: int = 960, value: int = 90) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def decode(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_a_snapshot_is_the_frame_scaled_to_max_side_with_its_boxes_drawn_where_the_faces_are() -> None:
    overlays = [Overlay((400.0, 200.0, 800.0, 700.0), "Ada 0.93", GREEN)]
    image = decode(snapshot_jpeg(frame(), overlays, max_side=320, quality=90))
    assert image.shape == (240, 320, 3)  # 1280 x 960 scaled by 1/4
    edge = image[50 + 20 : 175 - 20, 99:102].astype(int)  # the box's left side, at x = 400 / 4: green
    assert (edge[..., 1] - np.maximum(edge[..., 0], edge[..., 2]) > 100).all() and GREEN[1] > 100
    assert np.abs(image[120, 160].astype(int) - 90).max() < 8  # inside the box: the frame itself
    small = decode(snapshot_jpeg(frame(200, 100), [], max_side=320, quality=90))
    assert small.shape == (100, 200, 3)  # never scaled up


def test_off_takes_and_encodes_nothing(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    taker = SnapshotTaker(database, "front", SnapshotSettings(), Clock())
    assert SnapshotSettings().enabled is False  # off unless a site turns it on
    big, overlays = frame(3840, 2160), [Overlay((10.0, 10.0, 90.0, 90.0), "x", RED)]
    started = time.perf_counter()
    for _ in range(2000):
        taker.offer(big, overlays)
    elapsed = time.perf_counter() - started
    assert taker.written == 0 and database.snapshot_times() == {}
    assert elapsed < 0.5, f"2000 frames offered took {elapsed:.2f} s with snapshots off: something was encoded"


def test_on_one_row_per_gate_overwritten_every_every_s_and_encoded_only_then(tmp_path: Path) -> None:
    database, clock = Database(f"sqlite:///{tmp_path / 'gate.db'}"), Clock()
    front, back = SnapshotTaker(database, "front", ON, clock), SnapshotTaker(database, "back", ON, clock)
    front.offer(frame(value=40), [])
    back.offer(frame(value=200), [])
    first = database.snapshot("front")
    assert first is not None and abs(int(decode(first.jpeg).mean()) - 40) < 3
    big = frame(3840, 2160, value=120)
    started = time.perf_counter()
    for _ in range(2000):  # within every_s: not taken, not encoded
        front.offer(big, [])
    assert time.perf_counter() - started < 0.5 and front.written == 1
    clock.now += ON.every_s
    front.offer(frame(value=120), [])
    latest = database.snapshot("front")
    assert latest is not None and abs(int(decode(latest.jpeg).mean()) - 120) < 3 and latest.taken_at >= first.taken_at
    assert front.written == 2 and set(database.snapshot_times()) == {"front", "back"}
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT gate_id FROM gate_snapshots ORDER BY gate_id")).scalars().all() == [
            "back",
            "front",
        ]  # one row per gate: the newest replaced the first
    front.forget()
    assert database.snapshot("front") is None and set(database.snapshot_times()) == {"back"}


def test_with_a_key_the_snapshot_is_sealed_at_rest(tmp_path: Path) -> None:
    cipher = Cipher(os.urandom(32), "encryption.key_file test.key")
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}", cipher=cipher)
    SnapshotTaker(database, "front", ON, Clock()).offer(frame(), [])
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT image FROM gate_snapshots")).scalar_one()
    assert stored.startswith(PREFIX) and b"\xff\xd8" not in stored[: len(PREFIX) + 16]  # no JPEG header at rest
    found = database.snapshot("front")
    assert found is not None and found.jpeg.startswith(b"\xff\xd8\xff")


def test_a_snapshot_sealed_with_another_key_is_replaced_unread(tmp_path: Path) -> None:
    """After a key change the gate's next snapshot replaces the old one (a write that read it first would fail)."""
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    Database(url, cipher=Cipher(os.urandom(32), "the old key")).put_snapshot(
        Snapshot("front", datetime.now(UTC), b"\xff\xd8old")
    )
    database = Database(url, cipher=Cipher(os.urandom(32), "encryption.key_file new.key"))
    taker = SnapshotTaker(database, "front", ON, Clock())
    taker.offer(frame(value=120), [])
    assert taker.written == 1
    found = database.snapshot("front")
    assert found is not None and abs(int(decode(found.jpeg).mean()) - 120) < 3


@pytest.mark.slow  # a PostgreSQL server
def test_several_gates_keep_one_sealed_row_each_on_postgresql(postgres_url: str) -> None:
    cipher = Cipher(os.urandom(32), "encryption.key_file test.key")
    database, clock = Database(postgres_url, cipher=cipher), Clock()
    takers = [SnapshotTaker(Database(postgres_url, cipher=cipher), gate, ON, clock) for gate in ("north", "south")]
    for value in (40, 200):
        for taker in takers:
            taker.offer(frame(value=value), [])
        clock.now += ON.every_s
    assert set(database.snapshot_times()) == {"north", "south"}
    for gate in ("north", "south"):
        found = database.snapshot(gate)
        assert found is not None and abs(int(decode(found.jpeg).mean()) - 200) < 3  # the newest replaced the first
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT image FROM gate_snapshots")).scalars().all()
    assert len(stored) == 2 and all(bytes(blob).startswith(PREFIX) for blob in stored)
    takers[0].forget()
    assert set(database.snapshot_times()) == {"south"}


def test_a_database_that_refuses_the_snapshot_does_not_stop_the_gate(tmp_path: Path) -> None:
    Database(f"sqlite:///{tmp_path / 'gate.db'}").put_snapshot(Snapshot("front", datetime.now(UTC), b"\xff\xd8old"))
    read_only = Database(f"sqlite:///file:{tmp_path / 'gate.db'}?mode=ro&uri=true")
    taker = SnapshotTaker(read_only, "front", ON, Clock())
    taker.offer(frame(), [])
    taker.forget()
    assert taker.written == 0 and read_only.snapshot("front") is not None


def test_the_loop_snapshots_its_annotated_frame_and_a_clean_stop_deletes_it(
    tmp_path: Path, embedder: Embedder, pipeline: FacePipeline, people: list[tuple[str, list[Path]]]
) -> None:
    """Frame by frame through the real loop (snapshots by the video's clock, every second of it): each snapshot
    is that frame with the loop's own overlays; then a run with a leftover snapshot deletes it at start and its
    own at the clean stop."""
    name, photos = people[0]
    video, _ = render_turnstile([(name, load_image(photos[0]))], tmp_path / "walk.mp4", SPEC)
    settings = settings_from_dict(
        {
            "camera": {"gate_id": "test-door"},
            "database": {"url": f"sqlite:///{tmp_path / 'gate.db'}", "journal_path": str(tmp_path / "events.journal")},
            "gallery": {"index_path": str(tmp_path / "gallery.faiss")},
            "snapshot": {"enabled": True, "every_s": 1.0, "max_side": 160},
        }
    )
    database = Database(settings.database_url)
    size = embedder.card.embedding_size
    gallery = Gallery.open(database, settings.gallery, tmp_path / "g.faiss", embedder.model_id, size, embedder.scorer)
    runtime = Runtime(settings, embedder, pipeline, database, gallery)
    loop, clock = GateLoop(runtime, LogActuator()), Clock()
    loop.snapshots = SnapshotTaker(database, "test-door", settings.snapshot, clock)  # by video time
    annotated = 0
    for each in VideoFileSource(video).frames():
        clock.now = each.time
        written = loop.snapshots.written
        loop.step(each)
        if loop.snapshots.written > written:
            stored = database.snapshot("test-door")
            assert stored is not None and stored.jpeg == snapshot_jpeg(each.image, loop.overlays, 160, 80)
            annotated += bool(loop.overlays)
    assert loop.snapshots.written == int(each.time) + 1 and annotated >= 1  # one a second of video
    assert database.snapshot("test-door") is not None
    empty = tmp_path / "empty.mp4"  # no face: what is tested is the start and the stop
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter.fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    summary = run_gate(runtime, VideoFileSource(empty), LogActuator())  # a leftover at start, its own: none after
    assert summary.frames == 3 and database.snapshot("test-door") is None
    [status] = database.gate_statuses()
    assert (status.state, status.camera) == ("stopped", "ended")
