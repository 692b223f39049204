"""The demo: enrol some LFW people, walk them and strangers past the gate in a generated video, tabulate it.

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

import numpy as np

from evaluation.turnstile import Walk
from evaluation.walkups import MAX_ENROL_PHOTOS, Walker, enrol_employees, render_walkers, walkup_settings, walkup_spec
from gate.config import Settings
from gate.door.actuators import LogActuator
from gate.errors import FaceGateError
from gate.model.embedder import Embedder
from gate.runtime.results import GateSummary, TrackReport
from gate.runtime.run import run_gate
from gate.runtime.parts import Runtime
from gate.store.database import Database
from gate.vision.imageio import image_files
from gate.vision.sources import VideoFileSource
from training.datasets import lfw_images

log = logging.getLogger(__name__)

DOWNLOAD_ROOT = Path("data/lfw")
MIN_PHOTOS = 3  # one photo walks past the camera, the others (never the walked one) are enrolled
DEMO_FILES = (
    "demo.db",
    "gallery.faiss",
    "gallery.faiss.json",
    "turnstile.mp4",
    "annotated.mp4",
    "events.json",
    "table.csv",
)


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


def pick_people(data: Path, count: int, seed: int) -> list[tuple[str, list[Path]]]:
    """`count` people with at least MIN_PHOTOS photos each, drawn reproducibly from an LFW-layout folder."""
    if not data.is_dir():
        raise FaceGateError(f"LFW folder not found: {data} (give --data; see `facegate demo --help`)")
    eligible = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        photos = image_files(folder)
        if len(photos) >= MIN_PHOTOS:
            eligible.append((folder.name, photos))
    if len(eligible) < count:
        raise FaceGateError(f"{data}: {len(eligible)} people with {MIN_PHOTOS}+ photos, the demo needs {count}")
    chosen = np.random.default_rng(seed).choice(len(eligible), size=count, replace=False)
    return [eligible[i] for i in sorted(chosen)]


def _walker(name: str, photos: list[Path], employee: bool) -> Walker:
    """A demo walker walks with their first photo; an employee is enrolled from the next MAX_ENROL_PHOTOS."""
    return Walker(
        name,
        "employee" if employee else "stranger",
        photos[0],
        tuple(photos[1 : 1 + MAX_ENROL_PHOTOS]) if employee else (),
    )


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


def _write_outputs(out: Path, rows: list[DemoRow], database: Database) -> tuple[Path, Path]:
    events = [asdict(event) | {"time": event.time.isoformat()} for event in reversed(database.events(limit=10_000))]
    events_path = out / "events.json"
    events_path.write_text(json.dumps(events, indent=2) + "\n", encoding="utf-8")
    table_path = out / "table.csv"
    with table_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(DemoRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    return events_path, table_path


def run_demo(
    settings: Settings,
    embedder: Embedder,
    data: Path,
    out: Path,
    people: int = 4,
    strangers: int = 2,
    seed: int = 0,
) -> DemoResult:
    """Enrol `people` LFW people, add `strangers`, render their walk-up video, run the real gate on it."""
    if people < 0 or strangers < 0 or people + strangers == 0:
        raise FaceGateError("the demo needs --people and --strangers >= 0, and at least one of them")
    chosen = pick_people(data, people + strangers, seed)
    order = np.random.default_rng(seed + 1).permutation(len(chosen))  # enrolled and strangers interleaved
    out.mkdir(parents=True, exist_ok=True)
    for name in DEMO_FILES:  # a fresh database and index every run
        (out / name).unlink(missing_ok=True)
    runtime = Runtime.open(walkup_settings(settings, out, "demo.db"), embedder)
    walkers = [_walker(*chosen[i], employee=i < people) for i in order]
    enrolled = {p: "yes" if e.status == "enrolled" else e.status for p, e in enrol_employees(walkers, runtime).items()}
    spec = walkup_spec(runtime.settings, fps=12, walk_s=2.5, seed=seed)
    video, walks = render_walkers(walkers, out / "turnstile.mp4", spec)
    annotated = out / "annotated.mp4"
    summary = run_gate(runtime, VideoFileSource(video), LogActuator(), annotate=annotated)
    rows = _rows(walks, summary.tracks, enrolled)
    events, table = _write_outputs(out, rows, runtime.database)
    runtime.close()
    return DemoResult(rows, summary, video, annotated, events, table)
