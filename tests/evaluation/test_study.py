"""The two-stage versus end-to-end study: its metrics and thresholds on hand-computed cases, the held-out guard,
the LFW people choice and its unseen rule, the photo split, the crop-template check, and tiny runs of the whole
command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluation.results import StudyRow
from evaluation.study import (
    StudyConfig,
    StudyPaths,
    choose_lfw_people,
    choose_people,
    samples_for,
    split_employee_photos,
    study_crops,
    unseen_datasets,
)
from evaluation.study_metrics import catch_up, decide, gallery_scores, system_metrics, threshold_at_far, walk_scores
from facegate.cli import app
from gate.errors import FaceGateError
from gate.model.card import SHIPPED_CARD, read_card
from gate.vision.alignment import ARCFACE_112, CropTemplate
from training.crops import build_crops
from training.recipes import build_config

NAN = np.nan


def test_walk_scores_average_usable_frames_only_and_nan_without_any() -> None:
    frames = np.array(
        [
            [[0.2, 0.4], [0.6, 0.0], [9.0, 9.0]],  # third frame unusable: ignored
            [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]],  # no usable frame at all
        ]
    )
    usable = np.array([[True, True, False], [False, False, False]])
    scores = walk_scores(frames, usable)
    np.testing.assert_allclose(scores[0], [0.4, 0.2])
    assert np.isnan(scores[1]).all()


def test_decide_ties_and_faceless_walks_are_no_decision() -> None:
    scores = np.array([[0.1, 0.7, 0.3], [0.5, 0.5, 0.2], [NAN, NAN, NAN], [0.9, 0.2, 0.9 - 1e-9]])
    predicted, top = decide(scores)
    assert predicted.tolist() == [1, -1, -1, 0]
    assert top[0] == 0.7 and top[3] == 0.9
    assert top[1] == -np.inf and top[2] == -np.inf


def test_threshold_at_far_hand_computed() -> None:
    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5, 0.05])
    threshold = threshold_at_far(scores, 0.1)  # 1 of 10 may pass: only the 0.9
    assert 0.8 < threshold <= 0.9 and np.sum(scores >= threshold) == 1
    assert np.sum(scores >= threshold_at_far(scores, 0.0)) == 0
    assert np.sum(scores >= threshold_at_far(scores, 0.25)) == 2  # floor(2.5)
    assert np.sum(scores >= threshold_at_far(scores, 0.3)) == 3  # exactly 3, despite float rounding of 0.3 x 10


def test_threshold_at_far_ties_at_the_cut_accept_fewer() -> None:
    scores = np.array([0.9, 0.9, 0.5, 0.1])
    threshold = threshold_at_far(scores, 0.25)  # 1 allowed, but the two 0.9 cannot be split
    assert np.sum(scores >= threshold) == 0 and threshold > 0.9


def test_threshold_at_far_faceless_strangers_are_never_accepted() -> None:
    scores = np.array([-np.inf, 0.3, -np.inf, 0.2])
    threshold = threshold_at_far(scores, 0.5)
    assert np.isfinite(threshold) and np.sum(scores >= threshold) == 2


def test_threshold_at_far_empty_strangers_clear_error() -> None:
    with pytest.raises(FaceGateError, match="no stranger walk-ups"):
        threshold_at_far(np.array([]), 0.05)


def test_system_metrics_hand_computed_with_an_employee_never_predicted() -> None:
    # 3 employees; employee 2 is never anyone's top score
    employees = np.array(
        [
            [0.9, 0.1, 0.0],  # label 0: right, 0.9
            [0.2, 0.6, 0.1],  # label 1: right, 0.6
            [0.7, 0.3, 0.2],  # label 2: wrong (says 0), 0.7
            [0.4, 0.3, 0.35],  # label 0: right, 0.4
            [NAN, NAN, NAN],  # label 1: no face
        ]
    )
    labels = np.array([0, 1, 2, 0, 1])
    calibration = np.array([[0.5, 0.1, 0.1], [0.1, 0.45, 0.1], [0.3, 0.2, 0.1], [0.2, 0.25, 0.1]])
    test = np.array([[0.55, 0.0, 0.0], [0.1, 0.2, 0.3], [0.5, 0.5, 0.0]])
    result = system_metrics(employees, labels, calibration, test, target_far=0.25)
    # calibration tops 0.5, 0.45, 0.3, 0.25: one may pass, so the threshold sits just above 0.45
    assert 0.45 < result.threshold <= 0.5
    assert result.far_calibration == 0.25
    assert result.accuracy == pytest.approx(3 / 5)
    assert result.tar == pytest.approx(2 / 5)  # 0.9 and 0.6 pass, 0.4 does not
    assert result.wrong_accept == pytest.approx(1 / 5)  # employee 2 let in as employee 0
    assert result.far == pytest.approx(1 / 3)  # 0.55 passes, 0.3 does not, the tie is no decision
    assert result.no_decision == pytest.approx(1 / 5)
    assert result.worst_person_accuracy == 0.0  # employee 2
    assert (result.employee_walks, result.calibration_walks, result.test_stranger_walks) == (5, 4, 3)


def test_system_metrics_without_test_strangers_clear_error() -> None:
    with pytest.raises(FaceGateError, match="no test stranger"):
        system_metrics(np.eye(2), np.array([0, 1]), np.eye(2), np.zeros((0, 2)), 0.05)
    with pytest.raises(FaceGateError, match="no stranger walk-ups"):
        system_metrics(np.eye(2), np.array([0, 1]), np.zeros((0, 2)), np.eye(2), 0.05)


def test_gallery_scores_best_and_mean_template() -> None:
    s = np.sqrt(0.5)
    templates = np.array([[[1.0, 0.0], [0.0, 1.0]], [[s, s], [s, s]]], np.float32)  # (2 employees, k=2, D=2)
    queries = np.array([[1.0, 0.0], [s, -s]], np.float32)
    best = gallery_scores(templates, queries, "best")
    np.testing.assert_allclose(best, [[1.0, s], [s, 0.0]], atol=1e-6)
    mean = gallery_scores(templates, queries, "mean")  # employee 0's mean template is (s, s)
    np.testing.assert_allclose(mean, [[s, s], [0.0, 0.0]], atol=1e-6)
    assert gallery_scores(templates, np.zeros((0, 2), np.float32)).shape == (0, 2)


def test_choose_people_refuses_seen_people_unless_allowed() -> None:
    pins = [f"P{i:02d}" for i in range(20)]
    held = pins[:8]
    people = choose_people(held, pins, employees=4, strangers=4, allow_seen=False, seed=0)
    assert people.employees == ["P00", "P01", "P02", "P03"]
    assert (people.calibration, people.test, people.seen) == (["P04", "P05"], ["P06", "P07"], [])
    with pytest.raises(FaceGateError, match="holds out 8 Pins people, the study needs 10"):
        choose_people(held, pins, employees=6, strangers=4, allow_seen=False, seed=0)
    smoke = choose_people([], pins, employees=3, strangers=2, allow_seen=True, seed=0)
    assert len(smoke.seen) == 5 and set(smoke.seen) <= set(pins)


def _lfw_counts() -> dict[str, int]:
    """Photo counts like LFW's: a few people with many photos, more with a handful, most with one."""
    counts = {f"Many_{i:02d}": 30 + i for i in range(6)}
    counts |= {f"Some_{i:02d}": 10 + i % 3 for i in range(8)}
    counts |= {f"One_{i:02d}": 1 for i in range(20)}
    return counts


