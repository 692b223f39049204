"""The liveness evaluation: the attack species' renderers (planar or not, as they claim), the per-species rates and
thresholds on hand-computed cases, then a small run of the real detector and tracker through
`facegate evaluate-liveness`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegate_process import facegate_command

from evaluation.head_motion import FLAT, HEAD, ClipSpec, clip_frames, draw_motion, head_depth, head_turn, plane_turn
from evaluation.liveness import LivenessReport, LivenessRun
from evaluation.liveness_metrics import bpcer_threshold, distribution, error_rates, min_acer_threshold, species_scores
from evaluation.liveness_species import (
    ANIMATED,
    ATTACKS,
    BEND_MILD,
    BEND_STRONG,
    JITTER,
    SPECIES,
    bend_depth,
    mesh_depth,
    species_clip,
    species_views,
)
from evaluation.results import LivenessResult
from gate.config import validated
from gate.decision.liveness import RESIDUALS, LivenessParams
from gate.errors import FaceGateError

DOCS = Path(__file__).resolve().parents[2] / "docs"
SPEC = ClipSpec(width=320, height=240, fps=6.0, walk_s=2.0)
LANDMARKS = np.array([[100, 110], [150, 110], [125, 140], [105, 165], [145, 165]], np.float32)
FACE_REGION = (slice(70, 190), slice(70, 180))  # rows, columns of the 250 px photo around the face
EYES_NOSE = LANDMARKS[:3]  # one triangle of the animated mesh


def photo() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)


def where_from(species: str) -> list[np.ndarray]:
    """Each view of `species` rendered from a photo whose pixels hold their own (x, y): (H, W, 2) float32 maps
    of which photo point each view pixel shows (bilinear resampling keeps a linear ramp exact)."""
    ys, xs = np.mgrid[0:250, 0:250].astype(np.float32)
    coordinates = np.dstack([xs, ys, np.zeros_like(xs)])
    motion = draw_motion(HEAD if species in (ANIMATED, HEAD) else FLAT, np.random.default_rng(1), SPEC)
    views = species_views(species, coordinates, LANDMARKS, motion, 8, np.random.default_rng(2))
    return [view[..., :2] for view in views]


def plane_misfit(first: np.ndarray, later: np.ndarray, inside: np.ndarray) -> float:
    """Mean distance (photo pixels) by which the best homography misses the motion of the points in `inside`
    between two views: 0 for anything flat."""
    source, target = first[inside].astype(np.float64), later[inside].astype(np.float64)
    homography, _ = cv2.findHomography(source, target, 0)
    return float(np.linalg.norm(cv2.perspectiveTransform(source[None], homography)[0] - target, axis=1).mean())


def region_mask(region: tuple[slice, slice] | np.ndarray) -> np.ndarray:
    mask = np.zeros((250, 250), bool)
    if isinstance(region, tuple):
        mask[region] = True
    else:
        centroid = region.mean(axis=0)
        shrunk = np.round(centroid + 0.7 * (region - centroid)).astype(np.int32)
        filled = np.zeros((250, 250), np.uint8)
        cv2.fillConvexPoly(filled, shrunk, 1)
        mask = filled.astype(bool)
    return mask


def test_flat_and_jittered_photos_move_as_one_plane_bent_and_animated_ones_do_not() -> None:
    face = region_mask(FACE_REGION)
    views = {species: where_from(species) for species in SPECIES}
    misfit = {species: plane_misfit(v[0], v[-1], face) for species, v in views.items()}
    assert misfit["flat"] < 0.01 and misfit[JITTER] < 0.01, misfit
    assert 0.1 < misfit[BEND_MILD] < misfit[BEND_STRONG] < misfit[ANIMATED], misfit
    assert misfit[HEAD] > 1.0 and misfit[ANIMATED] > 1.0, misfit
    steps = {s: [np.abs(b - a)[face].mean() for a, b in zip(views[s], views[s][1:], strict=False)] for s in SPECIES}
    assert min(steps[JITTER]) > 2 * max(steps["flat"])  # each jittered frame jumps: a warp of its own


def test_animated_photo_is_warped_by_a_depth_planar_over_each_mesh_triangle() -> None:
    """The animation turns a piecewise planar surface through the landmarks, not the smooth 3D-like head: within
    the eyes-nose triangle its depth is exactly linear, the head's is not; at the landmarks the two agree."""
    mesh, head = mesh_depth((250, 250), LANDMARKS), head_depth((250, 250), LANDMARKS)
    inside = region_mask(EYES_NOSE)
    ys, xs = np.nonzero(inside)
    design = np.c_[xs, ys, np.ones(len(xs))]

    def plane_error(depth: np.ndarray) -> float:
        values = depth[inside].astype(np.float64)
        return float(np.abs(design @ np.linalg.lstsq(design, values, rcond=None)[0] - values).max())

    assert plane_error(mesh) < 0.01 and plane_error(head) > 1.0
    at = np.round(LANDMARKS).astype(int)
    assert np.allclose(mesh[at[:, 1], at[:, 0]], head[at[:, 1], at[:, 0]], atol=0.5)


