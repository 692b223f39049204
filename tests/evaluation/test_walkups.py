"""The gate-level walk-up evaluation: replay and metrics on hand-made match sequences (no networks, no datasets),
then one small run of the real pipeline through `facegate evaluate-gate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from facegate_process import facegate_command

from evaluation.intervals import wilson
from evaluation.replay import (
    NO_FACE,
    Event,
    Observation,
    Recording,
    TrackEnd,
    Truth,
    latency_summary,
    replay,
    stray_grants,
    summarize,
    sweep,
    threshold_grid,
    walk_outcomes,
    walk_tracks,
)
from evaluation.results import GateReport
from evaluation.walkups import DEFAULT_POLICIES, WalkupRun, check_policies, pick_walkers
from facegate.cli import main
from facegate.commands.evaluate_gate import parse_policies
from gate.config import DecisionSettings, validated
from gate.decision.policy import Verdict
from gate.errors import FaceGateError
from gate.matching.search import Match
from gate.model.card import read_card

FPS = 10.0
POLICY = DecisionSettings(votes_needed=3, window=5, cooldown_s=10.0)


def hit(employee_id: str, score: float) -> Match:
    return Match(employee_id, employee_id.lower(), score)


def track(track_id: int, first: int, matches: list[Match | None], ended: int | None = None) -> list[Event]:
    """A track with one usable frame per match from frame `first` on, ending at frame `ended` (default: next)."""
    events: list[Event] = [Observation(track_id, first + i, (first + i) / FPS, m) for i, m in enumerate(matches)]
    last = first + max(len(matches), 1) - 1
    end = last + 1 if ended is None else ended
    events.append(TrackEnd(track_id, end, end / FPS, first, last, len(matches)))
    return events


def recording(events: list[Event], latency: dict[int, float] | None = None) -> Recording:
    frames = max(e.frame for e in events) + 1
    return Recording(events, FPS, frames, latency or {}, {}, {})


def outcomes(truths: list[Truth], events: list[Event], policy: DecisionSettings = POLICY, threshold: float = 0.6):
    decided = replay(events, policy, threshold)
    return walk_outcomes(truths, recording(events).tracks, decided)


# --- replay and walk outcomes, computed by hand ------------------------------------------------------------------

TRUTHS = [
    Truth("alice", "employee", "E1", 0, 19),
    Truth("sam", "stranger", None, 30, 49),
    Truth("bob", "employee", "E2", 200, 219),
    Truth("carol", "employee", "E3", 300, 319),
    Truth("dan", "stranger", None, 400, 419),
]
EVENTS = (
    track(1, 2, [hit("E1", 0.8)] * 6)  # alice: granted on her 3rd usable frame, frame 4
    + track(2, 30, [hit("E2", 0.3), hit("E2", 0.65), hit("E2", 0.7), hit("E2", 0.75)])  # sam let in as E2, frame 33
    + track(3, 200, [hit("E2", 0.5)] * 5)  # bob below threshold in a full window: denied at frame 204 (20 s later)
    + track(4, 300, [hit("E1", 0.9)] * 3)  # carol taken for alice, 30 s after alice's grant: no cooldown
)  # dan: nobody seen at all


def test_replay_outcomes_by_hand():
    walks = outcomes(TRUTHS, EVENTS)
    assert [(w.person, w.verdict, w.granted_as, w.frames_to_decision) for w in walks] == [
        ("alice", Verdict.GRANTED, "E1", 5),
        ("sam", Verdict.GRANTED, "E2", 4),
        ("bob", Verdict.BELOW_THRESHOLD, None, 5),
        ("carol", Verdict.GRANTED, "E1", 3),
        ("dan", NO_FACE, None, None),
    ]
    summary = summarize(TRUTHS, walks, FPS, {4: 50.0})
    assert (summary.far.count, summary.far.of) == (1, 2)  # the stranger let in
    assert (summary.misidentification.count, summary.misidentification.of) == (1, 3)
    assert (summary.frr.count, summary.tar.count) == (1, 1)  # bob
    assert (summary.wrong_opens.count, summary.wrong_opens.of) == (2, 5)
    assert (summary.fta_strangers.count, summary.fta_employees.count) == (1, 0)
    grant = summary.to_grant  # only alice's correct grant: 5 frames at 10 fps = 500 ms, + 50 ms processing
    assert (grant.frames.median, grant.video_ms.median, grant.ms.median) == (5, 500, 550)
    assert summary.employee_verdicts == {"BELOW_THRESHOLD": 1, "GRANTED": 2}


def test_replay_matches_policy_for_each_grid_point_and_counts_grants_once():
    assert replay(EVENTS, POLICY, 0.6)[1].frame == 4
    one = replay(EVENTS, POLICY.model_copy(update={"votes_needed": 1, "window": 1}), 0.6)
    assert one[1].frame == 2 and one[2].verdict == Verdict.BELOW_THRESHOLD  # 1/1: sam's first frame (0.3) denies him
    assert one[2].frame == 30


def test_tie_between_two_people_is_no_agreement():
    truths = [Truth("erin", "employee", "E1", 0, 30)]
    events = track(1, 0, [hit("E1", 0.8), hit("E2", 0.8), hit("E1", 0.8), hit("E2", 0.8)], ended=20)
    walks = outcomes(truths, events)
    assert (walks[0].verdict, walks[0].granted_as, walks[0].decision_frame) == (Verdict.NO_AGREEMENT, None, 20)
    tie = outcomes(truths, events, DecisionSettings(votes_needed=2, window=2))
    assert tie[0].verdict == Verdict.NO_AGREEMENT  # one vote each in every window of two
    summary = summarize(truths, walks, FPS, {})
    assert summary.frr.count == 1 and summary.employee_verdicts == {"NO_AGREEMENT": 1}


def test_walk_split_into_two_tracks_is_granted_once():
    truths = [Truth("fay", "employee", "E1", 0, 39)]
    first = track(1, 2, [hit("E1", 0.8)] * 2)  # lost after two frames: ends undecided (NO_AGREEMENT)
    second = track(2, 20, [hit("E1", 0.8)] * 3)  # found again: granted at frame 22
    walks = outcomes(truths, first + second)
    assert (walks[0].verdict, walks[0].granted_as, walks[0].tracks) == (Verdict.GRANTED, "E1", 2)
    assert walks[0].frames_to_decision == 23 and walks[0].usable_frames == 5
    granted_then_cooldown = track(1, 2, [hit("E1", 0.8)] * 3) + track(2, 20, [hit("E1", 0.8)] * 3)
    decided = replay(granted_then_cooldown, POLICY, 0.6)
    assert [decided[1].verdict, decided[2].verdict] == [Verdict.GRANTED, Verdict.COOLDOWN]
    walks = walk_outcomes(truths, recording(granted_then_cooldown).tracks, decided)
    assert (walks[0].granted_as, walks[0].frames_to_decision) == ("E1", 5)  # the first grant counts
    assert summarize(truths, walks, FPS, {}).split_walks == 1


def test_walk_with_faces_but_no_usable_frame_fails_to_acquire():
    truths = [Truth("gus", "employee", "E1", 0, 29), Truth("hal", "stranger", None, 40, 69)]
    events: list[Event] = [TrackEnd(1, 15, 1.5, 3, 12, 0)]  # seen in 10 frames, all rejected by the quality gate
    walks = outcomes(truths, events)
    assert [(w.verdict, w.tracks) for w in walks] == [(NO_FACE, 1), (NO_FACE, 0)]
    summary = summarize(truths, walks, FPS, {})
    assert summary.fta_employees.count == 1 and summary.frr.count == 1
    assert summary.fta_strangers.count == 1 and summary.far.count == 0
    assert summary.to_grant.frames.n == 0


def test_stranger_let_in_as_employee_puts_that_employee_in_cooldown():
    truths = [Truth("ivan", "stranger", None, 0, 29), Truth("judy", "employee", "E2", 40, 69)]
    events = track(1, 5, [hit("E2", 0.7)] * 3) + track(2, 45, [hit("E2", 0.9)] * 3)  # 4 s apart, cooldown 10 s
    walks = outcomes(truths, events)
    assert [(w.verdict, w.granted_as) for w in walks] == [(Verdict.GRANTED, "E2"), (Verdict.COOLDOWN, None)]
    summary = summarize(truths, walks, FPS, {})
    assert summary.far.count == 1 and summary.frr.count == 1


def test_sweep_raising_threshold_lowers_far():
    truths = [Truth("kim", "employee", "E1", 0, 29), Truth("leo", "stranger", None, 40, 69)]
    events = track(1, 2, [hit("E1", 0.75)] * 5) + track(2, 42, [hit("E1", 0.55)] * 5)  # stranger resembles E1
    points = sweep(recording(events), truths, POLICY.model_copy(update={"cooldown_s": 0.0}), [(3, 5), (1, 1)],
                   [("low", 0.5), ("high", 0.6), ("strict", 0.8)])  # fmt: skip
    table = {(p.votes_needed, p.threshold_label): (p.far.count, p.frr.count) for p in points}
    assert table == {
        (3, "low"): (1, 0),  # the stranger's 0.55 passes 0.5: let in
        (3, "high"): (0, 0),
        (3, "strict"): (0, 1),  # kim's 0.75 fails 0.8: kept out
        (1, "low"): (1, 0),
        (1, "high"): (0, 0),
        (1, "strict"): (0, 1),
    }
    assert points[0].far.rate > points[1].far.rate


def test_full_window_below_threshold_denies_before_the_good_frames():
    truths = [Truth("mia", "employee", "E1", 0, 29)]
    events = track(1, 0, [hit("E1", 0.5)] * 5 + [hit("E1", 0.7)] * 5)  # far away first, then close and clear
    points = sweep(recording(events), truths, POLICY, [(3, 5), (3, 10)], [("t", 0.6)])
    assert [(p.frr.count, p.rejected_own_passed.count) for p in points] == [(1, 1), (0, 0)]
    assert points[1].to_grant.frames.median == 8  # granted on the third good frame


def test_walk_tracks_by_frame_range_and_stray_grants():
    truths = [Truth("a", "employee", "E1", 10, 20), Truth("b", "stranger", None, 30, 40)]
    events = track(1, 12, [hit("E1", 0.9)] * 3) + track(2, 25, [hit("E1", 0.9)] * 3) + track(3, 40, [None])
    tracks = recording(events).tracks
    assert walk_tracks(truths, tracks) == ([[1], [3]], [2])  # track 2 started between walks
    decided = replay(events, POLICY.model_copy(update={"cooldown_s": 0.0}), 0.6)
    assert stray_grants(truths, recording(events), decided) == 1
    assert decided[3].verdict == Verdict.UNKNOWN_FACE  # no gallery match at all, then the track ended


def test_latency_percentiles_and_budget():
    latency = {i: float(i + 1) for i in range(100)}  # 1 .. 100 ms
    rec = Recording([], FPS, 100, latency, {i: int(i >= 50) for i in range(100)}, {})
    summary = latency_summary(rec)
    everything = summary.all_frames
    assert everything.frames == 100 and everything.p50 == pytest.approx(50.5)
    assert everything.p50 < everything.p95 < everything.p99 <= everything.max == 100
    assert summary.frames_with_face.frames == 50 and summary.frames_with_face.p50 == pytest.approx(75.5)
    assert summary.frame_budget_ms == 100 and summary.over_budget.count == 0


def test_wilson_interval():
    assert wilson(0, 40)[0] == 0 and wilson(0, 40)[1] == pytest.approx(3.8415 / 43.8415, rel=1e-4)
    low, high = wilson(5, 10)
    assert low < 0.5 < high and low == pytest.approx(1 - high)
    assert wilson(0, 0) == (0.0, 1.0)


def test_threshold_grid_marks_the_configured_threshold():
    card = read_card(Path(__file__).resolve().parents[2] / "gate" / "models" / "default.json")
    grid = threshold_grid(card, DecisionSettings())
    assert [label for label, _ in grid] == ["FAR 0.01", "FAR 0.001", "FAR 0.0001 (configured)", "FAR 0.00001"]
    assert [value for _, value in grid] == sorted(value for _, value in grid)
    override = threshold_grid(card, DecisionSettings(threshold=0.42, allow_loose_threshold=True))
    assert ("configured", 0.42) in override and len(override) == 5


def test_policies_are_checked():
    assert parse_policies("1/1, 3/5,5/10") == [(1, 1), (3, 5), (5, 10)]
    for bad in ("3", "5/3", "0/2", "a/b", "2/101", ""):
        with pytest.raises(FaceGateError, match="--policies"):
            parse_policies(bad)
    with pytest.raises(FaceGateError, match="N <= M"):
        check_policies([(4, 2)])
    assert check_policies([(1, 1), (1, 1), (2, 3)]) == [(1, 1), (2, 3)]
    run = {"lfw_dir": "lfw", "people_file": "people.txt", "employees": 2, "strangers": 1}
    assert validated(WalkupRun, run | {"policies": [[1, 1], [2, 3], [1, 1]]}, "run").policies == ((1, 1), (2, 3))
    assert validated(WalkupRun, run, "run").policies == DEFAULT_POLICIES
    with pytest.raises(FaceGateError, match=r"run: policies: Value error, policy 4/2: need 1 <= N <= M"):
        validated(WalkupRun, run | {"policies": [(4, 2)]}, "run")
    with pytest.raises(FaceGateError, match=r"run: fps: Input should be less than or equal to 120 \(got 240\)"):
        validated(WalkupRun, run | {"fps": 240}, "run")


def _fake_lfw(root: Path, counts: dict[str, int]) -> tuple[Path, Path]:
    images = root / "lfw-deepfunneled"
    for name, count in counts.items():
        (images / name).mkdir(parents=True)
        for i in range(count):
            (images / name / f"{name}_{i + 1:04d}.jpg").write_bytes(b"")
    people = root / "peopleDevTest.txt"
    people.write_text(f"{len(counts)}\n" + "".join(f"{name}\t{count}\n" for name, count in counts.items()))
    return images, people


def test_pick_walkers_seeded_disjoint_and_walk_photo_never_enrolled(tmp_path: Path):
    images, people = _fake_lfw(tmp_path, {"A": 3, "B": 2, "C": 1, "D": 7, "E": 1, "F": 2})
    walkers = pick_walkers(images, people, 3, 2, seed=4)
    assert walkers == pick_walkers(images, people, 3, 2, seed=4)
    assert walkers != pick_walkers(images, people, 3, 2, seed=5)
    employees = [w for w in walkers if w.role == "employee"]
    strangers = [w for w in walkers if w.role == "stranger"]
    assert len(employees) == 3 and len(strangers) == 2
    assert not {w.person for w in employees} & {w.person for w in strangers}
    for walker in employees:
        assert walker.walk_photo not in walker.enrol_photos and 1 <= len(walker.enrol_photos) <= 4
        assert walker.walk_photo.parent.name == walker.person
    counts = {"A": 3, "B": 2, "D": 7, "F": 2}
    assert all(len(w.enrol_photos) == min(4, counts[w.person] - 1) for w in employees)
    with pytest.raises(FaceGateError, match="4 people with 2\\+ photos"):
        pick_walkers(images, people, 5, 1)
    with pytest.raises(FaceGateError, match="left for strangers"):
        pick_walkers(images, people, 4, 3)
    with pytest.raises(FaceGateError, match="at least 1 employee and 1 stranger"):
        pick_walkers(images, people, 0, 3)
    with pytest.raises(FaceGateError, match="LFW folder not found"):
        pick_walkers(tmp_path / "nowhere", people, 1, 1)


# --- the command ----------------------------------------------------------------------------------------------------


def facegate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = facegate_command(*args)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/unused.db"\n')
    return path


@pytest.mark.usefixtures("evaluate_extra")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policies", "5/3"], "--policies"),
        (["--data", "no-such-folder"], "LFW folder not found"),
        (["--employees", "0"], "evaluate-gate: --employees: Input should be greater than or equal to 1 (got 0)"),
        (["--walk-seconds", "60"], "evaluate-gate: --walk-seconds: Input should be less than or equal to 30"),
    ],
)
def test_cli_bad_input_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, args: list[str], message: str
):
    options = {"--employees": "2", "--strangers": "1", "--out": str(tmp_path / "out"), "--data": str(tmp_path)}
    options.update(zip(args[::2], args[1::2], strict=True))
    _fake_lfw(tmp_path / "lfw", {"A": 2, "B": 1})  # only reached when the other checks pass
    flat = [item for pair in options.items() for item in pair]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["facegate", "--config", str(_config(tmp_path)), "evaluate-gate", *flat])
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 2, stderr
    assert message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("evaluate_extra")
def test_evaluate_gate_end_to_end_small(tmp_path: Path, data_root: Path):
    out = tmp_path / "eval"
    done = facegate(
        "--config", str(_config(tmp_path)), "evaluate-gate", "--employees", "2", "--strangers", "1",
        "--out", str(out), "--data", str(data_root), "--policies", "1/1,3/5", "--seed", "3", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "early_deny = true (configured):"
    assert done.stdout.splitlines()[1].split()[:3] == ["N/M", "threshold", "stranger"]
    written = (out / "gate.json").read_text()
    report = json.loads(written)
    assert json.dumps(GateReport.from_json(report).to_json(), indent=1) + "\n" == written  # read back, unchanged
    assert report["live_matches_replay"] is True  # the replay reproduces the running gate's own decisions
    walks = report["walks_at_configured"]
    assert len(walks) == 3 and sorted(w["role"] for w in walks if w["role"] != "refused")[-1] == "stranger"
    assert all(w["verdict"] in {*Verdict, NO_FACE} for w in walks)
    assert all((w["frames_to_decision"] is None) == (w["verdict"] == NO_FACE) for w in walks)
    assert len(report["grid"]) == 2 * 2 * len(report["setup"]["thresholds"]) == 16  # N/M x threshold x early deny
    assert [p["early_deny"] for p in report["grid"]] == [True] * 8 + [False] * 8
    # watching longer can only add grants here (one walk each, no cooldown between them in this small run)
    for early, late in zip(report["grid"][:8], report["grid"][8:], strict=True):
        assert late["tar"]["count"] >= early["tar"]["count"]
    assert {p["threshold_label"] for p in report["grid"]} >= {"FAR 0.01", "FAR 0.001"}
    for point in report["grid"]:
        enrolled = sum(w["role"] == "employee" for w in walks)
        assert point["far"]["of"] == 1 and point["frr"]["of"] == point["misidentification"]["of"] == enrolled
        assert point["frr"]["count"] + point["tar"]["count"] + point["misidentification"]["count"] == point["frr"]["of"]
    latency = report["latency_ms"]["all_frames"]
    assert latency["frames"] == report["setup"]["frames"] > 0
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert set(report["sweep"]["curves"]) == {"1/1", "3/5"}
    assert (out / "gate.png").stat().st_size > 10_000
    markdown = (out / "gate-report.md").read_text()
    assert "| N/M |" in markdown and "p95 ms" in markdown and "evaluate-gate" in markdown
    assert "early_deny = false instead" in markdown
