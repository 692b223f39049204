"""Training end to end on a tiny real-face pool: prepare crops, train on the CPU, checkpoint, resume, export."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gate.config import validated
from gate.errors import FaceGateError
from gate.model.backbones import template_for_backbone
from gate.model.card import SHIPPED_CARD
from gate.model.embedder import Embedder
from gate.model.scoring import cohort_people
from training.calibrate_card import CohortPlan, calibrate_card
from training.crops import build_crops, load_crops
from training.data import build_pool
from training.datasets import read_people
from training.dlib_import import import_dlib_model
from training.frozen_head import HeadConfig, load_port, train_head
from training.recipes import make_config
from training.train import initial_network, train


@pytest.fixture(scope="module")
def tiny_data(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset tree shaped like ../shared/datasets: 14 LFW DevTrain people (links) and 3 Pins people."""
    out = tmp_path_factory.mktemp("tiny")
    lfw_src = data_root / "lfw" / "lfw-deepfunneled"
    people = read_people(data_root / "lfw" / "peopleDevTrain.txt")
    several = [name for name, n in sorted(people.items()) if n >= 4][:10]
    singles = [name for name, n in sorted(people.items()) if n == 1][:4]
    (out / "lfw" / "lfw-deepfunneled").mkdir(parents=True)
    lines = [str(len(several) + len(singles))]
    for name in several + singles:
        (out / "lfw" / "lfw-deepfunneled" / name).symlink_to(lfw_src / name)
        lines.append(f"{name}\t{people[name]}")
    (out / "lfw" / "peopleDevTrain.txt").write_text("\n".join(lines) + "\n")
    for person in sorted(p.name for p in (data_root / "pins").iterdir())[:3]:
        (out / "pins" / person).mkdir(parents=True)
        for photo in sorted((data_root / "pins" / person).iterdir())[:6]:
            (out / "pins" / person / photo.name).symlink_to(photo)
    build_crops(out / "pins", out / "crops" / "pins.npz")
    build_crops(out / "lfw" / "lfw-deepfunneled", out / "crops" / "lfw.npz")
    return out


def test_build_crops_tiny_tree_aligned_112_crops(tiny_data: Path):
    crops = load_crops(tiny_data / "crops" / "lfw.npz")
    assert crops.crops.shape[1:] == (112, 112, 3)
    assert len(crops) == len(list((tiny_data / "lfw" / "lfw-deepfunneled").glob("*/*.jpg")))
    assert crops.detected.mean() > 0.9


def test_build_pool_val_people_never_trained(tiny_data: Path):
    pool = build_pool(tiny_data / "crops", tiny_data / "lfw", val_people=3)
    assert not set(pool.train.person) & set(pool.val.person)
    assert any(p.startswith("pins:") for p in pool.train.person)


def test_build_pool_holdout_pins_never_seen(tiny_data: Path):
    everyone = set(load_crops(tiny_data / "crops" / "pins.npz").person.tolist())
    pool = build_pool(tiny_data / "crops", tiny_data / "lfw", val_people=3, holdout_pins=1)
    assert len(pool.held_out_pins) == 1
    seen = set(pool.train.person.tolist()) | set(pool.val.person.tolist())
    assert f"pins:{pool.held_out_pins[0]}" not in seen
    assert {f"pins:{p}" for p in everyone - set(pool.held_out_pins)} <= seen
    again = build_pool(tiny_data / "crops", tiny_data / "lfw", val_people=3, holdout_pins=1)
    assert again.held_out_pins == pool.held_out_pins  # seeded: a study can name them


def test_build_pool_holdout_more_pins_than_exist(tiny_data: Path):
    with pytest.raises(FaceGateError, match="holdout_pins=99"):
        build_pool(tiny_data / "crops", tiny_data / "lfw", val_people=3, holdout_pins=99)


def test_train_cpu_checkpoint_resume_export(tiny_data: Path, tmp_path: Path):
    config = make_config(
        overrides=["backbone=mobilefacenet", "p=4", "k=4", "val_people=3", "eval_every=1", "max_batches=2"],
        data=str(tiny_data),
        crops=str(tiny_data / "crops"),
        out=str(tmp_path / "run"),
        epochs=1,
        device="cpu",
    )
    card_path = train(config)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "epoch", "config", "history"} <= set(state)
    assert state["epoch"] == 0
    resumed = train(make_config(**{**config.__dict__, "epochs": 2}), resume=True)
    history = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["seconds"] > history[0]["seconds"]  # the clock goes on across the resume
    embedder = Embedder(resumed)
    assert embedder.card.training["seconds"] >= history[1]["seconds"]
    thresholds = embedder.card.thresholds
    assert thresholds["0.0001"] >= thresholds["0.001"] >= thresholds["0.01"]
    vectors = embedder.embed(load_crops(tiny_data / "crops" / "pins.npz").crops[:3])
    assert vectors.shape == (3, 128)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert card_path == resumed


