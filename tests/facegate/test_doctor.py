"""`facegate doctor` on a real site: every check ok, then each thing a site gets wrong, for real (a read-only or
unreachable database, a wrong or exposed key, a tampered model copy, a camera that is not there or never answers,
a port another program holds, a clock behind), each giving its FAIL line and exit status 1."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegate_process import facegate_command, free_port
from typer.testing import CliRunner

from evaluation.turnstile import TurnstileSpec, render_turnstile
from facegate.cli import app
from gate.model.card import SHIPPED_MODELS
from gate.runtime.doctor import check_clock
from gate.store.database import Database
from gate.store.encryption import parse_key, write_key_file
from gate.store.schema import Person, Template
from gate.vision.imageio import load_image

CHECKS = ["config", "model", "database", "journal", "key", "camera", "port", "clock"]


def write_clip(path: Path, frames: int = 3) -> Path:
    """A short video of an empty room (a gradient): a camera that works, with nobody in front of it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (160, 120))
    ramp = np.linspace(40, 200, 160, dtype=np.uint8)
    for _ in range(frames):
        writer.write(np.dstack([np.tile(ramp, (120, 1))] * 3))
    writer.release()
    return path


def seal_one_person(url: str, key_file: Path) -> None:
    """A person enrolled with the site's key: their template's embedding and crop are sealed in the database."""
    database = Database(url, cipher=parse_key(key_file.read_text(), str(key_file)))
    with database.session() as session:
        person = Person(employee_id="E1", name="Ada")
        person.templates.append(
            Template(embedding=np.ones(128, np.float32).tobytes(), embedding_size=128, model_id="m",
                     image_sha256="0" * 64, quality=0.99, source="ada.jpg", crop=b"RIFF" + bytes(200))
        )  # fmt: skip
        session.add(person)
    database.close()


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site's files, made once: a camera (a video file), a key, a database with one person sealed with it."""
    folder = tmp_path_factory.mktemp("site")
    write_clip(folder / "door.mp4")
    write_key_file(folder / "site.key")
    seal_one_person(f"sqlite:///{folder}/data/gate.db", folder / "site.key")
    return folder


@pytest.fixture
def site(built_site: Path, tmp_path: Path) -> Path:
    """A site as `facegate init` leaves it plus one enrolled person, in tmp_path; its config."""
    shutil.copytree(built_site, tmp_path, dirs_exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[camera]\nsource = "{tmp_path}/door.mp4"\n[database]\nurl = "sqlite:///{tmp_path}/data/gate.db"\n'
        f'journal_path = "data/events.journal"\n[gallery]\nindex_path = "data/gallery.faiss"\n'
        f'[encryption]\nkey_file = "site.key"\n[service]\nport = {free_port()}\n',
        encoding="utf-8",
    )
    return config


def doctor(config: Path, camera_timeout: float = 5) -> tuple[int, dict[str, list[str]]]:
    """Exit status, and each check's lines (by check name) of `facegate --config CONFIG doctor`."""
    outcome = CliRunner().invoke(app, ["--config", str(config), "doctor", "--camera-timeout", str(camera_timeout)])
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise outcome.exception
    lines: dict[str, list[str]] = {}
    for line in outcome.output.splitlines():
        lines.setdefault(line[6:16].strip(), []).append(line)
    return outcome.exit_code, lines


def only_failure(lines: dict[str, list[str]], check: str) -> str:
    """The one FAIL line, of `check`; every other check's lines ok."""
    failed = [line for found in lines.values() for line in found if not line.startswith("ok ")]
    assert len(failed) == 1 and failed[0].startswith(f"FAIL  {check:<10}"), failed
    return failed[0]


def replace_in(config: Path, old: str, new: str) -> None:
    config.write_text(config.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_doctor_every_check_ok_on_a_working_site(site: Path) -> None:
    code, lines = doctor(site)
    assert code == 0, "\n".join(line for found in lines.values() for line in found)
    assert list(lines) == CHECKS and all(line.startswith("ok ") for found in lines.values() for line in found)
    assert f"{site.resolve()} valid (1 camera)" in lines["config"][0]
    assert "reachable and writable (schema at head" in lines["database"][0]
    assert "opens the stored template embedding, template crop" in lines["key"][0]
    assert "a 160x120 frame in" in lines["camera"][0] and "no face in it" in lines["camera"][0]
    assert "(facegate serve) free" in lines["port"][0]


@pytest.fixture
def read_only_database(tmp_path: Path) -> Iterator[Path]:
    """The site's database file made read-only for whoever runs the tests: immutable (chattr +i) as root, whom
    file modes do not stop; mode 0444 otherwise."""
    path = tmp_path / "data" / "gate.db"
    as_root = os.geteuid() == 0
    if as_root and shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a file read-only for root")
    if as_root:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)
    yield path
    if as_root:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_doctor_read_only_database_fails(site: Path, read_only_database: Path) -> None:
    code, lines = doctor(site)
    assert code == 1
    assert "cannot record access events" in only_failure(lines, "database")
    assert "readonly database" in lines["database"][0]


