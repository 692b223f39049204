"""The liveness evaluation: its clips (flat replays, 3D-like walk-ups), its thresholds and rates on hand-computed
cases, then a small run of the real detector and tracker through `facegate evaluate-liveness`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from facegate_process import facegate_command

from evaluation.head_motion import FLAT, HEAD, ClipSpec, clip_frames, draw_motion, head_depth, head_turn, plane_turn
from evaluation.liveness import (
    TEST,
    ClipScore,
    bpcer_threshold,
    distribution,
    error_rates,
    min_acer_threshold,
)

SPEC = ClipSpec(width=320, height=240, fps=6.0, walk_s=2.0)
LANDMARKS = np.array([[100, 110], [150, 110], [125, 140], [105, 165], [145, 165]], np.float32)


def photo() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)


def test_min_acer_threshold_by_hand() -> None:
    assert min_acer_threshold([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 3.5  # separated: halfway across the gap
    # flat [1, 5], head [2, 6]: ACER 0.25 at 2 and at 6; the higher (fewer attacks pass) is taken, halfway down
    assert min_acer_threshold([1.0, 5.0], [2.0, 6.0]) == 5.5
    assert min_acer_threshold([7.0], [1.0]) > 7.0  # inverted: rejecting all ties accepting all; rejecting wins


def test_bpcer_threshold_turns_away_at_most_the_target() -> None:
    head = [float(v) for v in range(20, 0, -1)]
    threshold = bpcer_threshold(head, 0.05)
    assert threshold == 2.0 and sum(s < threshold for s in head) / len(head) == 0.05
    assert bpcer_threshold(head, 0.0) == 1.0


def test_error_rates_leave_out_clips_without_verdict() -> None:
    clips = [
        ClipScore("a", TEST, FLAT, 0.001, 30, 3.0),
        ClipScore("b", TEST, FLAT, 0.02, 30, 3.0),
        ClipScore("c", TEST, FLAT, None, 4, 3.0),
        ClipScore("a", TEST, HEAD, 0.03, 30, 5.0),
        ClipScore("b", TEST, HEAD, 0.004, 30, 1.5),
    ]
    rates = error_rates(clips, 0.01)
    assert (rates["apcer"]["count"], rates["apcer"]["of"]) == (1, 2)
    assert (rates["bpcer"]["count"], rates["bpcer"]["of"]) == (1, 2)
    assert rates["no_verdict"] == 1 and rates["apcer"]["ci95"][0] < 0.5 < rates["apcer"]["ci95"][1]
    assert distribution([1.0, 2.0, 3.0])["median"] == 2.0 and distribution([]) == {"n": 0}


def test_clips_are_seeded_and_both_kinds_share_the_approach() -> None:
    def frames(kind: str, seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return list(clip_frames(photo(), LANDMARKS, draw_motion(kind, rng, SPEC), rng, SPEC))

    first = frames(HEAD, 3)
    assert len(first) == SPEC.frames == 12 and first[0].shape == (240, 320, 3) and first[0].dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(first, frames(HEAD, 3), strict=True))
    assert not np.array_equal(first[-1], frames(HEAD, 4)[-1])
    flat, head = draw_motion(FLAT, np.random.default_rng(9), SPEC), draw_motion(HEAD, np.random.default_rng(9), SPEC)
    assert flat.path == head.path and flat.roll_deg == head.roll_deg and flat.cycles == head.cycles
    with pytest.raises(ValueError, match="flat, 3d"):
        draw_motion("mask", np.random.default_rng(0), SPEC)


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


def test_cli_missing_data_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = facegate(
        "--config", str(_config(tmp_path)), "evaluate-liveness", "--out", str(out), "--data", "nowhere", cwd=tmp_path
    )
    assert done.returncode == 2 and "LFW folder not found" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_evaluate_liveness_small_run_writes_json_and_plot(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "liveness"
    done = facegate(
        "--config", str(_config(tmp_path)), "evaluate-liveness", "--train-people", "2", "--test-people", "2",
        "--out", str(out), "--data", str(data_root), "--seed", "1", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split()[:2] == ["threshold", "value"]
    result = json.loads((out / "liveness.json").read_text())
    clips = result["clips"]
    assert len(clips) == 8 and {(c["split"], c["kind"]) for c in clips} == {
        (s, k) for s in ("train", "test") for k in (FLAT, HEAD)
    }
    assert all(c["score"] is not None and c["frames"] >= 12 for c in clips)  # MTCNN found the walker in each
    flat = np.mean([c["score"] for c in clips if c["kind"] == FLAT])
    head = np.mean([c["score"] for c in clips if c["kind"] == HEAD])
    assert flat < head, (flat, head)
    assert set(result["thresholds"]) == {"min_acer", "bpcer_5pct"}
    assert result["points"]["min_acer"]["test"]["apcer"]["of"] == 2
    assert "evaluate-liveness" in result["setup"]["command"] and "threshold" not in result["setup"]["params"]
    assert (out / "liveness.png").stat().st_size > 10_000
