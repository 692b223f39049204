"""The evaluation report's parts: bootstrap by person, the identification protocol and its metrics, the
Markdown report, and writing a calibrated threshold into the config; then the command end to end on LFW."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluation.identification import IdentificationSplit, identification_metrics, split_people
from evaluation.intervals import bootstrap_by_person, pair_weights, person_indices
from evaluation.report import write_report
from evaluation.results import (
    BootstrapIntervals,
    GalleryEntry,
    GallerySkipped,
    IdentificationResult,
    ScoredPairs,
    VerificationResult,
)
from evaluation.verification import Pair, paired_difference_intervals, scored_pairs
from facegate.cli import app
from gate.config import load_settings
from gate.errors import FaceGateError
from gate.matching.rule import person_scores
from training.metrics import auc


def unit(angle_degrees: float) -> np.ndarray:
    a = np.deg2rad(angle_degrees)
    return np.array([np.cos(a), np.sin(a)], dtype=np.float32)


# --- bootstrap by person -------------------------------------------------------------------------------------


def test_pair_weights_hand_computed() -> None:
    counts = np.array([2, 0, 3])  # person 0 drawn twice, person 1 never, person 2 three times
    left, right = np.array([0, 1, 0, 0, 2]), np.array([0, 1, 2, 1, 2])
    same = np.array([True, True, False, False, True])
    assert pair_weights(counts, left, right, same).tolist() == [2, 0, 6, 0, 3]


def test_person_indices_share_one_numbering() -> None:
    left, right = person_indices(["b", "a", "c"], ["b", "c", "a"])
    assert left.tolist() == [1, 0, 2] and right.tolist() == [1, 2, 0]


def test_bootstrap_perfect_separation_gives_degenerate_interval() -> None:
    # 6 people, each with a genuine pair scoring 0.9; impostor pairs between neighbours scoring 0.1
    left = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4])
    right = np.array([0, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    same = left == right
    scores = np.where(same, 0.9, 0.1)

    def statistic(index: np.ndarray) -> dict[str, float]:
        return {"auc": auc(scores[index], same[index])}

    out = bootstrap_by_person(statistic, left, right, same, resamples=200, seed=1, progress=False)
    assert out["intervals"]["auc"] == [1.0, 1.0]
    assert out["resamples"] + out["skipped"] == 200 and out["resamples"] > 150


def _scored(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> ScoredPairs:
    return scored_pairs(scores, labels, folds)


def test_paired_difference_zero_for_one_model_and_positive_for_a_better_one() -> None:
    rng = np.random.default_rng(0)
    people, per = 60, 4
    left = np.concatenate([np.arange(people), rng.integers(people, size=people * per)])
    right = np.concatenate([np.arange(people), (left[people:] + rng.integers(1, people, size=people * per)) % people])
    same = left == right
    pairs = [
        Pair(f"p{a}/x.jpg", f"p{b}/y.jpg", bool(s), i % 10)
        for i, (a, b, s) in enumerate(zip(left, right, same, strict=True))
    ]
    folds = np.array([p.fold for p in pairs])
    noise = rng.normal(0, 0.25, len(pairs))
    weak = _scored(np.where(same, 0.4, 0.1) + noise, same, folds)
    strong = _scored(np.where(same, 0.8, 0.1) + noise, same, folds)  # same noise, wider gap: better everywhere
    itself = paired_difference_intervals(weak, weak, pairs, resamples=100, seed=0)
    assert all(interval == [0.0, 0.0] for interval in itself["intervals"].values())
    gain = paired_difference_intervals(weak, strong, pairs, resamples=200, seed=0)["intervals"]
    assert gain["auc"][0] > 0 and gain["accuracy"][0] > 0 and gain["eer"][1] < 0
    with pytest.raises(FaceGateError, match="same pairs"):
        paired_difference_intervals(weak, _scored(strong.scores[:-1], same[:-1], folds[:-1]), pairs[:-1])


def test_bootstrap_interval_covers_estimate_and_is_reproducible() -> None:
    rng = np.random.default_rng(0)
    people = 40
    left = np.concatenate([np.arange(people), rng.integers(people, size=200)])
    right = np.concatenate([np.arange(people), rng.integers(people, size=200)])
    same = left == right
    scores = np.where(same, rng.normal(0.6, 0.2, len(left)), rng.normal(0.1, 0.2, len(left)))

    def statistic(index: np.ndarray) -> dict[str, float]:
        return {"auc": auc(scores[index], same[index])}

    first = bootstrap_by_person(statistic, left, right, same, resamples=300, seed=3, progress=False)
    again = bootstrap_by_person(statistic, left, right, same, resamples=300, seed=3, progress=False)
    low, high = first["intervals"]["auc"]
    assert first == again
    assert low < auc(scores, same) < high and high - low < 0.2


def test_bootstrap_skips_resamples_without_genuine_pairs() -> None:
    # only person 0 has a genuine pair: a resample that misses person 0 cannot be scored
    left, right, same = np.array([0, 0, 1]), np.array([0, 1, 2]), np.array([True, False, False])
    out = bootstrap_by_person(lambda i: {"n": float(len(i))}, left, right, same, resamples=100, progress=False)
    assert out["skipped"] > 0 and out["resamples"] == 100 - out["skipped"]


# --- identification protocol ---------------------------------------------------------------------------------


PHOTOS = {f"p{i:02d}": [f"{j}.jpg" for j in range(1 + i % 4)] for i in range(20)}  # 1 to 4 photos each


def test_split_people_partitions_and_is_seeded() -> None:
    split = split_people(PHOTOS, enrol=2, stranger_share=0.25, seed=5)
    assert split == split_people(PHOTOS, enrol=2, stranger_share=0.25, seed=5)
    assert split != split_people(PHOTOS, enrol=2, stranger_share=0.25, seed=6)
    stranger_people = {s.split("/")[0] for s in split.strangers}
    assert len(stranger_people) == 5 and not stranger_people & set(split.enrolled)
    assert len(split.enrolled) == 15
    for person in split.enrolled:
        used = split.templates[person] + split.probes[person]
        assert sorted(used) == sorted(f"{person}/{f}" for f in PHOTOS[person])
        assert len(split.templates[person]) == min(2, max(1, len(PHOTOS[person]) - 1))
    with_probes = [bool(split.probes[p]) for p in split.enrolled]
    assert with_probes == sorted(with_probes, reverse=True)  # people with probes first, single-photo ones last


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_split_people_rejects_bad_share(share: float) -> None:
    with pytest.raises(FaceGateError, match="strictly between 0 and 1"):
        split_people(PHOTOS, stranger_share=share)


def test_split_people_too_few_people() -> None:
    with pytest.raises(FaceGateError, match="too few"):
        split_people({"a": ["1.jpg"]}, stranger_share=0.3)


def test_person_scores_best_and_mean_hand_computed() -> None:
    query = unit(0)[None]
    templates = [np.stack([unit(0), unit(90)]), np.stack([unit(30)])]
    best = person_scores(query, templates, "best")
    mean = person_scores(query, templates, "mean")
    assert best[0].tolist() == pytest.approx([1.0, np.cos(np.deg2rad(30))])
    assert mean[0].tolist() == pytest.approx([np.cos(np.deg2rad(45)), np.cos(np.deg2rad(30))])


def test_identification_metrics_hand_computed_with_missing_faces() -> None:
    split = IdentificationSplit(
        enrolled=["A", "B", "C", "D"],
        templates={"A": ["A/t"], "B": ["B/t"], "C": ["C/t"], "D": ["D/t"]},
        probes={"A": ["A/1", "A/2"], "B": ["B/1"], "C": [], "D": []},
        strangers=["S/1", "S/2", "S/3", "T/1"],
    )
    vectors = {
        "A/t": unit(0), "B/t": unit(90), "C/t": unit(180), "D/t": None,  # D: no face, cannot be enrolled
        "A/1": unit(10),  # nearest A (0.985): rank 1
        "A/2": unit(80),  # nearest B: A ranks 2
        "B/1": None,  # no face: missed at every rank (ties with everyone count against it)
        "S/1": unit(45), "S/2": unit(135), "S/3": unit(-100), "T/1": None,
    }  # fmt: skip
    out = identification_metrics(split, vectors, [2, 3, 4], match="best")
    assert out.enrolled_people == 3 and out.not_enrolled_no_face == 1 and out.templates_per_person == 1
    assert out.stranger_people == 2 and out.stranger_photos == 4
    assert out.gallery_sizes["4"] == GallerySkipped(skipped="only 3 people could be enrolled")
    two = out.gallery_sizes["2"]  # gallery A, B; probes A/1 (rank 1), A/2 (rank 2), B/1 (no face: rank 2)
    assert isinstance(two, GalleryEntry)
    assert two.mated_probes == 3 and two.strangers == 4 and two.probes_without_face == 1
    assert two.strangers_without_face == 1
    assert two.rank1 == pytest.approx(1 / 3) and two.cmc == pytest.approx([1 / 3, 1.0])
    # strangers' top scores: S/1 0.707, S/2 0.707, S/3 -0.174, T/1 -1; FPIR 0.01 of 4 allows none: the threshold
    # sits just above 0.707, so A/1 (0.985) is still identified: FNIR 2/3
    assert two.fnir_at_fpir["0.01"] == pytest.approx(2 / 3)
    assert two.thresholds_at_fpir["0.01"] == pytest.approx(np.cos(np.deg2rad(45)), abs=1e-6)
    assert two.fpir_support["0.01"] == 0 and two.supported_fpirs() == []
    three = out.gallery_sizes["3"]
    assert isinstance(three, GalleryEntry) and three.rank1 == pytest.approx(1 / 3)  # C has no probe: same 3 probes
    text = json.dumps(out.to_json(), indent=2)  # the published entries read back give the same JSON text
    assert json.dumps(IdentificationResult.from_json(json.loads(text)).to_json(), indent=2) == text
    assert list(json.loads(text)["gallery_sizes"]["2"])[-3:] == ["fnir_at_fpir", "thresholds_at_fpir", "fpir_support"]


# --- writing the threshold into the config -------------------------------------------------------------------


def test_report_marks_unsupported_fars_and_lists_identification(tmp_path: Path) -> None:
    published = {
        "model_id": "m", "pairs": 20, "genuine_pairs": 10, "impostor_pairs": 10, "images": 30,
        "failed_to_detect": 1, "failure_to_acquire_rate": 1 / 30, "pairs_failed": 1,
        "accuracy": 0.9, "accuracy_std": 0.05, "auc": 0.95, "eer": 0.1,
        "tar_at_far": {"0.01": 0.5}, "fnmr_at_fmr": {"0.01": 0.5}, "thresholds_at_far": {"0.01": 0.7},
        "far_support": {"0.01": 0},
        "confidence_intervals": {"intervals": {"auc": [0.9, 0.99]}, "confidence": 0.95, "resamples": 10, "skipped": 0},
        "identification": {
            "match": "best", "templates_per_person": 1, "enrolled_people": 5, "not_enrolled_no_face": 0,
            "stranger_people": 2, "stranger_photos": 4,
            "gallery_sizes": {
                "5": {"identities": 5, "mated_probes": 6, "strangers": 4, "probes_without_face": 0,
                      "strangers_without_face": 0, "rank1": 0.5, "rank5": 1.0, "cmc": [0.5, 0.5, 1.0, 1.0, 1.0],
                      "fnir_at_fpir": {"0.01": 0.5}, "thresholds_at_fpir": {"0.01": 0.6}, "fpir_support": {"0.01": 0}},
                "10": {"skipped": "only 5 people could be enrolled"},
            },
        },
    }  # fmt: skip
    identification = IdentificationResult.from_json(published.pop("identification"))
    intervals = BootstrapIntervals.from_json(published.pop("confidence_intervals"))
    raw = {"scores": np.zeros(20), "labels": np.zeros(20, dtype=bool)}
    result = VerificationResult(**published, **raw, confidence_intervals=intervals, identification=identification)
    assert result.to_json() == published | {  # what the JSON holds
        "confidence_intervals": intervals.to_json(),
        "identification": identification.to_json(),
    }
    text = write_report(result, tmp_path / "report.md", "facegate evaluate x", {}).read_text(encoding="utf-8")
    assert "facegate evaluate x" in text
    assert "below this data's resolution (needs ≥ 100 impostor pairs)" in text
    assert "0.9000 – 0.9900" in text
    assert "| 5 | 6 | 4 | 50.0 % | 100.0 % | below resolution |" in text
    assert "| 10 | skipped: only 5 people could be enrolled |" in text


# --- the command end to end on real LFW photos -----------------------------------------------------------------


def _folder_of_people(lfw_root: Path, target: Path, count: int) -> Path:
    """`count` LFW people with 3+ photos (symlinked), so identification has probes."""
    target.mkdir()
    chosen = [d for d in sorted(lfw_root.iterdir()) if len(list(d.glob("*.jpg"))) >= 3][:count]
    for person in chosen:
        (target / person.name).symlink_to(person)
    return target


@pytest.mark.usefixtures("evaluate_extra")
def test_evaluate_report_identification_and_threshold(tmp_path: Path, lfw_root: Path, untrained_card: Path) -> None:
    folder = _folder_of_people(lfw_root, tmp_path / "people", 24)
    config = tmp_path / "config.toml"
    config.write_text(f'[model]\npath = "{untrained_card}"  # the site model\n', encoding="utf-8")
    args = ["--config", str(config), "evaluate", "--images", str(folder), "--folds", "2", "--per-fold", "100",
            "--identification", "--gallery-sizes", "5,10,100", "--enrol", "2", "--bootstrap", "50",
            "--report", str(tmp_path / "report"), "--write-threshold", "0.01"]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    result = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))
    assert result["far_support"]["0.01"] >= 1  # enough impostor pairs to calibrate FAR 0.01
    sizes = result["identification"]["gallery_sizes"]
    assert "skipped" in sizes["100"] and 0.0 <= sizes["5"]["rank1"] <= sizes["5"]["rank5"] <= 1.0
    assert set(result["confidence_intervals"]["intervals"]) >= {"accuracy", "auc", "eer", "tar_at_far_0.01"}
    for name in ("report.md", "roc.png", "det.png", "scores.png", "cmc.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    threshold = load_settings(config).decision.threshold
    assert threshold == pytest.approx(result["thresholds_at_far"]["0.01"], abs=1e-4)
    assert "# the site model" in config.read_text(encoding="utf-8")


@pytest.mark.usefixtures("evaluate_extra")
def test_evaluate_refuses_threshold_below_resolution_before_any_work(
    tmp_path: Path, lfw_root: Path, untrained_card: Path
) -> None:
    folder = _folder_of_people(lfw_root, tmp_path / "people", 8)
    config = tmp_path / "config.toml"
    text = f'[model]\npath = "{untrained_card}"\n'
    config.write_text(text, encoding="utf-8")
    args = ["--config", str(config), "evaluate", "--images", str(folder), "--folds", "2", "--per-fold", "5",
            "--bootstrap", "0", "--write-threshold", "0.0001", "--report", str(tmp_path / "report")]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code != 0
    assert "cannot be calibrated" in str(outcome.exception)
    assert config.read_text(encoding="utf-8") == text
    assert not (tmp_path / "report").exists()  # refused before any embedding or writing