def _with_stand_in_teacher(tiny_data: Path, tmp_path: Path) -> Path:
    """A copy of the tiny crops with a stand-in teacher cache (dlib is an optional extra): random descriptors."""
    crops_dir = tmp_path / "crops"
    shutil.copytree(tiny_data / "crops", crops_dir)
    for name in ("lfw", "pins"):
        count = len(load_crops(crops_dir / f"{name}.npz"))
        descriptors = np.random.default_rng(0).normal(size=(count, 128)).astype(np.float16)
        np.save(crops_dir / f"{name}.teacher.npy", descriptors)
    return crops_dir


def test_build_pool_train_singles_moves_them_from_validation_into_training_unlabelled(tiny_data: Path, tmp_path: Path):
    crops_dir = _with_stand_in_teacher(tiny_data, tmp_path)
    singles = {name for name, n in read_people(tiny_data / "lfw" / "peopleDevTrain.txt").items() if n == 1}
    held = build_pool(crops_dir, tiny_data / "lfw", val_people=3)
    assert singles <= set(held.val.person.tolist()) and not singles & set(held.train.person.tolist())
    used = build_pool(crops_dir, tiny_data / "lfw", val_people=3, train_singles=True)
    assert not singles & set(used.val.person.tolist())  # never validated on faces the teacher taught
    assert set(used.val.person.tolist()) == set(held.val.person.tolist()) - singles
    unlabelled = used.train_labels == -1
    lfw = load_crops(crops_dir / "lfw.npz")
    assert set(used.train.person[unlabelled].tolist()) == set(lfw.person[lfw.detected].tolist()) & singles != set()
    assert np.array_equal(used.train.file[~unlabelled], held.train.file)  # the labelled pool is unchanged
    assert np.array_equal(used.train_labels[~unlabelled], held.train_labels)


def test_train_on_singles_through_the_teacher_and_refuse_it_without_one(tiny_data: Path, tmp_path: Path):
    crops_dir = _with_stand_in_teacher(tiny_data, tmp_path)
    settings = dict(data=str(tiny_data), crops=str(crops_dir), out=str(tmp_path / "run"), epochs=1, device="cpu")
    overrides = ["backbone=mobilefacenet", "p=4", "k=4", "val_people=3", "max_batches=2", "singles_per_batch=3"]
    with pytest.raises(FaceGateError, match="singles_per_batch needs distill_weight"):
        train(make_config(overrides=overrides, **settings))
    assert not (tmp_path / "run").exists()  # refused before anything was written
    card = Embedder(train(make_config(overrides=[*overrides, "distill_weight=1"], **settings))).card
    singles = build_pool(crops_dir, tiny_data / "lfw", val_people=3, train_singles=True).train_labels == -1
    assert "singles" in card.model_id and card.training["unlabelled_images"] == singles.sum() > 0
    assert card.results["validation"]["genuine_pairs"] > 0


def test_train_with_arcface_teacher_and_occlusion_runs_and_exports(tiny_data: Path, tmp_path: Path):
    crops_dir = _with_stand_in_teacher(tiny_data, tmp_path)
    config = make_config(
        overrides=["backbone=mobilefacenet", "p=4", "k=4", "val_people=3", "max_batches=2"],
        data=str(tiny_data), crops=str(crops_dir), out=str(tmp_path / "run"), epochs=1, device="cpu",
        arcface_weight=1.0, distill_weight=1.0, occlusion=0.5,
    )  # fmt: skip
    card = Embedder(train(config)).card
    assert all(part in card.model_id for part in ("arcface", "dlib-distill", "occlusion"))
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    assert any(key.startswith("1.to_teacher") for key in state)  # heads are checkpointed, not exported


