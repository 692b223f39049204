"""Enrolment from the gate's camera: watch a source (a live camera, a stream URL or a video file) until it has shown
N good, different frames of the one person in view, then enrol their faces through the photos' own checks
(enrollment.people.add_faces).

A frame counts when the gate's own detect -> align -> quality path (FacePipeline.one_face, as for a photo) finds
exactly one usable face in it. It is kept only when its head pose differs from every frame kept before: the pose is
where the nose sits from the middle of the eyes, along and across the eye line, in eye distances (about 0.1 per 10
degrees of turn or nod); kept frames differ by at least `min_pose_step` in it. A person standing still gives one
frame; turning the head a little, or walking up, gives the others.

A caller watching the capture (the admin page's live preview) is told of every frame looked at, with the collector
after it (`CaptureOptions.watch`), and may end it at once (`CaptureOptions.stop`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enrollment.people import EnrollResult, OfferedFaces, add_faces, check_person
from enrollment.photos import UsableFace
from gate.errors import FaceGateError
from gate.matching.rule import person_scores
from gate.runtime.parts import Runtime
from gate.store.database import Database
from gate.store.identifiers import employee_id as valid_employee_id
from gate.vision.alignment import ARCHIVE, align
from gate.vision.faces import FacePipeline
from gate.vision.quality import Reason
from gate.vision.sources import Frame, FrameSource, GateCamera, open_source

log = logging.getLogger(__name__)

DEFAULT_FRAMES = 5
DEFAULT_TIMEOUT_S = 30.0
MAX_FRAMES = 50  # the most frames one capture may keep (the command's --frames, the page's)
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 1.0, 600.0  # the range of --timeout (and the page's)
STOP_CHECK_S = 0.1  # how often a live capture looks whether it was stopped while it waits for a frame
MIN_POSE_STEP = 0.03  # eye distances between the poses of any two kept frames (about 3 degrees of turn or nod)
SEVERAL_FACES_LIMIT = 10  # frames with more than one person in view before the capture is refused
SAME_POSE = "SAME_POSE"  # a usable face, but posed as one already kept

Progress = Callable[[str], None]
Watch = Callable[[Frame, "Collector"], None]


@dataclass(frozen=True)
class CaptureOptions:
    """How much to capture: `frames` good, different faces within `timeout_s` seconds, kept frames' poses at least
    `min_pose_step` apart; `progress` is told each frame kept (a line for the user); `watch` is given every frame
    looked at and the collector after it; `stop`, once set, ends the capture (refused: CaptureCancelled)."""

    frames: int = DEFAULT_FRAMES
    timeout_s: float = DEFAULT_TIMEOUT_S
    min_pose_step: float = MIN_POSE_STEP
    progress: Progress | None = None
    watch: Watch | None = None
    stop: threading.Event | None = None

    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()


class CaptureRefused(FaceGateError):
    """The capture ended without enough good frames of one person; the message says what was missing."""


class CaptureCancelled(CaptureRefused):
    """The capture was stopped (CaptureOptions.stop) before it had its frames."""


@dataclass(frozen=True)
class Captured:
    """The faces a capture kept and the source they came from, as logs and the audit name it."""

    faces: list[UsableFace]
    source: str


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """The nose's offset from the middle of the eyes, (along the eye line, across it), in eye distances: it moves
    sideways as the head turns and up or down as it nods; the roll of the head does not change it."""
    left, right, nose = (np.asarray(landmarks[i], dtype=np.float64) for i in range(3))
    along = right - left
    distance = float(np.linalg.norm(along)) or 1.0
    along /= distance
    across = np.array([-along[1], along[0]])
    offset = nose - (left + right) / 2
    return np.array([offset @ along, offset @ across]) / distance


@dataclass
class Collector:
    """The frames kept so far and why the others were not."""

    wanted: int
    min_pose_step: float = MIN_POSE_STEP
    kept: list[UsableFace] = field(default_factory=list)
    poses: list[np.ndarray] = field(default_factory=list)
    passed: Counter[str] = field(default_factory=Counter)  # frames not kept, by reason
    seen: int = 0
    box: tuple[float, float, float, float] | None = None  # the last frame's usable face, if it had one
    verdict: str = ""  # what became of the last frame: "kept", or why not (a quality Reason, SAME_POSE)

    @property
    def done(self) -> bool:
        return len(self.kept) >= self.wanted

    def offer(self, pipeline: FacePipeline, frame: Frame) -> bool:
        """Keep the frame's face if it is the one usable face in view and posed unlike those kept; True if kept."""
        self.seen += 1
        found = pipeline.one_face(frame.image)
        self.box = None if isinstance(found, Reason) else found.face.box
        self.verdict = str(found) if isinstance(found, Reason) else "kept"
        if isinstance(found, Reason):
            self.passed[found] += 1
            if self.passed[Reason.SEVERAL_FACES] >= SEVERAL_FACES_LIMIT:
                raise CaptureRefused(
                    f"capture refused: more than one face in view in {SEVERAL_FACES_LIMIT} frames; only the person"
                    " enrolling may stand before the camera"
                )
            return False
        pose = head_pose(found.face.landmarks)
        if any(np.linalg.norm(pose - other) < self.min_pose_step for other in self.poses):
            self.passed[SAME_POSE] += 1
            self.verdict = SAME_POSE
            return False
        archive = align(frame.image, found.face.landmarks, ARCHIVE)[0]
        label = Path(f"capture-frame-{frame.index:05d}")
        digest = hashlib.sha256(frame.image.tobytes()).hexdigest()
        self.kept.append(UsableFace(label, digest, found.crop, archive, found.face.prob))
        self.poses.append(pose)
        return True

    def missing(self, why: str) -> str:
        """The one-line refusal: what was kept, what was missing and what the other frames showed."""
        reasons = ", ".join(f"{reason} {count}" for reason, count in self.passed.most_common())
        return (
            f"capture refused: {why} with {len(self.kept)} of {self.wanted} good, different frames of one face"
            f" ({self.seen} frames looked at{': ' + reasons if reasons else ''}); one person should face the camera"
            " and turn their head a little"
        )


