"""The evaluations' typed results (the gate's, the study's, `facegate evaluate`'s and the liveness test's): each
written to its JSON and read back gives the same JSON text (keys, key order, values), the published files included;
fields left unmeasured are absent rather than null, and a key the result does not know is refused where the result
is made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from evaluation.replay import (
    Event,
    Observation,
    Recording,
    TrackEnd,
    Truth,
    dense_sweep,
    latency_summary,
    sweep,
)
from evaluation.results import (
    BootstrapIntervals,
    GalleryEntry,
    GallerySkipped,
    GateReport,
    GridPoint,
    IdentificationResult,
    LatencyStats,
    LivenessResult,
    ScoreSpread,
    StudyResult,
    StudyRow,
    VerificationResult,
)
from evaluation.study_config import StudyConfig
from gate.config import DecisionSettings
from gate.matching.search import Match

DOCS = Path(__file__).resolve().parents[2] / "docs"
FPS = 10.0
TRUTHS = [Truth("ann", "employee", "E1", 0, 19), Truth("sam", "stranger", None, 30, 49)]
DECISION = DecisionSettings(votes_needed=2, window=3, cooldown_s=0.0)


def _events() -> list[Event]:
    ann = [Observation(1, 2 + i, (2 + i) / FPS, Match("E1", "ann", 0.8)) for i in range(4)]
    sam = [Observation(2, 31 + i, (31 + i) / FPS, Match("E1", "ann", 0.55)) for i in range(4)]
    return [*ann, TrackEnd(1, 6, 0.6, 2, 5, 4), *sam, TrackEnd(2, 35, 3.5, 31, 34, 4)]


def _report() -> GateReport:
    """A report made the way evaluation.walkups makes one: replayed parts typed, the rest as dicts it validates."""
    recording = Recording(_events(), FPS, 50, {i: 20.0 + i for i in range(50)}, {i: int(i < 10) for i in range(50)}, {})
    grid = sweep(recording, TRUTHS, DECISION, [(1, 1), (2, 3)], [("low", 0.5), ("high", 0.6)])
    setup = {
        "model_id": "m", "employees": 1, "strangers": 1, "seed": 0, "people_file": "p.txt", "fps": FPS,
        "walk_s": 2.0, "gap_s": 1.0, "frame_size": [480, 360], "min_face_px": 40, "cooldown_s": 10.0,
        "track_timeout_s": 1.5, "configured": {"votes_needed": 2, "window": 3, "early_deny": True, "threshold": 0.6,
        "target_far": "0.0001"}, "thresholds": {"low": 0.5, "high (configured)": 0.6}, "policies": ["1/1", "2/3"],
        "frames": 50, "tracks": 2, "seconds": 1.25,
    }  # fmt: skip
    walk = {
        "person": "ann", "role": "employee", "employee_id": "E1", "first_frame": 0, "last_frame": 19,
        "verdict": "GRANTED", "granted_as": "E1", "score": 0.8, "tracks": 1, "usable_frames": 4, "decision_frame": 3,
        "frames_to_decision": 4, "top1_own_frames": 4, "best_top1_score": 0.8,
    }  # fmt: skip
    return GateReport(
        setup=setup,
        enrolment=[{"person": "ann", "employee_id": "E1", "status": "enrolled", "photos_added": 4}],
        live_matches_replay=True,
        latency_ms=latency_summary(recording),
        grid=grid,
        sweep=dense_sweep(recording, TRUTHS, DECISION, [(2, 3)], np.linspace(0.4, 0.9, 6)),
        walks_at_configured=[walk, {**walk, "person": "sam", "role": "stranger", "employee_id": None, "score": None,
                                    "granted_as": None, "verdict": "NO_USABLE_FACE", "best_top1_score": None}],
    )  # fmt: skip


def test_gate_report_json_round_trip_is_identical() -> None:
    report = _report()
    text = json.dumps(report.to_json(), indent=1)
    again = GateReport.from_json(json.loads(text))
    assert json.dumps(again.to_json(), indent=1) == text
    assert again == report
    data = json.loads(text)
    assert list(data) == ["setup", "enrolment", "live_matches_replay", "latency_ms", "grid", "sweep",
                          "walks_at_configured"]  # fmt: skip
    point = data["grid"][0]
    assert list(point)[:4] == ["votes_needed", "window", "threshold", "threshold_label"]
    assert list(point)[-3:] == ["stray_grants", "rejected_own_passed", "early_deny"]
    assert list(point["far"]) == ["count", "of", "rate", "ci95"] and point["to_grant"]["frames"]["n"] == 1
    assert data["walks_at_configured"][1]["employee_id"] is None  # a null that belongs to the record stays
    assert [(p.threshold_label, p.far.count) for p in again.grid[:2]] == [("low", 1), ("high", 0)]  # sam: 0.55


def test_latency_without_frames_has_no_percentiles_in_its_json() -> None:
    empty = LatencyStats(frames=0)
    assert empty.to_json() == {"frames": 0}
    assert LatencyStats.from_json({"frames": 0}).p50 is None
    full = LatencyStats(frames=2, p50=1.0, p95=2.0, p99=2.0, mean=1.5, max=2.0)
    assert list(full.to_json()) == ["frames", "p50", "p95", "p99", "mean", "max"]


def test_a_renamed_or_missing_field_fails_where_the_result_is_made() -> None:
    point = _report().grid[0].to_json()
    with pytest.raises(ValidationError, match="far_rate"):
        GridPoint.from_json({**point, "far_rate": point.pop("far")})
    with pytest.raises(ValidationError, match="early_deny"):
        GridPoint.from_json({k: v for k, v in _report().grid[0].to_json().items() if k != "early_deny"})


def _study_row(system: str, k: int, **details: object) -> StudyRow:
    metrics = {"accuracy": 0.5, "tar": 0.25, "wrong_accept": 0.0, "far": 0.1, "far_calibration": 0.05,
               "threshold": 0.75, "no_decision": 0.0, "worst_person_accuracy": 0.0, "employee_walks": 4,
               "calibration_walks": 2, "test_stranger_walks": 2}  # fmt: skip
    return StudyRow(system=system, k=k, **metrics, seconds=2.5, **details)


def test_study_result_json_round_trip_keeps_each_systems_own_keys() -> None:
    classifier = {"samples": 16, "pool": 8, "input": [48, 64], "render_seconds": 0.5, "threads": 1}
    result = StudyResult(
        config=StudyConfig(ks=(1,), employees=2, strangers=2),
        model={"card": "c.json", "model_id": "m", "architecture": "resnet18", "held_out_pins": 0, "results": {}},
        people={"employees": ["A", "B"], "calibration": ["C"], "test": ["D"], "seen": ["A", "B", "C", "D"]},
        walks={"employee": 4, "calibration": 2, "test": 2, "frames_per_walk": 3, "frames_without_usable_face": 1,
               "frames": 24, "frame_size": [64, 48], "camera": [640, 480]},
        rows=[_study_row("two-stage", 1, enrol_runs=[0.5, 0.6], threads=1), _study_row("end-to-end", 1, **classifier),
              _study_row("middle", 1, **classifier, cached=True)],
        catch_up={"end-to-end": None, "middle": 1},
        warning="WARNING: a smoke test",
    )  # fmt: skip
    text = json.dumps(result.to_json() | {"command": "facegate study"}, indent=2)
    data = json.loads(text)
    assert list(data["rows"][0])[-3:] == ["seconds", "enrol_runs", "threads"]  # no classifier keys, no nulls
    assert list(data["rows"][1])[:2] == ["system", "k"] and "cached" not in data["rows"][1]
    assert list(data["rows"][2])[-6:] == ["samples", "pool", "input", "render_seconds", "threads", "cached"]
    assert data["config"]["ks"] == [1] and data["config"]["systems"] == ["two-stage", "end-to-end", "middle"]
    again = StudyResult.from_json({k: v for k, v in data.items() if k != "command"})
    assert json.dumps(again.to_json() | {"command": "facegate study"}, indent=2) == text
    assert again.rows[1].input == [48, 64] and again.catch_up == {"end-to-end": None, "middle": 1}


def test_published_evaluation_reads_back_to_the_same_json_text() -> None:
    """docs/evaluation/results.json, as `facegate evaluate --identification` wrote it: the intervals and the
    identification read into their records, with the verification fields, write the same text."""
    text = (DOCS / "evaluation" / "results.json").read_text(encoding="utf-8")
    data = json.loads(text)
    intervals = BootstrapIntervals.from_json(data.pop("confidence_intervals"))
    identification = IdentificationResult.from_json(data.pop("identification"))
    raw = {"scores": np.zeros(0), "labels": np.zeros(0, dtype=bool)}
    result = VerificationResult(**data, **raw, confidence_intervals=intervals, identification=identification)
    assert json.dumps(result.to_json(), indent=2) + "\n" == text
    assert intervals.resamples == 1000 and set(intervals.intervals) >= {"accuracy", "auc", "eer"}
    largest = identification.gallery_sizes["1000"]
    assert isinstance(largest, GalleryEntry) and largest.identities == 1000 and len(largest.cmc) == 20
    assert largest.supported_fpirs() == ["0.01", "0.003", "0.001"]  # 1040 strangers resolve FPIR 0.001


def test_identification_skipped_sizes_read_back_and_a_renamed_key_is_refused() -> None:
    entry = {
        "identities": 2, "mated_probes": 3, "strangers": 4, "probes_without_face": 1, "strangers_without_face": 0,
        "rank1": 0.5, "rank5": 1.0, "cmc": [0.5, 1.0], "fnir_at_fpir": {"0.01": 0.25},
        "thresholds_at_fpir": {"0.01": 0.7}, "fpir_support": {"0.01": 0},
    }  # fmt: skip
    published = {
        "match": "mean", "templates_per_person": 2, "enrolled_people": 2, "not_enrolled_no_face": 0,
        "stranger_people": 2, "stranger_photos": 4,
        "gallery_sizes": {"2": entry, "10": {"skipped": "only 2 people could be enrolled"}},
    }  # fmt: skip
    result = IdentificationResult.from_json(published)
    assert isinstance(result.gallery_sizes["2"], GalleryEntry) and result.gallery_sizes["2"].supported_fpirs() == []
    assert result.gallery_sizes["10"] == GallerySkipped(skipped="only 2 people could be enrolled")
    assert json.dumps(result.to_json()) == json.dumps(published)
    renamed = {k: v for k, v in entry.items() if k != "rank1"} | {"rank_1": 0.5}
    with pytest.raises(ValidationError, match="rank_1"):
        IdentificationResult.from_json({**published, "gallery_sizes": {"2": renamed}})


def test_published_liveness_result_reads_back_to_the_same_json_text() -> None:
    """docs/liveness/liveness.json, as `facegate evaluate-liveness` wrote it, byte for byte."""
    text = (DOCS / "liveness" / "liveness.json").read_text(encoding="utf-8")
    result = LivenessResult.from_json(json.loads(text))
    assert json.dumps(result.to_json(), indent=1) + "\n" == text
    assert result.setup.command is not None and result.setup.clip.fps == 12.0 and result.setup.params.min_frames == 12
    point = result.methods["plane"].points["min_acer"]
    assert point.test.apcer_worst.species == "animated" and point.test.apcer_worst.count == 7
    assert list(point.test.apcer_worst.to_json()) == ["species", "count", "of", "rate", "ci95"]
    assert result.methods["plane"].test_bpcer_by_swing["min_acer"][-1].swing_deg == [4.0, None]
    assert len(result.clips) == 960 and result.clips[0].person == "Angelina_Jolie"


def test_an_empty_score_spread_is_only_its_count() -> None:
    assert ScoreSpread(n=0).to_json() == {"n": 0}
    assert ScoreSpread.from_json({"n": 0}).median is None
