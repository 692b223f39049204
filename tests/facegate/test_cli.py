"""The `facegate` console command as a user runs it: one-line errors with exit status 2, and the demo."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegate_process import facegate_command

from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.store.database import Database
from gate.vision.imageio import load_image

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.slow  # each test starts the real `facegate` command in a subprocess (~4 s)


def facegate(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    command = facegate_command(*args)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/gate.db"\n[gallery]\nindex_path = "g.faiss"\n{extra}')
    return path


def test_cli_run_missing_video_file_one_line_exit_2(tmp_path: Path):  # a typo; a camera away is waited for
    done = facegate("--config", str(_config(tmp_path)), "run", "--source", "door-cam.mp4", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: video file not found") and "door-cam.mp4" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_run_serves_every_configured_camera_in_one_process(tmp_path: Path, lfw_root: Path):
    spec = TurnstileSpec(width=320, height=240, fps=10, walk_s=1.5, gap_s=1.0, seed=3)
    for gate, person in (("north", "Colin_Powell"), ("south", "Tony_Blair")):
        photo = load_image(sorted((lfw_root / person).glob("*.jpg"))[0])
        render_turnstile([(person, photo)], tmp_path / f"{gate}.mp4", spec)
    cameras = "".join(f'[[cameras]]\ncamera = {{ gate_id = "{g}", source = "{g}.mp4" }}\n' for g in ("north", "south"))
    config = _config(tmp_path, cameras)
    done = facegate("--config", str(config), "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["north", "south"]
    assert all(line.endswith("1 decisions: 0 granted, 1 denied") for line in lines), lines  # nobody enrolled
    refused = facegate("--config", str(config), "run", "--source", "north.mp4", cwd=tmp_path)
    assert refused.returncode == 2 and "[[cameras]] gives each its source" in refused.stderr


def test_cli_run_a_camera_that_gives_up_exits_3_and_its_gate_reads_lost_not_stopped(tmp_path: Path):
    """Before, a camera given up after max_reconnects ended the run with exit status 0 and a last heartbeat
    "stopped": systemd's Restart=on-failure left the gate down, shown as stopped on purpose."""
    away = "max_reconnects = 1\nreconnect_initial_s = 0.1\n"
    single = _config(tmp_path, f'[camera]\ngate_id = "door"\nsource = "/dev/video99"\n{away}')
    done = facegate("--config", str(single), "run", cwd=tmp_path)
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: a camera gave up (camera.max_reconnects)")
    assert "gate door: its camera gave up" in done.stderr
    render_turnstile([], tmp_path / "north.mp4", TurnstileSpec(width=160, height=120, fps=10, walk_s=1.0, gap_s=0.5))
    cameras = (
        '[[cameras]]\ncamera = { gate_id = "north", source = "north.mp4" }\n'
        '[[cameras]]\ncamera = { gate_id = "back", source = "/dev/video98", max_reconnects = 1, '
        "reconnect_initial_s = 0.1 }\n"
    )
    done = facegate("--config", str(_config(tmp_path, cameras)), "run", cwd=tmp_path)
    assert done.returncode == 3, done.stderr[-2000:]
    database = Database(f"sqlite:///{tmp_path}/gate.db")
    beats = {beat.gate_id: beat for beat in database.gate_statuses()}
    database.close()
    assert beats["door"].state == beats["back"].state == "running"  # no "stopped": stale soon, read as lost
    assert beats["door"].camera == beats["back"].camera == "waiting"  # never came: still away
    assert beats["north"].state == "stopped"  # the recording's gate stopped cleanly


def test_cli_wrong_config_value_names_key_changes_nothing(tmp_path: Path):
    config = _config(tmp_path, '[decision]\nvotes_needed = "three"\n')
    done = facegate("--config", str(config), "enroll", "list", cwd=tmp_path)
    assert done.returncode == 2 and "decision.votes_needed" in done.stderr
    assert not (tmp_path / "gate.db").exists()


def test_cli_database_not_a_database_one_line_file_kept(tmp_path: Path):
    (tmp_path / "gate.db").write_text("these are my notes, not a database")
    done = facegate("--config", str(_config(tmp_path)), "enroll", "list", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "gate.db").read_text() == "these are my notes, not a database"


def test_cli_missing_model_file_one_line(tmp_path: Path):
    config = _config(tmp_path, '[model]\npath = "no-such-model.json"\n')
    done = facegate("--config", str(config), "enroll", "reembed", cwd=tmp_path)
    assert done.returncode == 2 and "model card not found" in done.stderr