def test_head_config_from_a_user_is_checked_in_one_line():
    assert HeadConfig() == validated(HeadConfig, {"recipe": "triplet", "dim": "128"}, "model head")
    with pytest.raises(FaceGateError, match="model head: recipe: Input should be 'triplet', 'wccn' or 'lda'"):
        validated(HeadConfig, {"recipe": "pca"}, "model head")
    with pytest.raises(FaceGateError, match="model head: dim: Input should be less than or equal to 256"):
        validated(HeadConfig, {"dim": 512}, "model head")


def test_make_config_bad_override_names_key():
    with pytest.raises(FaceGateError, match="epochs"):
        make_config(overrides=["epochs=many"])
    with pytest.raises(FaceGateError, match="train settings: colour: unknown key; valid: data, crops"):
        make_config(overrides=["colour=red"])


def test_fine_tuning_starts_from_the_cards_weights_and_refuses_another_architecture(untrained_card: Path):
    start = initial_network(make_config(overrides=["backbone=mobilefacenet", f"init_from={untrained_card}"]))
    card_state = Embedder(untrained_card).network.state_dict()
    assert all(torch.equal(value, card_state[key]) for key, value in start.state_dict().items())
    fresh = initial_network(make_config(overrides=["backbone=mobilefacenet"]))
    assert not torch.equal(fresh.state_dict()["features.0.0.weight"], card_state["features.0.0.weight"])
    with pytest.raises(FaceGateError, match="a mobilefacenet with 128-d embeddings, but this run trains a resnet18"):
        initial_network(make_config(overrides=["backbone=resnet18", f"init_from={untrained_card}"]))


def test_weight_ema_is_what_is_validated_and_exported(tiny_data: Path, tmp_path: Path):
    config = make_config(
        overrides=["backbone=mobilefacenet", "p=4", "k=4", "val_people=3", "max_batches=3", "ema=0.5", "lr=0.05"],
        data=str(tiny_data), crops=str(tiny_data / "crops"), out=str(tmp_path / "run"), epochs=1, device="cpu",
    )  # fmt: skip
    exported = Embedder(train(config)).network.state_dict()
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert int(state["ema"]["n_averaged"]) == 3  # one update per step
    key = "features.0.0.weight"
    averaged, raw = state["ema"][f"module.{key}"], state["model"][f"0.{key}"]
    to_average, to_raw = (float((exported[key] - w.float()).abs().max()) for w in (averaged, raw))
    assert to_average < 1e-3 < to_raw  # the average, not the last step's weights (the file is float16)


def test_inception_resnet_v1_trains_on_160_crops_and_refuses_112_ones(tiny_data: Path, tmp_path: Path):
    settings = ["backbone=inception_resnet_v1", "p=4", "k=4", "val_people=3", "max_batches=1"]
    common = {"data": str(tiny_data), "out": str(tmp_path / "run"), "epochs": 1, "device": "cpu"}
    refusal = r"own 160x160 crops.*another template.*prepare --backbone inception_resnet_v1"
    with pytest.raises(FaceGateError, match=refusal):
        train(make_config(overrides=settings, crops=str(tiny_data / "crops"), **common))
    assert not (tmp_path / "run").exists()  # refused before anything is written
    for name, folder in (("pins", tiny_data / "pins"), ("lfw", tiny_data / "lfw" / "lfw-deepfunneled")):
        build_crops(folder, tmp_path / "crops160" / f"{name}.npz", template_for_backbone("inception_resnet_v1"))
    assert load_crops(tmp_path / "crops160" / "pins.npz").crops.shape[1:] == (160, 160, 3)
    embedder = Embedder(train(make_config(overrides=settings, crops=str(tmp_path / "crops160"), **common)))
    assert (embedder.card.architecture, embedder.input_size) == ("inception_resnet_v1", 160)
    vectors = embedder.embed(load_crops(tmp_path / "crops160" / "pins.npz").crops[:2])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_run_without_augmentation_trains_and_says_so(tiny_data: Path, tmp_path: Path):
    config = make_config(
        overrides=["backbone=mobilefacenet", "p=4", "k=4", "val_people=3", "max_batches=2", "augment=false"],
        data=str(tiny_data), crops=str(tiny_data / "crops"), out=str(tmp_path / "run"), epochs=1, device="cpu",
    )  # fmt: skip
    assert "no-augment" in Embedder(train(config)).model_id