@pytest.mark.parametrize(
    ("url", "why"),
    [("postgresql+psycopg://gate@127.0.0.1:{port}/x", "Connection refused"), ("data/gate.db", "not a SQLAlchemy URL")],
    ids=["unreachable", "not-a-url"],
)
def test_doctor_bad_database_url_fails_and_the_key_is_not_proven(
    site: Path, tmp_path: Path, url: str, why: str
) -> None:
    replace_in(site, f'url = "sqlite:///{tmp_path}/data/gate.db"', f'url = "{url.format(port=free_port())}"')
    code, lines = doctor(site)
    assert code == 1
    assert lines["database"][0].startswith("FAIL") and why in lines["database"][0]
    assert lines["key"][0].startswith("warn") and "not proven" in lines["key"][0]


def test_doctor_wrong_key_fails(site: Path, tmp_path: Path) -> None:
    write_key_file(tmp_path / "other.key")
    replace_in(site, 'key_file = "site.key"', 'key_file = "other.key"')
    code, lines = doctor(site)
    assert code == 1
    failed = only_failure(lines, "key")
    assert "other.key is not the key of this database" in failed and "encrypted with another key" in failed


def test_doctor_key_readable_by_others_fails_and_is_left_as_found(site: Path, tmp_path: Path) -> None:
    os.chmod(tmp_path / "site.key", 0o644)
    code, lines = doctor(site)
    assert code == 1
    assert "can be read by other users (mode 644): chmod 600" in only_failure(lines, "key")
    assert stat.S_IMODE((tmp_path / "site.key").stat().st_mode) == 0o644  # reported, not changed


def test_doctor_database_wider_than_owner_only_is_narrowed_as_a_gate_start_does(site: Path, tmp_path: Path) -> None:
    database = tmp_path / "data" / "gate.db"
    os.chmod(database, 0o644)
    code, lines = doctor(site)
    assert code == 0, lines
    assert stat.S_IMODE(database.stat().st_mode) == 0o600  # what the docstring and operations.md say it does


def test_doctor_tampered_model_copy_fails(site: Path, tmp_path: Path) -> None:
    for name in ("mobilefacenet.json", "mobilefacenet.pt"):
        shutil.copy(SHIPPED_MODELS / name, tmp_path / name)
    weights = bytearray((tmp_path / "mobilefacenet.pt").read_bytes())
    weights[-100] ^= 0xFF  # one byte of the weights changed
    (tmp_path / "mobilefacenet.pt").write_bytes(bytes(weights))
    with site.open("a", encoding="utf-8") as file:
        file.write('[model]\npath = "mobilefacenet.json"\n')
    code, lines = doctor(site)
    assert code == 1
    assert "checksum does not match its model card" in only_failure(lines, "model")


def test_doctor_camera_not_there_fails_each_camera_on_its_own_line(site: Path, tmp_path: Path) -> None:
    with site.open("a", encoding="utf-8") as file:
        file.write(f'[[cameras]]\ncamera = {{ gate_id = "front", source = "{tmp_path}/door.mp4" }}\n')
        file.write(f'[[cameras]]\ncamera = {{ gate_id = "back", source = "{tmp_path}/back-door.mp4" }}\n')
    code, lines = doctor(site)
    assert code == 1
    assert lines["camera"][0].startswith(f"ok    camera    front: {tmp_path}/door.mp4: a 160x120 frame")
    assert f"back: video file not found: {tmp_path}/back-door.mp4" in only_failure(lines, "camera")


def test_doctor_relative_video_file_is_found_in_the_configs_folder_as_run_finds_it(site: Path, tmp_path: Path) -> None:
    replace_in(site, f'source = "{tmp_path}/door.mp4"', 'source = "door.mp4"')
    assert Path.cwd() != tmp_path  # doctor runs from elsewhere, as a deployment script would
    code, lines = doctor(site)
    assert code == 0, lines
    assert lines["camera"][0].startswith(f"ok    camera    front-door: {tmp_path}/door.mp4: a 160x120 frame")