def test_cli_demo_small_table_events_and_videos(tmp_path: Path, lfw_root: Path):
    done = facegate(
        "--config", str(_config(tmp_path)), "demo", "--data", str(lfw_root), "--people", "1", "--strangers", "1",
        "--out", str(tmp_path / "demo"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["person", "enrolled", "decision"]
    assert sum(" yes " in line or " no " in line for line in lines[1:3]) == 2
    events = json.loads((tmp_path / "demo" / "events.json").read_text())
    assert events and all(e["decision"] in ("granted", "denied") for e in events)
    for name in ("turnstile.mp4", "annotated.mp4", "table.csv"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    # the demo's faces, embeddings and decisions were once world-readable (0644); now owner-only
    for path in [tmp_path / "demo", *(tmp_path / "demo").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is readable by others"


@pytest.fixture(autouse=True)
def _no_stray_files():
    before = set(REPO.iterdir())
    yield
    assert set(REPO.iterdir()) == before


def test_cli_model_import_of_a_wrong_file_one_line_exit_2_nothing_written(tmp_path: Path):
    wrong = tmp_path / "wrong.dat"
    wrong.write_bytes(b"\x01\x01\x05hello" + bytes(100))
    out = tmp_path / "imported" / "model.json"
    done = facegate("--config", str(_config(tmp_path)), "model", "import", "--source", str(wrong), "--out", str(out),
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "wrong.dat: not dlib's face-recognition ResNet v1" in done.stderr
    assert not out.parent.exists()


def test_cli_model_list_names_the_shipped_models(tmp_path: Path):
    done = facegate("--config", str(_config(tmp_path)), "model", "list", cwd=tmp_path)
    assert done.returncode == 0
    assert "default" in done.stdout and "dlib-resnet-v1" in done.stdout and "mobilefacenet" in done.stdout


NETWORK_MODULES = ("torch", "facenet_pytorch", "torchvision", "alembic")
REPORT_IMPORTS = (
    "import sys; from facegate.cli import main\n"
    "try:\n    main()\nfinally:\n"
    f"    print('loaded:', sorted(m for m in {NETWORK_MODULES!r} if m in sys.modules))"
)


def test_commands_that_embed_nothing_do_not_import_the_network(tmp_path: Path) -> None:
    """Every command once imported torch (6-8 s for `enroll list`); these now load neither the network
    nor Alembic (a database at the newest schema opens without it). benchmarks/startup.py measures the time."""
    from gate.model.card import SHIPPED_CARD, read_card
    from gate.store.database import Database
    from gate.store.schema import Person, Template

    config = _config(tmp_path)
    card = read_card(SHIPPED_CARD)
    database = Database(f"sqlite:///{tmp_path}/gate.db")
    with database.session() as session:
        person = Person(employee_id="E1", name="Ada")
        person.templates.append(
            Template(
                embedding=bytes(4 * card.embedding_size),
                embedding_size=card.embedding_size,
                model_id=card.model_id,
                image_sha256="0" * 64,
                quality=0.99,
                source="ada.jpg",
            )
        )
        session.add(person)
    database.close()
    for args in (
        ["--help"],
        ["enroll", "list"],
        ["enroll", "show", "E1"],
        ["events"],
        ["enroll", "remove", "E1", "-y"],
    ):
        command = [sys.executable, "-c", REPORT_IMPORTS, "--config", str(config), *args]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "loaded: []", (args, done.stdout[-300:])
    assert "removed E1 (Ada): 1 templates" in done.stdout


def test_help_and_the_commands_that_touch_no_database_load_neither_faiss_nor_the_store(tmp_path: Path) -> None:
    """`--help`, shell completion, `card secret` and `keys new` answer in a fraction of a second: importing the
    commands loads no FAISS and no SQLAlchemy (each part's modules are imported where it is built)."""
    light = ("faiss", "sqlalchemy", *NETWORK_MODULES)
    report = REPORT_IMPORTS.replace(repr(NETWORK_MODULES), repr(light))
    for args in (["--help"], ["run", "--help"], ["card", "--help"], ["keys", "--help"]):
        command = [sys.executable, "-c", report, *args]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "loaded: []", (args, done.stdout[-300:])


def test_cli_enroll_refuses_an_id_that_hides_characters_in_one_line_and_stores_nothing(tmp_path: Path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not read: the id is refused first")
    assert facegate("--config", str(_config(tmp_path)), "enroll", "list", cwd=tmp_path).returncode == 0  # a database
    for bad in ("E\u200b001", "../../x", "E\n01"):
        done = facegate("--config", str(_config(tmp_path)), "enroll", "add", bad, "--name", "Ada", str(photo),
                        cwd=tmp_path)  # fmt: skip
        assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: employee id ")
        assert done.stderr.count("error:") == 1 and "refused" in done.stderr
    listed = facegate("--config", str(_config(tmp_path)), "enroll", "list", cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.startswith("nobody is enrolled yet"), listed.stdout


def test_cli_run_refuses_to_start_when_its_journal_cannot_take_a_record(tmp_path: Path):
    """Before, a journal_path below a regular file ran with exit 0 and no warning: the first decision the
    database refused would have been lost. Now the gate proves at start that the journal can take one."""
    (tmp_path / "a-file").write_text("")
    video = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/gate.db"\njournal_path = "{tmp_path}/a-file/events.journal"\n'
        '[gallery]\nindex_path = "g.faiss"\n'
    )
    done = facegate("--config", str(config), "run", "--source", str(video), cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: cannot journal access records at ")