def capture_faces(pipeline: FacePipeline, source: FrameSource, options: CaptureOptions) -> list[UsableFace]:
    """`options.frames` good, different faces of the one person in view of `source` within `options.timeout_s`
    seconds (a live source is closed at the deadline or when `options.stop` is set, even while it waits for a
    frame); CaptureRefused says what was missing, CaptureCancelled that it was stopped."""
    if options.frames < 1 or options.timeout_s <= 0:
        raise FaceGateError("capture: --frames must be at least 1 and --timeout above 0")
    collector = Collector(options.frames, options.min_pose_step)
    deadline = time.monotonic() + options.timeout_s
    finished = threading.Event()
    if source.live:
        closer = threading.Thread(
            target=_close_at, args=(source, deadline, options, finished), name="capture deadline", daemon=True
        )
        closer.start()
    try:
        if _collect(pipeline, source, collector, options, deadline):
            return collector.kept
    finally:
        finished.set()
    if options.stopped:
        raise CaptureCancelled(f"capture cancelled with {len(collector.kept)} of {collector.wanted} frames kept")
    if source.live and source.gave_up:
        why = f"{source.description} stayed away (camera.max_reconnects)"
    elif source.live or time.monotonic() >= deadline:
        why = f"{options.timeout_s:g} s ran out"
    else:
        why = f"{source.description} ended"
    raise CaptureRefused(collector.missing(why))


def _close_at(source: FrameSource, deadline: float, options: CaptureOptions, finished: threading.Event) -> None:
    """Close a live source at the deadline or once the capture is stopped, unless it finished first."""
    while not finished.wait(STOP_CHECK_S):
        if options.stopped or time.monotonic() >= deadline:
            source.close()
            return