def test_bent_print_curves_away_from_its_crest() -> None:
    depth = bend_depth((250, 250), LANDMARKS, 2.5)  # radius 125 px: the photo's edges are a quarter turn round
    crest = round(float(LANDMARKS[:, 0].mean()))
    assert depth[0, crest] == 0 and np.all(depth <= 0) and np.allclose(depth[0], depth[-1])
    assert depth[100, crest + 50] == pytest.approx(np.sqrt(125**2 - 50**2) - 125, abs=1e-3)
    with pytest.raises(ValueError, match="flat, jitter"):
        rng = np.random.default_rng(0)
        species_views("mask", photo(), LANDMARKS, draw_motion(FLAT, rng, SPEC), 2, rng)


def test_error_rates_per_species_by_hand() -> None:
    scored = [("flat", 0.001), ("flat", 0.02), ("flat", None), ("jitter", 0.03), ("jitter", 0.04)]
    scored += [(HEAD, 0.03), (HEAD, 0.004), (HEAD, 0.05), (HEAD, None)]
    by_species = species_scores(scored)
    assert by_species == {"flat": [0.001, 0.02], "jitter": [0.03, 0.04], HEAD: [0.03, 0.004, 0.05]}
    rates = error_rates(by_species, 0.01, HEAD)
    assert (rates.apcer["flat"].count, rates.apcer["flat"].of) == (1, 2)
    assert rates.apcer_worst.species == "jitter" and rates.apcer_worst.rate == 1.0
    assert (rates.bpcer.count, rates.bpcer.of) == (1, 3)
    low, high = rates.apcer["flat"].ci95
    assert low == pytest.approx(0.0945, abs=1e-3) and high == pytest.approx(0.9055, abs=1e-3)  # Wilson, 1 of 2
    tie = error_rates({"flat": [0.02], "jitter": [0.03], HEAD: [0.05]}, 0.01, HEAD)
    assert tie.apcer_worst.species == "flat"  # equal rates: the first species listed
    assert distribution([1.0, 2.0, 3.0]).median == 2.0 and distribution([]).to_json() == {"n": 0}


@pytest.mark.usefixtures("evaluate_extra")
def test_published_report_is_rebuilt_from_its_clips_and_thresholds() -> None:
    from evaluation.liveness_report import text_table  # matplotlib: the evaluate extra

    """docs/liveness/liveness.json: its clips and each method's thresholds give back every rate, band and spread
    in it, byte for byte, and the table of those rates."""
    text = (DOCS / "liveness" / "liveness.json").read_text(encoding="utf-8")
    published = LivenessResult.from_json(json.loads(text))
    thresholds = {name: method.thresholds for name, method in published.methods.items()}
    report = LivenessReport(published.setup, published.clips, thresholds)
    assert json.dumps(report.result().to_json(), indent=1) + "\n" == text
    table = text_table(report).splitlines()
    assert table[0] == "method plane, threshold lowest ACER on train: 0.02380"
    worst = "  APCER, worst species               10.0 % (3/30; 3.5-25.6) animated 14.0 % (7/50; 7.0-26.2) animated"
    assert table[7] == worst