def test_choose_lfw_people_enough_photos_for_every_k_disjoint_and_seeded() -> None:
    counts = _lfw_counts()
    config = StudyConfig(people="lfw", ks=(1, 5, 20), employees=4, strangers=6, test_photos=10, stranger_photos=10)
    people = choose_lfw_people(counts, ["lfw"], config)
    assert len(people.employees) == 4 and all(counts[n] >= 20 + 10 for n in people.employees)
    strangers = people.calibration + people.test
    assert (len(people.calibration), len(people.test)) == (3, 3) and all(counts[n] >= 10 for n in strangers)
    assert not set(people.employees) & set(strangers) and len(set(strangers)) == 6 and people.seen == []
    assert people == choose_lfw_people(counts, ["lfw"], config)
    assert people != choose_lfw_people(counts, ["lfw"], config.model_copy(update={"seed": 1}))


def test_choose_lfw_people_too_few_photos_named_in_one_line() -> None:
    counts = _lfw_counts()
    config = StudyConfig(people="lfw", ks=(1, 50), employees=4, strangers=6, test_photos=10, stranger_photos=10)
    with pytest.raises(FaceGateError, match=r"^0 LFW people have 60\+ photos \(k up to 50 \+ 10 test\), the study "):
        choose_lfw_people(counts, ["lfw"], config)
    config = config.model_copy(update={"ks": (1, 20), "stranger_photos": 12})
    with pytest.raises(FaceGateError, match=r"^4 other LFW people have 12\+ photos, the study needs 6 strangers"):
        choose_lfw_people(counts, ["lfw"], config)


