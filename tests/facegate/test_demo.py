"""The demo's walk-up run (evaluation.walkups' pick_folder_walkers and walk_past_gate) and its table, without the
face datasets: who walks is drawn from a folder, the runtime is closed however the gate's run ends, and the table
is laid out as the README shows it. `tests/facegate/test_cli.py` runs the whole demo on real faces."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.walkups import MAX_ENROL_PHOTOS, Walker, pick_folder_walkers, walk_past_gate, walkup_spec
from facegate.demo import DemoRow, table_text
from gate.config import Settings
from gate.errors import FaceGateError
from gate.model.embedder import Embedder


def _folder(root: Path, photos_per_person: dict[str, int]) -> Path:
    """A <person>/<images> folder of small noise images (nothing here detects faces)."""
    rng = np.random.default_rng(0)
    for person, count in photos_per_person.items():
        (root / person).mkdir(parents=True)
        for index in range(count):
            cv2.imwrite(str(root / person / f"{person}_{index + 1:04d}.png"), rng.integers(0, 255, (96, 80, 3)))
    return root


PEOPLE = {"ann": 3, "bob": 6, "cy": 2, "dee": 4, "eve": 1, "fay": 3, "gus": 5}  # cy and eve: too few photos


def test_pick_folder_walkers_is_seeded_and_never_enrols_the_walking_photo(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "faces", PEOPLE)
    walkers = pick_folder_walkers(folder, employees=3, strangers=2, seed=4)
    assert walkers == pick_folder_walkers(folder, employees=3, strangers=2, seed=4)
    assert sorted(w.role for w in walkers) == ["employee"] * 3 + ["stranger"] * 2
    assert {w.person for w in walkers} <= {"ann", "bob", "dee", "fay", "gus"}  # 3+ photos each
    for walker in walkers:
        photos = sorted((folder / walker.person).iterdir())
        assert walker.walk_photo == photos[0] and walker.walk_photo not in walker.enrol_photos
        expected = tuple(photos[1 : 1 + MAX_ENROL_PHOTOS]) if walker.role == "employee" else ()
        assert walker.enrol_photos == expected
    draws = {tuple((w.person, w.role) for w in pick_folder_walkers(folder, 3, 2, seed=s)) for s in range(6)}
    assert len(draws) > 1  # the seed decides who walks, in which order


@pytest.mark.parametrize(
    ("employees", "strangers", "message"),
    [(6, 0, "5 people with 3+ photos, 6 asked"), (0, 0, "someone to walk"), (-1, 2, "someone to walk")],
)
def test_pick_folder_walkers_refuses_in_one_line(tmp_path: Path, employees: int, strangers: int, message: str) -> None:
    folder = _folder(tmp_path / "faces", PEOPLE)
    with pytest.raises(FaceGateError, match=re.escape(message)) as error:
        pick_folder_walkers(folder, employees, strangers)
    assert "\n" not in str(error.value)


def test_pick_folder_walkers_names_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match="photo folder not found: .*nowhere"):
        pick_folder_walkers(tmp_path / "nowhere", 1, 1)


def _open_files_under(folder: Path) -> list[str]:
    targets = (os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd"))
    return [target for target in targets if target.startswith(str(folder.resolve()))]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the open files")
def test_walk_past_gate_closes_the_database_when_the_gate_fails(tmp_path: Path, untrained_card: Path) -> None:
    photos = _folder(tmp_path / "faces", {"ann": 1, "bob": 1})
    walkers = [Walker(name, "stranger", photos / name / f"{name}_0001.png") for name in ("ann", "bob")]
    settings, out = Settings(), tmp_path / "out"
    spec = walkup_spec(settings, fps=4, walk_s=0.5, seed=0)
    seen: list[list[str]] = []

    def failing_gate(runtime, video: Path, walks) -> None:
        runtime.database.events(limit=1)  # the database is open while the gate runs
        seen.append(_open_files_under(out))
        raise RuntimeError("the camera fell off")

    with pytest.raises(RuntimeError, match="camera fell off"):
        walk_past_gate(settings, Embedder(untrained_card), walkers, out, spec, failing_gate)
    assert any(path.endswith("gate.db") for path in seen[0])
    assert _open_files_under(out) == []

    walked = walk_past_gate(settings, Embedder(untrained_card), walkers, out, spec, lambda r, v, w: len(w))
    assert walked.watched == 2 and [w.person for w in walked.walks] == ["ann", "bob"] and walked.enrolled == {}
    assert walked.video == out / "turnstile.mp4" and walked.video.stat().st_size > 0
    assert _open_files_under(out) == []


def test_demo_table_is_laid_out_as_the_readme_shows() -> None:
    rows = [
        DemoRow("Mian_Khursheed_Mehmood_Kasuri", "no", "denied", "BELOW_THRESHOLD", 11, 0.8861, ""),
        DemoRow("Amanda_Bynes", "yes", "granted", "GRANTED", 10, 0.95449, "Amanda Bynes"),
        DemoRow("Nobody", "refused: no usable face in any photo", "none", "NO_USABLE_FACE", None, None, ""),
    ]
    assert table_text(rows).splitlines() == [
        "person                         enrolled                              decision  reason           frames  "
        "score  door opened for",
        "Mian_Khursheed_Mehmood_Kasuri  no                                    denied    BELOW_THRESHOLD  11      "
        "0.886  -",
        "Amanda_Bynes                   yes                                   granted   GRANTED          10      "
        "0.954  Amanda Bynes",
        "Nobody                         refused: no usable face in any photo  none      NO_USABLE_FACE   -       "
        "-      -",
    ]