def test_min_acer_threshold_takes_the_worst_species_by_hand() -> None:
    assert min_acer_threshold({"flat": [1.0, 2.0, 3.0]}, [4.0, 5.0, 6.0]) == 3.5  # separated: halfway across
    # flat [1, 5], head [2, 6]: ACER 0.25 at 2 and at 6; the higher (fewer attacks pass) is taken, halfway down
    assert min_acer_threshold({"flat": [1.0, 5.0]}, [2.0, 6.0]) == 5.5
    assert min_acer_threshold({"flat": [7.0]}, [1.0]) > 7.0  # inverted: rejecting all ties accepting all
    # flat alone would be cut at 2.5; the jitter species reaches 4, so the worst-species ACER moves the cut above it
    assert min_acer_threshold({"flat": [1.0, 2.0], "jitter": [1.5, 4.0]}, [3.0, 5.0, 6.0, 7.0]) == 4.5


def test_bpcer_threshold_turns_away_at_most_the_target() -> None:
    head = [float(v) for v in range(20, 0, -1)]
    threshold = bpcer_threshold(head, 0.05)
    assert threshold == 2.0 and sum(s < threshold for s in head) / len(head) == 0.05
    assert bpcer_threshold(head, 0.0) == 1.0


def test_species_clips_are_seeded_and_share_the_approach() -> None:
    first = frames_of(JITTER, 3)
    assert len(first) == SPEC.frames == 12 and first[0].shape == (240, 320, 3) and first[0].dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(first, frames_of(JITTER, 3), strict=True))
    assert not np.array_equal(first[-1], frames_of(JITTER, 4)[-1])
    paths = {s: species_clip(s, photo(), LANDMARKS, np.random.default_rng(9), SPEC).motion.path for s in SPECIES}
    assert len(set(paths.values())) == 1 and set(ATTACKS) | {HEAD} == set(SPECIES)
    # the flat replay and the 3D-like walk-up are the clips the earlier evaluation rendered, frame for frame
    for kind in (FLAT, HEAD):
        rng = np.random.default_rng(7)
        before = list(clip_frames(photo(), LANDMARKS, draw_motion(kind, rng, SPEC), rng, SPEC))
        assert all(np.array_equal(a, b) for a, b in zip(before, frames_of(kind, 7), strict=True))


def frames_of(species: str, seed: int) -> list[np.ndarray]:
    return list(species_clip(species, photo(), LANDMARKS, np.random.default_rng(seed), SPEC).frames)


def test_head_depth_peaks_at_the_nose_and_turns_move_it_most() -> None:
    depth = head_depth((250, 250), LANDMARKS)
    peak = np.unravel_index(np.argmax(depth), depth.shape)
    assert np.hypot(peak[1] - LANDMARKS[2, 0], peak[0] - LANDMARKS[2, 1]) < 15
    assert abs(depth[5, 5]) < 1e-3 and depth.max() > 1.5 * 50  # 50 px between the eyes: head 1.5 deep plus the nose
    image = photo()
    assert np.array_equal(plane_turn(image, 0, 0, 0), image)
    assert np.abs(head_turn(image, depth, 0, 0, 0).astype(int) - image).max() <= 1
    ramp = np.repeat(np.tile(np.arange(250, dtype=np.uint8)[None, :, None], (250, 1, 1)), 3, axis=2)  # value = x
    shift = np.abs(head_turn(ramp, depth, 8, 0, 0).astype(float) - ramp)[..., 0]  # pixels moved sideways
    nose = shift[int(LANDMARKS[2, 1]), int(LANDMARKS[2, 0])]
    assert 10 < nose < 20  # about (1.5 + 0.4) x 50 px x sin(8 degrees) = 13 px
    assert shift[10, 125] < 3 and shift[125, 40] < nose / 2  # the photo's backdrop, the cheek's edge: less


def facegate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = facegate_command(*args)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/unused.db"\n')
    return path