def test_choose_lfw_people_needs_the_card_to_say_lfw_is_unseen() -> None:
    config = StudyConfig(people="lfw", ks=(1, 20), employees=4, strangers=6, stranger_photos=10)
    for unseen in ([], ["pins"]):
        with pytest.raises(FaceGateError, match='training.unseen lacks "lfw"'):
            choose_lfw_people(_lfw_counts(), unseen, config)
    smoke = choose_lfw_people(_lfw_counts(), [], config.model_copy(update={"allow_seen": True}))
    assert sorted(smoke.seen) == sorted(smoke.employees + smoke.calibration + smoke.test) and len(smoke.seen) == 10


def test_the_shipped_card_states_lfw_unseen_and_a_trained_card_does_not(untrained_card: Path) -> None:
    assert unseen_datasets(read_card(SHIPPED_CARD)) == ["lfw"]
    assert "none of them an LFW person" in read_card(SHIPPED_CARD).training["data"]  # the statement the field rests on
    assert unseen_datasets(read_card(untrained_card)) == []


def test_study_crops_refuses_crops_made_for_another_template(tmp_path: Path) -> None:
    crops = tmp_path / "pins.npz"
    np.savez(crops, size=np.array(ARCFACE_112.size), template=ARCFACE_112.array)
    paths = StudyPaths(tmp_path, crops, tmp_path / "cache")
    people = choose_people(["A", "B"], ["A", "B"], employees=1, strangers=1, allow_seen=False, seed=0)
    assert study_crops(paths, StudyConfig(), people, ARCFACE_112) == crops
    dlib = CropTemplate.of(150, read_card(SHIPPED_CARD).crop_template)
    with pytest.raises(FaceGateError, match="crops aligned for a 112-pixel template, the embedder wants its own 150"):
        study_crops(paths, StudyConfig(), people, dlib)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"target_far": "1.0"}, "study settings: target_far: Input should be less than 1 (got '1.0')"),
        ({"systems": "two-stage,magic"}, "study settings: systems.1: Input should be 'two-stage', 'end-to-end' or"),
        ({"ks": "0,1"}, "study settings: ks.0: Input should be greater than or equal to 1 (got '0')"),
        ({"ks": ""}, "study settings: ks.0: Input should be a valid integer"),
        ({"frame_width": "16"}, "study settings: frame_width: Input should be greater than or equal to 32"),
        ({"employees": "1"}, "study settings: employees: Input should be greater than or equal to 2"),
        ({"walk_t": "0.5,1.5"}, "study settings: walk_t.1: Input should be less than or equal to 1"),
        ({"match": "median"}, "study settings: match: Input should be 'best' or 'mean'"),
        ({"employes": "3"}, "study settings: employes: unknown key; valid: ks, employees, strangers"),
    ],
)
def test_study_config_refuses_a_bad_value_in_one_line_naming_it(values: dict[str, str], message: str) -> None:
    with pytest.raises(FaceGateError) as error:
        build_config(StudyConfig, values, "study")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_study_config_from_strings_and_frozen() -> None:
    config = build_config(StudyConfig, {"ks": "1,2", "walk_t": "0.5,1", "allow_seen": "true", "seed": "3"}, "study")
    assert (config.ks, config.walk_t, config.allow_seen, config.seed) == ((1, 2), (0.5, 1.0), True, 3)
    assert config.model_dump() == StudyConfig(ks=(1, 2), walk_t=(0.5, 1.0), allow_seen=True, seed=3).model_dump()
    assert StudyConfig().ks == (1, 2, 5, 10, 20, 50) and StudyConfig().target_far == 0.05
    with pytest.raises(ValueError, match="frozen"):
        config.seed = 4  # type: ignore[misc]
    with pytest.raises(ValueError, match="target_far"):  # made in code rather than from a user: a ValidationError
        StudyConfig(target_far=-0.1)