@pytest.fixture
def silent_stream() -> Iterator[str]:
    """An HTTP camera URL whose server accepts the connection and never answers (a camera that hangs)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"http://127.0.0.1:{server.getsockname()[1]}/video.mjpg"


def test_doctor_camera_that_never_answers_fails_within_the_timeout_its_password_hidden(
    site: Path, tmp_path: Path, silent_stream: str
) -> None:
    with_password = silent_stream.replace("http://", "http://admin:s3cret@") + "?token=t0ken"
    replace_in(site, f'source = "{tmp_path}/door.mp4"', f'source = "{with_password}"')
    started = datetime.now(UTC)
    code, lines = doctor(site, camera_timeout=1)
    assert code == 1
    failure = only_failure(lines, "camera")
    assert "no frame within 1 s" in failure and "http://admin:***@127.0.0.1:" in failure and "token=***" in failure
    assert not any("s3cret" in line or "t0ken" in line for found in lines.values() for line in found)
    assert datetime.now(UTC) - started < timedelta(seconds=20)  # OpenCV alone would wait 30 s for the stream


@pytest.mark.parametrize("server", ["facegate serve", "badge claims of front-door"])
def test_doctor_port_held_by_another_program_fails(site: Path, server: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        if server == "facegate serve":
            replace_in(site, "[service]\nport = ", f"[service]\nport = {port}\n# was: ")
        else:  # a gate taking signed badge claims over http listens on [card] listen
            with site.open("a", encoding="utf-8") as file:
                file.write(f'[card]\nclaims = "http"\nlisten = "127.0.0.1:{port}"\n')
                file.write('[[card.readers]]\nid = "lobby"\nsecret_env = "FACEGATE_TEST_READER"\n')
        code, lines = doctor(site)
    assert code == 1
    assert f"127.0.0.1:{port} ({server}) is in use by another program" in only_failure(lines, "port")


def test_clock_before_the_install_or_behind_the_newest_record_fails() -> None:
    installed = datetime(2026, 6, 1, tzinfo=UTC)
    assert check_clock(datetime(1970, 1, 1, tzinfo=UTC), installed, None).failed  # a board that lost its time
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    behind = check_clock(now, installed, now + timedelta(hours=2))  # another gate stamped records 2 h later
    assert behind.failed and "120 min behind the newest record" in behind.detail
    assert not check_clock(now, installed, now + timedelta(minutes=1)).failed  # within the slack
    assert check_clock(now, installed, None).status == "ok"


@pytest.mark.slow
def test_doctor_command_on_a_site_whose_camera_sees_a_face(site: Path, tmp_path: Path, lfw_root: Path) -> None:
    """The real command, a turnstile clip of a real face: the camera line tells the eye distance the gate gets."""
    photo = load_image(sorted((lfw_root / "Colin_Powell").glob("*.jpg"))[0])
    spec = TurnstileSpec(width=960, height=720, fps=5, walk_s=1.0, gap_s=0.0, seed=3)  # a face in the first frame
    render_turnstile([("Colin_Powell", photo)], tmp_path / "walk.mp4", spec)
    replace_in(site, f'source = "{tmp_path}/door.mp4"', 'source = "walk.mp4"')  # the command runs in tmp_path
    done = subprocess.run(
        facegate_command("--config", site, "doctor"), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (camera,) = [line for line in done.stdout.splitlines() if line.startswith("ok    camera")]
    assert "walk.mp4: a 960x720 frame" in camera and "px between the eyes; the gate needs 18" in camera
    eyes = int(camera.split("a face ")[1].split(" px")[0])
    assert 18 <= eyes <= 60, camera


def test_doctor_without_a_config_fails_naming_init_and_makes_no_data(no_config_anywhere: Path) -> None:
    outcome = CliRunner().invoke(app, ["doctor", "--camera-timeout", "1"])
    lines = outcome.output.splitlines()
    assert outcome.exit_code == 1
    assert lines[0].startswith("FAIL  config    no config file found") and "facegate init DIR" in lines[0]
    assert not any(line[6:16].strip() in ("database", "journal", "key") for line in lines)
    assert list(no_config_anywhere.iterdir()) == []  # no ./data made where it was started