@pytest.mark.usefixtures("evaluate_extra")
def test_cli_missing_data_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = facegate(
        "--config", str(_config(tmp_path)), "evaluate-liveness", "--out", str(out), "--data", "nowhere", cwd=tmp_path
    )
    assert done.returncode == 2 and "LFW folder not found" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.usefixtures("evaluate_extra")
def test_evaluate_liveness_small_run_writes_json_and_plot(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "liveness"
    done = facegate(
        "--config", str(_config(tmp_path)), "evaluate-liveness", "--train-people", "1", "--test-people", "1",
        "--out", str(out), "--data", str(data_root), "--seed", "1", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("method plane, threshold lowest ACER on train")
    assert "APCER, worst species" in done.stdout and "BPCER, 3D-like walk-ups" in done.stdout
    text = (out / "liveness.json").read_text()
    result = LivenessResult.from_json(json.loads(text))  # every key known, none missing
    assert json.dumps(result.to_json(), indent=1) + "\n" == text
    clips = result.clips
    methods = tuple(RESIDUALS)
    assert {(c.split, c.kind, c.method) for c in clips} == {
        (split, species, method) for split in ("train", "test") for species in SPECIES for method in methods
    }
    assert len(clips) == 2 * len(SPECIES) * len(methods)
    assert all(c.score is not None and c.frames >= 12 for c in clips)  # MTCNN found the walker in each
    for method in methods:
        scores = {c.kind: c.score for c in clips if c.method == method and c.split == "test"}
        assert scores["flat"] < scores[HEAD], (method, scores)
        entry = result.methods[method]
        assert set(entry.thresholds) == {"min_acer", "bpcer_5pct"}
        test_point = entry.points["min_acer"].test
        assert set(test_point.apcer) == set(ATTACKS) and test_point.bpcer.of == 1
        assert test_point.apcer_worst.rate == max(r.rate or 0.0 for r in test_point.apcer.values())
    assert result.setup.command is not None and "evaluate-liveness" in result.setup.command
    assert "threshold" not in json.loads(text)["setup"]["params"]
    assert (out / "liveness.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"species": ["flat", "jitter"]}, "liveness: species: Value error, needs 3d and an attack (flat, jitter"),
        ({"species": ["3d", "hologram"]}, "liveness: species: Value error, unknown species 'hologram'; valid: flat"),
        ({"methods": ["optical"]}, "liveness: methods: Value error, unknown method 'optical'; valid: plane"),
        ({"methods": []}, "liveness: methods: Tuple should have at least 1 item"),
        ({"clip": {"fps": 6.0, "walk_s": 1.0}}, "(root): Value error, a clip of 1 s at 6 fps has 6 frames, a verdict"),
        ({"clip": {"fps": 0}}, "liveness: clip.fps: Input should be greater than 0"),
        ({"clip": {"tilt_deg": [10, 2]}}, "liveness: clip.tilt_deg: Value error, (10.0, 2.0): the smallest"),
        ({"train_people": 0}, "liveness: train_people: Input should be greater than or equal to 1"),
        ({"params": {"baseline": 12}}, "liveness: params: Value error, min_frames (12) must exceed baseline (12)"),
        ({"frames": 3}, "liveness: frames: unknown key; valid: lfw_dir, train_people"),
    ],
)
def test_liveness_run_refuses_a_bad_setting_in_one_line_naming_it(values: dict, message: str) -> None:
    with pytest.raises(FaceGateError) as error:
        validated(LivenessRun, {"lfw_dir": "lfw", **values}, "liveness")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_liveness_run_defaults_and_params_frozen() -> None:
    run = validated(LivenessRun, {"lfw_dir": "lfw"}, "liveness")
    assert (run.train_people, run.test_people, run.species, run.methods) == (60, 100, SPECIES, tuple(RESIDUALS))
    assert run.params == LivenessParams() and run.params.threshold == 0.0052 and run.clip.frames == 30
    with pytest.raises(ValueError, match="frozen"):
        run.params.min_frames = 3  # type: ignore[misc]
