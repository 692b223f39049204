"""`facegate run` on a disk that fills up while it runs (a real small tmpfs): the door opens only with its record,
what the door did goes into the journal's reserve, the next grant finds no room for its record and keeps the door
shut, the run exits 1 and says why, and every record written reaches the database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from facegate_process import facegate_command
from small_disk import FILL_SCRIPT, small_disk

from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.store.database import Database
from gate.vision.imageio import load_image

pytestmark = pytest.mark.slow  # the real command in subprocesses, the shipped network

SPEC = TurnstileSpec(width=320, height=240, fps=10, walk_s=1.5, gap_s=1.0, seed=5)


def facegate(config: Path, *args: str) -> subprocess.CompletedProcess:
    command = facegate_command("--config", config, *args)
    return subprocess.run(command, cwd=config.parent, capture_output=True, text=True, timeout=300)


def write_config(folder: Path, name: str, disk: Path, actuator: str) -> Path:
    config = folder / f"{name}.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{disk}/gate.db"\njournal_path = "{disk}/events.journal"\n'
        f'[gallery]\nindex_path = "{folder}/gallery.faiss"\n[decision]\ncooldown_s = 0.0\n{actuator}\n'
    )
    return config


def test_a_run_whose_disk_fills_keeps_the_next_door_shut_exits_1_and_loses_nothing(tmp_path: Path, lfw_root):
    photos = sorted((lfw_root / "Colin_Powell").glob("*.jpg"))
    video, _ = render_turnstile([("Colin_Powell", load_image(photos[0]))] * 2, tmp_path / "walks.mp4", SPEC)
    (tmp_path / "fill.py").write_text(FILL_SCRIPT)
    doors = tmp_path / "doors.txt"
    with small_disk(tmp_path / "disk", size_kb=2048) as disk:
        # the door's relay: note the opening, then use up the disk (the filler is the only file outside the gate's)
        fill = f"echo {{person_id}} >> {doors}; {sys.executable} {tmp_path / 'fill.py'} {disk.filler}"
        filling = write_config(
            tmp_path, "filling", disk.path, f'[actuator]\nkind = "shell"\ncommand = ["sh", "-c", "{fill}"]'
        )
        assert facegate(filling, "enroll", "add", "E001", "--name", "Colin Powell", str(photos[1])).returncode == 0
        done = facegate(filling, "run", "--source", str(video))
        assert done.returncode == 1, done.stderr[-3000:]
        assert done.stdout.strip().endswith(
            "2 decisions: 1 granted, 0 denied, 1 kept shut for want of a record, 1 records LOST"
        ), done.stdout
        assert "the journal's reserve released" in done.stderr  # for the first door's report
        assert "kept shut for E001: the decision could not be recorded" in done.stderr
        assert "not every decision was recorded" in done.stderr.splitlines()[-1]
        assert doors.read_text().split() == ["E001"]  # the second grant did not open the door
        disk.empty()
        logging_door = write_config(tmp_path, "logging", disk.path, '[actuator]\nkind = "log"')
        again = facegate(logging_door, "run", "--source", str(video))  # room again: a run as any other
        assert again.returncode == 0 and again.stdout.strip().endswith("2 decisions: 2 granted, 0 denied")
        events = Database(f"sqlite:///{disk.path}/gate.db").events(limit=10)
    # every door opened has its complete record; the grant that could not be recorded opened nothing
    assert [(e.decision, e.reason, e.door) for e in events] == [("granted", "GRANTED", "opened")] * 3