def test_split_employee_photos_disjoint_seeded_skips_undetected() -> None:
    files = [f"A/{i}.jpg" for i in range(20)]
    detected = [i % 5 != 0 for i in range(20)]
    enrol, test = split_employee_photos(files, detected, test_photos=5, max_k=8, seed=0, name="A")
    assert len(test) == 5 and len(enrol) == 8 and not set(enrol) & set(test)
    assert all(detected[files.index(f)] for f in enrol)
    assert (enrol, test) == split_employee_photos(files, detected, 5, 8, 0, "A")
    assert (enrol, test) != split_employee_photos(files, detected, 5, 8, 1, "A")
    with pytest.raises(FaceGateError, match="photos with a detected face"):
        split_employee_photos(files, detected, test_photos=5, max_k=14, seed=0, name="A")


def _row(system: str, k: int, accuracy: float, tar: float) -> StudyRow:
    zero = dict.fromkeys(("wrong_accept", "far", "far_calibration", "threshold", "no_decision"), 0.0)
    counts = dict.fromkeys(("employee_walks", "calibration_walks", "test_stranger_walks"), 10)
    return StudyRow(
        system=system, k=k, accuracy=accuracy, tar=tar, worst_person_accuracy=accuracy, seconds=1.0, **zero, **counts
    )


def test_samples_for_and_catch_up() -> None:
    assert [samples_for(k, 1000) for k in (1, 2, 4)] == [1000, 1500, 2000]
    rows = [
        _row("two-stage", 1, accuracy=0.8, tar=0.7),
        _row("end-to-end", 1, accuracy=0.3, tar=0.1),
        _row("two-stage", 5, accuracy=0.9, tar=0.8),
        _row("end-to-end", 5, accuracy=0.95, tar=0.7),  # accuracy alone is not enough
        _row("two-stage", 10, accuracy=0.9, tar=0.8),
        _row("end-to-end", 10, accuracy=0.9, tar=0.85),
    ]
    assert catch_up(rows, "end-to-end") == 10
    assert catch_up(rows[:4], "end-to-end") is None


@pytest.mark.usefixtures("evaluate_extra")
def test_study_command_refuses_a_model_without_held_out_people(
    tmp_path: Path, untrained_card: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "pins").mkdir(parents=True)  # a Pins folder, so the refusal does not need the dataset
    monkeypatch.setenv("FACEGATE_DATA", str(tmp_path / "data"))
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    args = ["--config", str(config), "study", "--model", str(untrained_card), "--out", str(tmp_path / "o")]
    outcome = CliRunner().invoke(app, args)
    assert isinstance(outcome.exception, FaceGateError)
    assert "holds out 0 Pins people" in str(outcome.exception) and "--allow-seen" in str(outcome.exception)
    assert not (tmp_path / "o").exists()


def _tiny_pins(data_root: Path, target: Path, people: int = 4, photos: int = 6) -> Path:
    """A Pins folder of a few people with a few photos each (symlinks), and its aligned crops."""
    if not (data_root / "pins").is_dir():
        pytest.skip(f"Pins photos not found under {data_root}")
    for person in sorted(d for d in (data_root / "pins").iterdir() if d.is_dir())[:people]:
        (target / "pins" / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:photos]:
            (target / "pins" / person.name / photo.name).symlink_to(photo)
    return build_crops(target / "pins", target / "pins.npz")