def _collect(
    pipeline: FacePipeline, source: FrameSource, collector: Collector, options: CaptureOptions, deadline: float
) -> bool:
    """Offer the source's frames to the collector until it is done (True), or the frames end, the deadline
    passes or the capture is stopped (False)."""
    for frame in source.frames():
        if time.monotonic() >= deadline or options.stopped:
            return False
        kept = collector.offer(pipeline, frame)
        if options.watch is not None:
            options.watch(frame, collector)
        if kept and options.progress is not None:
            options.progress(f"kept frame {len(collector.kept)} of {collector.wanted} (frame {frame.index})")
        if collector.done:
            return True
    return False


def check_one_person(runtime: Runtime, vectors: np.ndarray) -> None:
    """The kept frames' embeddings must all be of one person: each matches every other at the gate's threshold.
    One face per frame is not enough: someone else stepping in alone part-way through would be enrolled."""
    scores = person_scores(vectors, [vectors[i : i + 1] for i in range(len(vectors))], "best", runtime.embedder.scorer)
    worst = float(scores.min())
    if worst < runtime.threshold:
        raise CaptureRefused(
            f"capture refused: the frames kept are not all of one person (two score {worst:.3f} < threshold "
            f"{runtime.threshold:.3f}); let only the person being enrolled stand in view, then try again"
        )


def check_capture(database: Database, employee_id: str, name: str | None) -> str:
    """The valid employee id, once it is sure the person may be captured (a new one has a name, an enrolled one
    is not given another): asked before the camera is watched, not after."""
    employee_id = valid_employee_id(employee_id)
    with database.session() as session:
        check_person(session, employee_id, name)
    return employee_id


def watch_camera(runtime: Runtime, source_spec: str | GateCamera, options: CaptureOptions) -> Captured:
    """The faces of the one person before `source_spec`: a camera, a stream URL or a video file (as [camera] source
    names them, opened with the config's [camera] settings), or the camera the config gives a gate."""
    if isinstance(source_spec, GateCamera):
        source = open_source(source_spec.source, source_spec.settings)
    else:
        source = open_source(source_spec, runtime.settings.camera)
    try:
        if options.progress is not None:
            wanted = f"{options.frames} frames of one face (up to {options.timeout_s:g} s)"
            options.progress(f"watching {source.description} for {wanted}")
        faces = capture_faces(runtime.pipeline, source, options)
    finally:
        source.close()
    return Captured(faces, source.description)


def enrol_captured(
    runtime: Runtime,
    employee_id: str,
    name: str | None,
    captured: Captured,
    force: bool = False,
    accept_unmatched: bool = False,
) -> EnrollResult:
    """Enrol the captured faces as photos are: add_faces' checks (and that they are all of one person), one
    transaction, the audit entry saying "capture:<source>"."""
    log.info("captured %d faces of %s from %s", len(captured.faces), employee_id, captured.source)
    offered = OfferedFaces(
        captured.faces, [face.path for face in captured.faces], source=f"capture:{captured.source}",
        origin="capture", check=lambda vectors: check_one_person(runtime, vectors),
    )  # fmt: skip
    return add_faces(runtime, employee_id, name, offered, force, accept_unmatched=accept_unmatched)


def enrol_from_camera(
    runtime: Runtime,
    employee_id: str,
    name: str | None,
    source_spec: str | GateCamera,
    options: CaptureOptions | None = None,
    force: bool = False,
    accept_unmatched: bool = False,
) -> EnrollResult:
    """Capture `options.frames` faces of the one person before `source_spec` (a source, or a gate's camera: see
    watch_camera) and enrol them as photos are (enrol_captured)."""
    employee_id = check_capture(runtime.database, employee_id, name)
    captured = watch_camera(runtime, source_spec, options or CaptureOptions())
    return enrol_captured(runtime, employee_id, name, captured, force, accept_unmatched)
