"""The demo: a small walk-up run (evaluation.walkups) of LFW people past the real gate, tabulated.

Some people are enrolled from a few photos, they and some strangers walk up in a generated turnstile video, the
real gate watches it (annotating the video), and each walk becomes a row: enrolled or not, the decision, why.
LFW is read from a folder of <Person>/<Person>_NNNN.jpg: $FACEGATE_DATA/lfw/lfw-deepfunneled where the project's
datasets are (default ../shared/datasets); elsewhere scikit-learn's LFW fetcher (the `demo` extra) downloads
the funneled set (about 230 MB, once) into data/lfw.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.turnstile import Walk
from evaluation.walkups import pick_folder_walkers, walk_past_gate, walkup_spec
from gate.config import Settings
from gate.door.actuators import LogActuator
from gate.errors import FaceGateError
from gate.model.embedder import Embedder
from gate.runtime.parts import Runtime
from gate.runtime.results import GateSummary, TrackReport
from gate.runtime.run import run_gate
from gate.vision.sources import VideoFileSource
from training.datasets import lfw_images

if TYPE_CHECKING:
    from gate.store.events import AccessEventRecord

log = logging.getLogger(__name__)

DOWNLOAD_ROOT = Path("data/lfw")
FPS = 12
WALK_S = 2.5
OUTPUTS = ("annotated.mp4", "events.json", "table.csv")  # beside the walk-up's own database, index and video
HEADER = ("person", "enrolled", "decision", "reason", "frames", "score", "door opened for")


@dataclass(frozen=True)
class DemoRow:
    """One walk of the demo: who, whether they were enrolled, and what the gate decided."""

    person: str
    enrolled: str  # "yes", "no" (a stranger) or "refused: <why>"
    decision: str  # "granted", "denied" or "none" (no usable face)
    reason: str
    frames_to_decision: int | None
    score: float | None
    granted_as: str  # the enrolled person the door opened for ("" when denied)


@dataclass(frozen=True)
class DemoResult:
    rows: list[DemoRow]
    summary: GateSummary
    video: Path
    annotated: Path
    events: Path
    table: Path


def find_lfw() -> Path:
    """The LFW image folder: the project's datasets if present, else a download (once) with scikit-learn."""
    local = lfw_images()
    if local.is_dir():
        return local
    try:
        from sklearn.datasets import fetch_lfw_people  # the optional `demo` extra; the gate never downloads
    except ImportError:
        raise FaceGateError(f"LFW not found at {local}: give --data, or pip install 'facegate[demo]'") from None
    log.info("%s not found: downloading LFW (funneled, about 230 MB) into %s", local, DOWNLOAD_ROOT)
    try:  # min_faces_per_person only limits what scikit-learn decodes; the whole set is unpacked
        fetch_lfw_people(data_home=str(DOWNLOAD_ROOT), funneled=True, min_faces_per_person=100)
    except OSError as error:
        raise FaceGateError(f"LFW not found at {local} and the download failed ({error}); give --data") from None
    return DOWNLOAD_ROOT / "lfw_home" / "lfw_funneled"


def _track_of(walk: Walk, tracks: list[TrackReport]) -> TrackReport | None:
    """The decided track that started during the walk (the first, if the tracker split the walk)."""
    inside = [t for t in tracks if t.decision is not None and walk.first_frame <= t.first_frame <= walk.last_frame]
    return min(inside, key=lambda t: t.first_frame) if inside else None


def _rows(walks: list[Walk], tracks: list[TrackReport], enrolled: dict[str, str]) -> list[DemoRow]:
    rows = []
    for walk in walks:
        track = _track_of(walk, tracks)
        decision = track.decision if track is not None else None
        rows.append(
            DemoRow(
                person=walk.person,
                enrolled=enrolled.get(walk.person, "no"),
                decision=decision.decision if decision else "none",
                reason=str(decision.verdict) if decision else "NO_USABLE_FACE",
                frames_to_decision=track.frames_to_decision if track else None,
                score=decision.score if decision else None,
                granted_as=(decision.name or "") if decision and decision.granted else "",
            )
        )
    return rows


def _write_outputs(out: Path, rows: list[DemoRow], events: list[AccessEventRecord]) -> tuple[Path, Path]:
    records = [event.to_json() for event in reversed(events)]
    events_path = out / "events.json"
    events_path.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    table_path = out / "table.csv"
    with table_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(DemoRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    return events_path, table_path


def table_text(rows: list[DemoRow]) -> str:
    """The rows as the aligned table `facegate demo` prints."""
    lines = [HEADER] + [
        (
            row.person,
            row.enrolled[:40],
            row.decision,
            row.reason,
            "-" if row.frames_to_decision is None else str(row.frames_to_decision),
            "-" if row.score is None else f"{row.score:.3f}",
            row.granted_as or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def run_demo(
    settings: Settings,
    embedder: Embedder,
    data: Path,
    out: Path,
    people: int = 4,
    strangers: int = 2,
    seed: int = 0,
) -> DemoResult:
    """Enrol `people` people of the `data` folder, add `strangers`, render their walk-up video, run the real gate
    on it (annotating the video), and tabulate each walk."""
    if people < 0 or strangers < 0 or people + strangers == 0:  # said in the demo's own options
        raise FaceGateError("the demo needs --people and --strangers >= 0, and at least one of them")
    if not data.is_dir():
        raise FaceGateError(f"LFW folder not found: {data} (give --data; see `facegate demo --help`)")
    walkers = pick_folder_walkers(data, people, strangers, seed)
    for name in OUTPUTS:  # nothing of an earlier run is mistaken for this one's
        (out / name).unlink(missing_ok=True)
    annotated = out / "annotated.mp4"

    def watch(runtime: Runtime, video: Path, _walks: list[Walk]) -> tuple[GateSummary, list[AccessEventRecord]]:
        summary = run_gate(runtime, VideoFileSource(video), LogActuator(), annotate=annotated)
        return summary, runtime.database.events(limit=10_000)

    walked = walk_past_gate(settings, embedder, walkers, out, walkup_spec(settings, FPS, WALK_S, seed), watch)
    summary, events = walked.watched
    enrolled = {p: "yes" if e.status == "enrolled" else e.status for p, e in walked.enrolled.items()}
    rows = _rows(walked.walks, summary.tracks, enrolled)
    events_path, table = _write_outputs(out, rows, events)
    return DemoResult(rows, summary, walked.video, annotated, events_path, table)