@pytest.mark.usefixtures("evaluate_extra")
def test_study_command_tiny_smoke_run(
    tmp_path: Path, data_root: Path, untrained_card: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crops = _tiny_pins(data_root, tmp_path / "data")
    monkeypatch.setenv("FACEGATE_DATA", str(tmp_path / "data"))
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    out = tmp_path / "study"
    settings = ["ks=1", "employees=2", "strangers=2", "test_photos=2", "stranger_photos=2", "samples=16",
                "pool_frames=8", "frame_width=64", "frame_height=48"]  # fmt: skip
    args = ["--config", str(config), "study", "--model", str(untrained_card), "--out", str(out),
            *(arg for item in settings for arg in ("--set", item)), "--cache", str(tmp_path / "cache"),
            "--crops", str(crops), "--allow-seen", "--quiet"]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    result = json.loads((out / "study.json").read_text(encoding="utf-8"))
    assert {(r["system"], r["k"]) for r in result["rows"]} == {("two-stage", 1), ("end-to-end", 1), ("middle", 1)}
    assert result["walks"] == result["walks"] | {"employee": 4, "calibration": 2, "test": 2, "frames_per_walk": 3}
    assert all(0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["far"] <= 1.0 for r in result["rows"])
    report = (out / "study.md").read_text(encoding="utf-8")
    assert report.startswith("> **WARNING: --allow-seen") and "| 1 | end-to-end |" in report
    assert "--allow-seen" in result["command"] and result["warning"]
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = CliRunner().invoke(app, args)  # the classifiers' results come back from the cache
    assert again.exit_code == 0, again.output
    rerun = json.loads((out / "study.json").read_text(encoding="utf-8"))
    assert [r.get("cached", False) for r in rerun["rows"] if r["system"] != "two-stage"] == [True, True]
    assert [r["accuracy"] for r in rerun["rows"]] == [r["accuracy"] for r in result["rows"]]


@pytest.mark.usefixtures("evaluate_extra")
def test_study_command_refuses_lfw_people_for_a_card_that_does_not_say_lfw_is_unseen(
    tmp_path: Path, untrained_card: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "lfw" / "lfw-deepfunneled").mkdir(parents=True)
    monkeypatch.setenv("FACEGATE_DATA", str(tmp_path / "data"))
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    args = ["--config", str(config), "study", "--model", str(untrained_card), "--out", str(tmp_path / "o"),
            "--set", "people=lfw"]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert isinstance(outcome.exception, FaceGateError)
    assert 'training.unseen lacks "lfw"' in str(outcome.exception) and "--allow-seen" in str(outcome.exception)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("evaluate_extra")
def test_study_command_tiny_lfw_run_builds_the_study_peoples_crops(
    tmp_path: Path, data_root: Path, untrained_card: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lfw = tmp_path / "data" / "lfw" / "lfw-deepfunneled"
    source = data_root / "lfw" / "lfw-deepfunneled"
    for name, photos in (("Colin_Powell", 5), ("Tony_Blair", 5), ("Hans_Blix", 2), ("Kofi_Annan", 2), ("Ann_X", 1)):
        (lfw / name).mkdir(parents=True)
        for photo in sorted((source / name).glob("*.jpg"))[:photos] if name != "Ann_X" else []:
            (lfw / name / photo.name).symlink_to(photo)
    monkeypatch.setenv("FACEGATE_DATA", str(tmp_path / "data"))
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    out, cache = tmp_path / "study", tmp_path / "cache"
    settings = ["people=lfw", "ks=1,2", "employees=2", "strangers=2", "test_photos=2", "stranger_photos=2",
                "samples=16", "pool_frames=8", "frame_width=64", "frame_height=48"]  # fmt: skip
    args = ["--config", str(config), "study", "--model", str(untrained_card), "--out", str(out),
            *(arg for item in settings for arg in ("--set", item)), "--cache", str(cache), "--allow-seen",
            "--quiet"]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    result = json.loads((out / "study.json").read_text(encoding="utf-8"))
    assert result["people"]["employees"] == ["Colin_Powell", "Tony_Blair"]  # the only ones with 2 + 2 photos
    assert sorted(result["people"]["calibration"] + result["people"]["test"]) == ["Hans_Blix", "Kofi_Annan"]
    assert result["walks"] == result["walks"] | {"employee": 4, "calibration": 2, "test": 2}
    (crops,) = cache.glob("lfw-crops-*.npz")  # the study people's photos, aligned once
    assert sorted(set(np.load(crops)["person"].tolist())) == ["Colin_Powell", "Hans_Blix", "Kofi_Annan", "Tony_Blair"]
    report = (out / "study.md").read_text(encoding="utf-8")
    assert report.startswith("> **WARNING: --allow-seen") and "does NOT state that its training saw no LFW" in report