@pytest.fixture(scope="module")
def tiny_crops150(tiny_data: Path) -> Path:
    """The tiny tree aligned for dlib's port (its own 150-pixel template)."""
    template = template_for_backbone("dlib_resnet")
    for name, folder in (("pins", tiny_data / "pins"), ("lfw", tiny_data / "lfw" / "lfw-deepfunneled")):
        build_crops(folder, tiny_data / "crops150" / f"{name}.npz", template)
    return tiny_data / "crops150"


@pytest.mark.parametrize("recipe", ["wccn", "lda", "triplet"])
def test_frozen_head_changes_only_the_last_layer_and_calibrates(tiny_data: Path, tiny_crops150: Path, recipe: str):
    dim = 32 if recipe == "lda" else 128
    config = HeadConfig(recipe=recipe, dim=dim, epochs=2, p=4, k=4, val_people=3)
    out = train_head(SHIPPED_CARD, tiny_crops150, tiny_data / "lfw", config, tiny_crops150.parent / recipe / "m.json")
    embedder, port = Embedder(out), load_port(SHIPPED_CARD)
    card = embedder.card
    assert card.embedding_size == dim and card.architecture == "dlib_resnet" and card.input_size == 150
    trunk = {key: value for key, value in load_port(out).state_dict().items() if key != "fc.weight"}
    assert all(torch.equal(value, port.state_dict()[key]) for key, value in trunk.items())
    assert set(card.thresholds) >= {"0.01", "0.0001"} and card.training["base_model"] == "dlib-resnet-v1"
    crops = load_crops(tiny_crops150 / "pins.npz").crops[:2]
    assert np.allclose(np.linalg.norm(embedder.embed(crops), axis=1), 1.0, atol=1e-5)


def test_port_fine_tunes_from_its_card_and_exports_a_dlib_resnet(tiny_data: Path, tiny_crops150: Path, tmp_path: Path):
    config = make_config(
        overrides=["backbone=dlib_resnet", f"init_from={SHIPPED_CARD}", "p=4", "k=2", "val_people=3", "max_batches=1"],
        data=str(tiny_data), crops=str(tiny_crops150), out=str(tmp_path / "run"), epochs=1, device="cpu",
    )  # fmt: skip
    embedder = Embedder(train(config))
    assert embedder.card.architecture == "dlib_resnet" and embedder.template == template_for_backbone("dlib_resnet")
    assert "finetuned" in embedder.model_id


@pytest.mark.usefixtures("import_extra")
def test_calibrate_card_writes_thresholds_from_never_trained_people(tiny_data: Path, tiny_crops150: Path, tmp_path):
    card = import_dlib_model(tmp_path / "dlib.json")
    assert card.thresholds == {}
    people = set(read_people(tiny_data / "lfw" / "peopleDevTrain.txt"))
    calibrated = calibrate_card(tmp_path / "dlib.json", tiny_crops150 / "lfw.npz", people, "the tiny tree")
    assert set(calibrated.thresholds) == {"0.01", "0.001", "0.0001", "0.00001"}
    assert Embedder(tmp_path / "dlib.json").card.results["calibration"]["who"] == "the tiny tree"
    with pytest.raises(FaceGateError, match="another template"):
        calibrate_card(tmp_path / "dlib.json", tiny_data / "crops" / "lfw.npz", people, "112-pixel crops")


@pytest.mark.usefixtures("import_extra")
def test_calibrate_card_with_a_cohort_normalises_scores_and_keeps_its_people_out(
    tiny_data: Path, tiny_crops150: Path, tmp_path
):
    import_dlib_model(tmp_path / "dlib.json")
    people = read_people(tiny_data / "lfw" / "peopleDevTrain.txt")
    several = {name for name, photos in people.items() if photos >= 2}
    plan = CohortPlan(several, share=0.5, per_person=2, top_k=3)
    card = calibrate_card(tmp_path / "dlib.json", tiny_crops150 / "lfw.npz", set(people), "tiny", plan)
    embedder = Embedder(tmp_path / "dlib.json")
    cohort = cohort_people(tmp_path / "dlib.json", embedder.card)
    assert embedder.scorer.normalised and embedder.scorer.top_k == 3 and len(cohort) == len(several) // 2
    assert card.score_norm["images"] == len(embedder.scorer.cohort) <= 2 * len(cohort)
    assert card.results["calibration"]["people"] == len(people) - len(cohort)  # the cohort is not calibrated on
    assert card.thresholds["0.0001"] > 1.0  # on the normalised scale, no longer a cosine
