"""A gate on a nearly full disk (a real small tmpfs): no door opens without a complete record, nothing already
journalled is lost when room returns, and the run's tally says what happened. Real MTCNN, SQLite and journal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from small_disk import small_disk
from test_loop import Doors, gate_settings, open_gate

from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.runtime.loop import GateLoop
from gate.runtime.parts import Runtime
from gate.store.database import Database
from gate.store.event_log import EventLog, Stored
from gate.store.events import AccessEventRecord, DoorReport
from gate.vision.imageio import load_image
from gate.vision.sources import VideoFileSource

SPEC = TurnstileSpec(width=320, height=240, fps=10, walk_s=1.5, gap_s=1.0, seed=4)


def test_a_full_disk_releases_the_reserve_for_a_door_report_then_no_door_may_open(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", size_kb=512) as disk:
        Database(f"sqlite:///{disk.path / 'gate.db'}")  # created while there is room
        read_only = Database(f"sqlite:///file:{disk.path / 'gate.db'}?mode=ro&uri=true")
        log = EventLog(read_only, disk.path / "events.journal")
        log.journal.check_writable()
        disk.fill(leave=0)
        event = AccessEventRecord(datetime.now(UTC), "g", "E1", 0.9, "granted", "GRANTED", event_uid="a" * 32)
        assert log.record(event) is None  # a decision never takes the reserve: it is lost, and said so
        assert log.record(DoorReport("a" * 32, "opened", "granted", "GRANTED"), use_reserve=True) is Stored.JOURNAL
        assert not log.room_for_door_report()  # the reserve is spent and cannot be made again: doors stay shut
        disk.empty()
        assert log.room_for_door_report()


def test_on_a_nearly_full_disk_no_door_opens_without_its_record_and_nothing_journalled_is_lost(
    tmp_path: Path, embedder, pipeline, people
) -> None:
    """Before, a record longer than the room left was written in part and `append` returned: the door opened,
    and the next record joined the fragment, so the replay skipped both. Four walks of an enrolled person, the
    database refusing throughout (so all is journalled): with room, two with the disk full (the journal's last
    page has room for about one record, then a write is cut short at the page's end), with room again."""
    name, photos = people[0]
    video, walks = render_turnstile([(name, load_image(photos[0]))] * 4, tmp_path / "walks.mp4", SPEC)
    with small_disk(tmp_path / "disk", size_kb=1024) as disk:
        settings = gate_settings(disk.path, threshold=-1.0, allow_loose_threshold=True, cooldown_s=0.0)
        index = settings.gallery.model_copy(update={"index_path": str(tmp_path / "gallery.faiss")})
        settings = settings.model_copy(update={"gallery": index})
        database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
        loop = GateLoop(Runtime(settings, embedder, pipeline, database, gallery), doors := Doors())
        loop.events.database = Database(f"sqlite:///file:{disk.path / 'gate.db'}?mode=ro&uri=true")
        loop.events.journal.check_writable()
        for frame in VideoFileSource(video).frames():
            if frame.index == walks[1].first_frame:
                disk.fill(leave=0)
            if frame.index == walks[3].first_frame:
                assert loop.events.journal.path.read_bytes().endswith(b"\n")  # no fragment was left behind
                disk.empty()
            loop.step(frame)
        loop.finish()
        tally = loop.summary(stopped_by_signal=False).tally
        assert tally.kept_shut >= 1 and tally.lost >= 1 and not tally.complete
        assert tally.granted == len(doors.opened) == 4 - tally.kept_shut
        loop.events.database = database
        assert loop.events.replay() == tally.granted and not loop.events.journal.damaged_path.exists()
    events = database.events(limit=100)
    assert [(e.decision, e.reason, e.door) for e in events] == [("granted", "GRANTED", "opened")] * tally.granted
