"""Pairs-file parsing and offline verification end to end on real LFW photos (with an untrained model)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from evaluation.verification import (
    FAILED_SCORE,
    Pair,
    evaluate_pairs,
    make_pairs,
    pairs_among,
    read_pairs,
)
from facegate.cli import app
from gate.errors import FaceGateError
from gate.model.embedder import Embedder
from gate.vision.faces import FacePipeline
from training.datasets import read_people_list

# 2 folds x (2 same + 2 different), names from LFW's pairsDevTest.txt; the last same pair is one image twice.
SMALL_PAIRS = """2\t2
Abdullah_Gul\t13\t14
Abdullatif_Sener\t1\t2
AJ_Lamas\t1\tZach_Safrin\t1
Aaron_Guiel\t1\tReese_Witherspoon\t3
Adel_Al-Jubeir\t1\t3
Abdullah_Gul\t13\t13
Aaron_Tippin\t1\tJose_Luis_Rodriguez_Zapatero\t1
Abdul_Majeed_Shobokshi\t1\tCharles_Cope\t1
"""
JSON_KEYS = {
    "accuracy", "accuracy_std", "auc", "eer", "tar_at_far", "thresholds_at_far", "pairs", "failed_to_detect",
    "model_id", "impostor_pairs", "far_support", "pairs_failed",  # the working gate's keys, kept
    "genuine_pairs", "fnmr_at_fmr", "images", "failure_to_acquire_rate",  # added with the report
}  # fmt: skip
FARS = {"0.01", "0.001", "0.0001"}


@pytest.fixture
def small_pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.txt"
    path.write_text(SMALL_PAIRS, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def embedder(untrained_card: Path) -> Embedder:
    return Embedder(untrained_card)


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline()


def _copy_tree(pairs: list[Pair], lfw_root: Path, target: Path) -> Path:
    for name in {p.left for p in pairs} | {p.right for p in pairs}:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lfw_root / name, target / name)
    return target


def test_read_pairs_two_folds_paths_labels_and_folds(small_pairs_file: Path) -> None:
    pairs = read_pairs(small_pairs_file)
    assert len(pairs) == 8
    gul = "Abdullah_Gul/Abdullah_Gul_00"
    assert pairs[0] == Pair(gul + "13.jpg", gul + "14.jpg", True, 0)
    assert pairs[2] == Pair("AJ_Lamas/AJ_Lamas_0001.jpg", "Zach_Safrin/Zach_Safrin_0001.jpg", False, 0)
    assert [p.same for p in pairs] == [True, True, False, False] * 2
    assert [p.fold for p in pairs] == [0] * 4 + [1] * 4


def test_read_pairs_single_block_cut_into_ten_folds_in_order(tmp_path: Path) -> None:
    same = [f"A\t{i}\t{i + 1}" for i in range(1, 21)]
    different = [f"A\t{i}\tB\t{i}" for i in range(1, 21)]
    path = tmp_path / "dev.txt"
    path.write_text("\n".join(["20", *same, *different]) + "\n", encoding="utf-8")
    pairs = read_pairs(path)
    assert [p.fold for p in pairs[:20]] == [i // 2 for i in range(20)]
    assert [p.fold for p in pairs[20:]] == [i // 2 for i in range(20)]
    assert all(p.same for p in pairs[:20]) and not any(p.same for p in pairs[20:])


def test_read_pairs_lfw_files_have_protocol_folds(data_root: Path) -> None:
    dev = read_pairs(data_root / "lfw" / "pairsDevTest.txt")
    assert len(dev) == 1000
    assert Counter((p.fold, p.same) for p in dev) == {(f, s): 50 for f in range(10) for s in (True, False)}
    view2 = read_pairs(data_root / "lfw" / "pairs.txt")
    assert len(view2) == 6000
    assert Counter((p.fold, p.same) for p in view2) == {(f, s): 300 for f in range(10) for s in (True, False)}


def test_pairs_among_keeps_pairs_of_two_listed_people_with_their_folds(small_pairs_file: Path) -> None:
    pairs = read_pairs(small_pairs_file)
    kept = pairs_among(pairs, {"Abdullah_Gul", "Aaron_Guiel", "Reese_Witherspoon", "Adel_Al-Jubeir"})
    assert [(p.left.split("/")[0], p.same, p.fold) for p in kept] == [
        ("Abdullah_Gul", True, 0), ("Aaron_Guiel", False, 0), ("Adel_Al-Jubeir", True, 1), ("Abdullah_Gul", True, 1)
    ]  # fmt: skip
    with pytest.raises(FaceGateError, match="no same-and-different pairs"):
        pairs_among(pairs, {"Abdullah_Gul"})  # same pairs only


def test_pairs_txt_restricted_to_dev_test_people_is_untrained_and_spans_all_folds(data_root: Path) -> None:
    lfw = data_root / "lfw"
    test_people = read_people_list(lfw / "peopleDevTest.txt")
    assert not test_people & read_people_list(lfw / "peopleDevTrain.txt")  # what makes the restriction honest
    kept = pairs_among(read_pairs(lfw / "pairs.txt"), test_people)
    assert Counter(p.same for p in kept) == {True: 870, False: 277}
    assert {p.fold for p in kept} == set(range(10))


def test_read_pairs_count_differs_from_header_raises(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("2\nA 1 2\nA 1 B 1\n", encoding="utf-8")
    with pytest.raises(FaceGateError, match="4 pairs, the file has 2"):
        read_pairs(path)


def test_read_pairs_malformed_line_raises_naming_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("1\nA 1 two\nA 1 B 1\n", encoding="utf-8")
    with pytest.raises(FaceGateError, match=r"pairs.txt:2: expected 'name n1 n2'"):
        read_pairs(path)


def test_read_pairs_bad_header_raises(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("ten\nA 1 2\n", encoding="utf-8")
    with pytest.raises(FaceGateError, match="line 1"):
        read_pairs(path)


def test_read_pairs_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match="not found"):
        read_pairs(tmp_path / "nope.txt")


def test_evaluate_pairs_real_lfw_all_keys_and_sane_scores(
    small_pairs_file: Path, lfw_root: Path, pipeline: FacePipeline, embedder: Embedder
) -> None:
    result = evaluate_pairs(read_pairs(small_pairs_file), lfw_root, pipeline, embedder, progress=False)
    assert set(result.to_json()) >= JSON_KEYS
    assert result.pairs == 8 and result.failed_to_detect == 0 and result.pairs_failed == 0
    assert result.model_id == "untrained-test"
    assert set(result.tar_at_far) == set(result.thresholds_at_far) == set(result.fnmr_at_fmr) == FARS
    assert result.impostor_pairs == 4 and result.far_support == {"0.01": 0, "0.001": 0, "0.0001": 0}
    assert result.genuine_pairs == 4 and result.images == 14 and result.failure_to_acquire_rate == 0.0
    assert all(result.fnmr_at_fmr[far] == pytest.approx(1 - result.tar_at_far[far]) for far in FARS)
    scores = result.scores
    assert scores.shape == (8,) and np.all(np.abs(scores) <= 1 + 1e-5)
    assert scores[5] == pytest.approx(1.0, abs=1e-5)  # one image twice: the same embedding
    assert 0.0 <= result.accuracy <= 1.0 and 0.0 <= result.auc <= 1.0
    json.dumps(result.to_json())  # JSON-ready


def test_evaluate_pairs_blank_image_counted_and_scored_minus_one(
    small_pairs_file: Path, lfw_root: Path, tmp_path: Path, pipeline: FacePipeline, embedder: Embedder
) -> None:
    pairs = read_pairs(small_pairs_file)
    root = _copy_tree(pairs, lfw_root, tmp_path / "images")
    Image.new("RGB", (250, 250), (128, 128, 128)).save(root / "Zach_Safrin" / "Zach_Safrin_0001.jpg")
    result = evaluate_pairs(pairs, root, pipeline, embedder, progress=False)
    assert result.failed_to_detect == 1 and result.pairs_failed == 1
    assert result.failure_to_acquire_rate == pytest.approx(1 / 14)
    assert result.scores[2] == FAILED_SCORE
    assert np.all(np.delete(result.scores, 2) > FAILED_SCORE)


def test_evaluate_pairs_missing_image_raises_before_any_work(
    small_pairs_file: Path, tmp_path: Path, pipeline: FacePipeline, embedder: Embedder
) -> None:
    with pytest.raises(FaceGateError, match="14 of 14 images not found"):
        evaluate_pairs(read_pairs(small_pairs_file), tmp_path, pipeline, embedder, progress=False)


def test_evaluate_pairs_one_fold_raises(tmp_path: Path, pipeline: FacePipeline, embedder: Embedder) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("1\nA 1 2\nA 1 B 1\n", encoding="utf-8")
    with pytest.raises(FaceGateError, match="2 folds"):
        evaluate_pairs(read_pairs(path), tmp_path, pipeline, embedder, progress=False)


@pytest.mark.usefixtures("evaluate_extra")
def test_evaluate_command_model_option_writes_json_and_plot(
    small_pairs_file: Path, lfw_root: Path, tmp_path: Path, untrained_card: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    out_json, out_png = tmp_path / "out" / "result.json", tmp_path / "out" / "roc.png"
    args = ["--config", str(config), "evaluate", str(small_pairs_file), "--images", str(lfw_root),
            "--model", str(untrained_card), "--json", str(out_json), "--plot", str(out_png)]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    assert "TAR @ FAR 0.01" in outcome.output and "untrained-test" in outcome.output
    written = json.loads(out_json.read_text(encoding="utf-8"))
    assert set(written) == JSON_KEYS | {"confidence_intervals"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_pairs_identity_disjoint_balanced_reproducible(lfw_root: Path) -> None:
    pairs = make_pairs(lfw_root, folds=5, per_fold=40, seed=3)
    assert make_pairs(lfw_root, folds=5, per_fold=40, seed=3) == pairs
    assert make_pairs(lfw_root, folds=5, per_fold=40, seed=4) != pairs
    people_of: dict[int, set[str]] = {}
    for pair in pairs:
        people_of.setdefault(pair.fold, set()).update({pair.left.split("/")[0], pair.right.split("/")[0]})
        assert (pair.left.split("/")[0] == pair.right.split("/")[0]) == pair.same and pair.left != pair.right
    assert sorted(people_of) == [0, 1, 2, 3, 4]
    assert all(not people_of[i] & people_of[j] for i in people_of for j in people_of if i < j)
    assert sum(p.same for p in pairs) == sum(not p.same for p in pairs) == 5 * 40
    assert len(set(pairs)) == len(pairs)
    assert all((lfw_root / p.left).is_file() and (lfw_root / p.right).is_file() for p in pairs)


def test_make_pairs_too_few_people_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "solo").mkdir()
    (tmp_path / "solo" / "a.jpg").write_bytes(b"x")
    with pytest.raises(FaceGateError, match="1 people with photos; 10 folds need at least 20"):
        make_pairs(tmp_path)


def test_evaluate_command_without_pairs_file_uses_folder(tmp_path: Path, lfw_root: Path, untrained_card: Path) -> None:
    folder = tmp_path / "people"
    folder.mkdir()
    for name in sorted(p.name for p in lfw_root.iterdir())[:60]:
        (folder / name).symlink_to(lfw_root / name)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--images", str(folder), "--folds", "2", "--per-fold", "3", "--model", str(untrained_card),
         "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["pairs"] == 12
