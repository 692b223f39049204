"""Latency on this CPU per stage of a 640x480 frame (detect, align, embed, search) and FAISS search at scale.

Run: `python benchmarks/latency.py [--repeats 20] [--skip-1m] [--model CARD ...] [--no-peer] [--embed-batch]`.
Frames are built by pasting real LFW photos from $FACEGATE_DATA (default ../shared/datasets) onto a plain
background: one face, and five faces. The shipped model (gate/models/default.json) is timed first, then the
`--model` cards; without a shipped model the first `--model` card stands in for it, and with neither an untrained
dlib_resnet and mobilefacenet are exported to a temporary folder (timing does not depend on the weights).
The targets are medians on 2 cores.

The peer section (on by default, `--no-peer` skips it) times the first model's whole frame exactly as the
per-stage table does (detect -> align + quality -> embed -> search) beside face_recognition's default pipeline
called through dlib directly (HOG detector with one upsample, the 5-point shape predictor on every face found, one
ResNet descriptor per face, no jitter; needs the `peer` extra), on the same frames, interleaved: one FaceGate frame,
then one dlib frame, per repeat, after warm-ups. "cores" is process CPU time over wall time while each ran.
`--embed-batch` adds each model's embedding time per face for a batch of 1 and of 8 identical crops (the 1-face
frame's), to show what embedding a frame's faces together gives.

The detection section (on by default; `--detection-only` runs just it, `--full-every N` sets following's period)
splits MTCNN's time on the 1-face frame into its stages (forward hooks on PNet, RNet and ONet), with the usual
20 px smallest face and with the one derived from the quality gate; then, on a walk-up (the 1-face frame's photo
moving and growing), detection and the whole frame per frame with a full search every frame and with following
(gate.vision.following), and how many processed frames a face that comes into view waits to be found, at every phase
of the full-search schedule. `--walkups N` adds N simulated turnstile walk-ups (evaluation.turnstile) of random
LFW people, each frame's largest face through the pipeline with a full search and followed: usable frames,
rejection reasons, and faces reported after the person has left.

Gallery search uses random unit templates; each query is a template plus noise (cosine about 0.8, like a probe of
an enrolled person), searched one at a time, single-threaded (OpenMP's fan-out costs more than it saves on a
single query).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import faiss
import numpy as np
import torch

from evaluation.turnstile import TurnstileSpec, background, expose
from evaluation.turnstile import walk_frames as turnstile_frames
from gate.config import DetectorSettings, GallerySettings
from gate.model.backbones import build_backbone, template_for_backbone
from gate.model.card import SHIPPED_CARD
from gate.model.embedder import Embedder
from gate.vision.alignment import CropTemplate
from gate.vision.detection import Detector, Face
from gate.vision.faces import FacePipeline
from gate.vision.following import FaceFollower, Followed
from gate.vision.imageio import load_image
from training.datasets import dataset_root
from training.export import CardFields, export_model
from training.teacher import load_dlib

FRAME_SHAPE = (480, 640, 3)
FRAME_GALLERY = 1_000  # templates searched per face in the frame benchmark
GALLERY_SIZES = (1_000, 100_000, 1_000_000)
PROBE_NOISE = 0.07  # per-dimension noise added to a template to make a query (cosine ~0.8 at 128 dims)
WARMUP = 3
# Five photos from LFW's pairsDevTest people; the first alone makes the one-face frame.
PHOTOS = (
    "Abdullah_Gul/Abdullah_Gul_0013.jpg",
    "Aaron_Guiel/Aaron_Guiel_0001.jpg",
    "AJ_Lamas/AJ_Lamas_0001.jpg",
    "Zach_Safrin/Zach_Safrin_0001.jpg",
    "Charles_Cope/Charles_Cope_0001.jpg",
)
FIVE_SLOTS = ((20, 20), (20, 230), (20, 440), (260, 125), (260, 335))  # (top, left) of 180 px tiles
LABEL_WIDTH = 46
TARGETS = {  # median ms on 2 cores
    "whole frame, 1 face": 80.0,
    "whole frame, 1 face, followed": 25.0,  # the goal set for a followed face
    "embed per face": 25.0,
    "search 100k": 5.0,
}
WALK_STEP = (4, 1, 2)  # the walk-up: px right, px down and px larger per frame
NEWCOMER = (430, 250, 170)  # (left, top, size) of the face that comes into view
WALKUP_FRAMES, WALKUP_AFTER = 38, 3  # a turnstile walk-up (2.5 s at 15 fps), then empty frames
UNTRAINED = ("dlib_resnet", "mobilefacenet")  # timed when there is no shipped model and no --model card
EMBED_BATCHES = (1, 8)


def _resize(photo: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA)


def build_frames(lfw: Path) -> dict[str, np.ndarray]:
    """A 640x480 frame with one face (a 250 px photo, centred) and one with five (180 px tiles)."""
    background = np.zeros(FRAME_SHAPE, dtype=np.uint8)
    background[:] = np.linspace(60, 140, FRAME_SHAPE[1], dtype=np.uint8)[None, :, None]
    photos = [load_image(lfw / name) for name in PHOTOS]
    one = background.copy()
    top, left = (FRAME_SHAPE[0] - 250) // 2, (FRAME_SHAPE[1] - 250) // 2
    one[top : top + 250, left : left + 250] = _resize(photos[0], 250)
    five = background.copy()
    for (top, left), photo in zip(FIVE_SLOTS, photos, strict=True):
        five[top : top + 180, left : left + 180] = _resize(photo, 180)
    return {"1 face": one, "5 faces": five}


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """n random templates of unit length."""
    return _unit(rng.standard_normal((n, dim), dtype=np.float32))


def probes(rng: np.random.Generator, gallery: np.ndarray, count: int) -> np.ndarray:
    """Queries near randomly chosen templates, as a live face is near its enrolled template."""
    chosen = gallery[rng.integers(0, len(gallery), count)]
    return _unit(chosen + PROBE_NOISE * rng.standard_normal(chosen.shape, dtype=np.float32))


@contextmanager
def faiss_threads(count: int) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def models(workdir: Path, cards: list[Path]) -> list[tuple[str, Embedder]]:
    """The shipped model, then the given cards; with neither, untrained UNTRAINED networks exported to workdir."""
    given = [Embedder(card) for card in cards]
    extra = [(f"{e.model_id} ({e.card.architecture}, {card})", e) for e, card in zip(given, cards, strict=True)]
    if SHIPPED_CARD.is_file():
        embedder = Embedder()
        return [(f"shipped {embedder.model_id} ({embedder.card.architecture})", embedder), *extra]
    if extra:
        return [(f"{extra[0][0]} (no shipped model)", extra[0][1]), *extra[1:]]
    found = []
    for architecture in UNTRAINED:
        card = workdir / f"{architecture}.json"
        export_model(
            build_backbone(architecture, 128).eval(),
            card,
            CardFields(
                model_id=f"untrained-{architecture}",
                architecture=architecture,
                embedding_size=128,
                template=template_for_backbone(architecture),
            ),
        )
        found.append((f"untrained {architecture} (no shipped model)", Embedder(card)))
    return found


def walk_frames(lfw: Path, count: int, newcomer_from: int | None = None) -> list[np.ndarray]:
    """`count` 640x480 frames of the 1-face frame's photo walking up (WALK_STEP a frame from 220 px at the left, for
    60 frames, then back);
    from frame `newcomer_from` on, a second person (PHOTOS[1]) stands at NEWCOMER."""
    background = build_frames(lfw)["1 face"].copy()
    background[:] = background[:, :1]  # the plain gradient, no face
    photo, newcomer = load_image(lfw / PHOTOS[0]), load_image(lfw / PHOTOS[1])
    frames = []
    for index in range(count):
        frame = background.copy()
        step = min(index % 120, 119 - index % 120)  # there and back every 120 frames, so it stays in the frame
        left, top, size = (40 + WALK_STEP[0] * step, 60 + WALK_STEP[1] * step, 220 + WALK_STEP[2] * step)
        frame[top : top + size, left : left + size] = _resize(photo, size)
        if newcomer_from is not None and index >= newcomer_from:
            x, y, side = NEWCOMER
            frame[y : y + side, x : x + side] = _resize(newcomer, side)
        frames.append(frame)
    return frames


def run_frame(
    frame: np.ndarray,
    pipeline: FacePipeline,
    embedder: Embedder,
    index: faiss.Index,
    detect: Callable[[np.ndarray], list[Face]] | None = None,
) -> tuple[tuple[float, ...], int]:
    """One frame through the gate: the five perf_counter instants around detect, align + quality, embed and
    search, and the number of faces found. `detect`: a stream's follower's (default: the pipeline's full search)."""
    t0 = time.perf_counter()
    detected = (detect or pipeline.detector.detect)(frame)
    t1 = time.perf_counter()
    crops = np.stack([pipeline.crop(frame, face).crop for face in detected]) if detected else None
    t2 = time.perf_counter()
    vectors = embedder.embed(crops) if crops is not None else np.empty((0, index.d), np.float32)
    t3 = time.perf_counter()
    for row in range(len(vectors)):
        index.search(vectors[row : row + 1], 1)
    t4 = time.perf_counter()
    return (t0, t1, t2, t3, t4), len(detected)


def time_frame(
    frame: np.ndarray, pipeline: FacePipeline, embedder: Embedder, index: faiss.Index, repeats: int
) -> tuple[dict[str, list[float]], int]:
    """Per-stage milliseconds over `repeats` runs (after a warm-up) and the number of faces found."""
    stages: dict[str, list[float]] = {
        "detect": [],
        "align + quality": [],
        "embed": [],
        "search": [],
        "whole": [],
    }
    faces = 0
    for run in range(WARMUP + repeats):
        (t0, t1, t2, t3, t4), faces = run_frame(frame, pipeline, embedder, index)
        if run >= WARMUP:
            for name, (start, end) in zip(stages, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t0, t4)), strict=True):
                stages[name].append((end - start) * 1000)
    return stages, faces


class DlibPipeline:
    """face_recognition's default pipeline through dlib: `__call__(frame) -> faces found`, each described.

    face_locations(model="hog", number_of_times_to_upsample=1), then face_encodings(model="small",
    num_jitters=1): the 5-point shape predictor and one ResNet descriptor per face found.
    """

    def __init__(self) -> None:
        dlib, self._shape, self._net = load_dlib()
        self._detect = dlib.get_frontal_face_detector()

    def __call__(self, frame: np.ndarray) -> int:
        rects = self._detect(frame, 1)
        for rect in rects:
            np.asarray(self._net.compute_face_descriptor(frame, self._shape(frame, rect)))
        return len(rects)


def gate_frame(pipeline: FacePipeline, embedder: Embedder, index: faiss.Index) -> Callable[[np.ndarray], int]:
    """The gate's whole frame, as time_frame times it, as a function of the frame returning the faces found."""
    return lambda frame: run_frame(frame, pipeline, embedder, index)[1]


def interleaved(
    frame: np.ndarray, runners: dict[str, Callable[[np.ndarray], int]], repeats: int
) -> dict[str, tuple[list[float], float, int]]:
    """{name: (milliseconds per frame, CPU cores busy, faces found)}, the runners taking turns frame by frame."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu = dict.fromkeys(runners, 0.0)
    faces = dict.fromkeys(runners, 0)
    for run in range(WARMUP + repeats):
        for name, runner in runners.items():
            wall, started = time.perf_counter(), time.process_time()
            faces[name] = runner(frame)
            cpu_s, wall_s = time.process_time() - started, time.perf_counter() - wall
            if run >= WARMUP:
                times[name].append(wall_s * 1000)
                cpu[name] += cpu_s
    return {name: (times[name], cpu[name] / (sum(times[name]) / 1000), faces[name]) for name in runners}


def peer_rows(frames: dict[str, np.ndarray], label: str, embedder: Embedder, repeats: int) -> list[tuple[str, ...]]:
    """The first model's whole frame beside face_recognition's pipeline (dlib), interleaved, on the same frames."""
    index = faiss.IndexFlatIP(embedder.card.embedding_size)
    index.add(unit_rows(np.random.default_rng(1), FRAME_GALLERY, embedder.card.embedding_size))
    runners = {
        "FaceGate": gate_frame(FacePipeline(template=embedder.template), embedder, index),
        "dlib (face_recognition)": DlibPipeline(),
    }
    rows: list[tuple[str, ...]] = [
        (f"-- peer, whole frame, interleaved: FaceGate {label}", "", "", ""),
        ("   vs face_recognition via dlib: HOG (1 upsample) + 5-point + ResNet, no jitter", "", "", ""),
    ]
    for name, frame in frames.items():
        with faiss_threads(1):
            results = interleaved(frame, runners, repeats)
        rows.append((f"   {name}", "", "", ""))
        for system, (values, cores, faces) in results.items():
            rows.append(percentile_row(f"     {system}: {faces} found", values)[:3] + (f"{cores:.1f} cores",))
        gate_ms, dlib_ms = (statistics.median(values) for values, _, _ in results.values())
        rows.append((f"     dlib median / FaceGate median: {dlib_ms / gate_ms:.2f}x", "", "", ""))
    return rows


def peer_walk_rows(walk: list[np.ndarray], embedder: Embedder, full_every: int) -> list[tuple[str, ...]]:
    """The walk-up frame by frame: FaceGate following its face, FaceGate searching every frame, and
    face_recognition's pipeline (dlib), taking turns on each frame; the ratios of their medians and means."""
    index = faiss.IndexFlatIP(embedder.card.embedding_size)
    index.add(unit_rows(np.random.default_rng(1), FRAME_GALLERY, embedder.card.embedding_size))
    pipeline = FacePipeline(template=embedder.template)
    follower = FaceFollower(pipeline.detector, full_every)
    runners: dict[str, Callable[[np.ndarray], int]] = {
        f"FaceGate, followed (full search every {full_every})": lambda f: run_frame(
            f, pipeline, embedder, index, follower.detect
        )[1],
        "FaceGate, full search every frame": gate_frame(pipeline, embedder, index),
        "dlib (face_recognition)": DlibPipeline(),
    }
    times: dict[str, list[float]] = {name: [] for name in runners}
    with faiss_threads(1):
        for number, frame in enumerate(walk):
            for name, runner in runners.items():
                start = time.perf_counter()
                runner(frame)
                if number >= WARMUP:
                    times[name].append((time.perf_counter() - start) * 1000)
    rows: list[tuple[str, ...]] = [(f"-- peer on the walk-up, {len(walk) - WARMUP} frames, interleaved", "", "", "")]
    rows.extend(percentile_row(f"   {name}", values) for name, values in times.items())
    followed, full, dlib = (times[name] for name in runners)
    for label, values in (("followed", followed), ("full search", full)):
        median = statistics.median(dlib) / statistics.median(values)
        mean = float(np.mean(dlib) / np.mean(values))
        rows.append((f"   dlib / FaceGate {label}: {median:.2f}x by median, {mean:.2f}x by mean", "", "", ""))
    return rows


def batch_rows(frame: np.ndarray, pipeline: FacePipeline, embedder: Embedder, repeats: int) -> list[tuple[str, ...]]:
    """Embedding milliseconds per face for batches of EMBED_BATCHES identical crops of the frame's largest face."""
    faces = pipeline.detector.detect(frame)
    if not faces:
        return [("     embed batches: no face in the frame", "", "", "")]
    crop = pipeline.crop(frame, faces[0]).crop
    rows = []
    for size in EMBED_BATCHES:
        batch = np.repeat(crop[None], size, axis=0)
        per_face = []
        for run in range(WARMUP + repeats):
            start = time.perf_counter()
            embedder.embed(batch)
            if run >= WARMUP:
                per_face.append((time.perf_counter() - start) * 1000 / size)
        rows.append(percentile_row(f"     embed per face, batch of {size}", per_face, TARGETS["embed per face"]))
    return rows


def percentile_row(label: str, values: list[float], target: float | None = None) -> tuple[str, ...]:
    median, p95 = statistics.median(values), float(np.percentile(values, 95))
    verdict = "" if target is None else f"<= {target:g} ms: {'met' if median <= target else 'MISSED'}"
    return (label, f"{median:.2f}", f"{p95:.2f}", verdict)


def frame_rows(
    frames: dict[str, np.ndarray], loaded: list[tuple[str, Embedder]], repeats: int, embed_batch: bool
) -> list[tuple[str, ...]]:
    """Table rows for every model and frame (with embedding batches of the 1-face frame when asked)."""
    rows: list[tuple[str, ...]] = []
    pipeline_for: dict[CropTemplate, FacePipeline] = {}
    for label, embedder in loaded:
        if embedder.template not in pipeline_for:  # one MTCNN per crop template, not one per model
            pipeline_for[embedder.template] = FacePipeline(template=embedder.template)
        pipeline = pipeline_for[embedder.template]
        index = faiss.IndexFlatIP(embedder.card.embedding_size)
        index.add(unit_rows(np.random.default_rng(1), FRAME_GALLERY, embedder.card.embedding_size))
        rows.append((f"-- {label}", "", "", ""))
        for name, frame in frames.items():
            with faiss_threads(1):
                stages, faces = time_frame(frame, pipeline, embedder, index, repeats)
            rows.append((f"   {name}: {faces} detected", "", "", ""))
            for stage, values in stages.items():
                key = f"whole frame, {name}" if stage == "whole" else None
                rows.append(percentile_row(f"     {stage}", values, TARGETS.get(key or "")))
            if faces:
                per_face = [v / faces for v in stages["embed"]]
                rows.append(percentile_row("     embed per face", per_face, TARGETS["embed per face"]))
            if embed_batch and name == "1 face":
                rows.extend(batch_rows(frame, pipeline, embedder, repeats))
    return rows


class StageClock:
    """perf_counter instants at the start and end of every call of MTCNN's three networks (forward hooks), with
    each call's batch size; `close()` removes the hooks."""

    def __init__(self, detector: Detector) -> None:
        self.marks: list[tuple[str, float, int]] = []  # (network + " start"/" end", instant, batch size)
        self._hooks = []
        for name, network in zip(("pnet", "rnet", "onet"), detector.networks, strict=True):
            self._hooks.append(network.register_forward_pre_hook(self._mark(name + " start")))
            self._hooks.append(network.register_forward_hook(self._mark(name + " end")))

    def _mark(self, label: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, inputs: tuple, *output: object) -> None:
            self.marks.append((label, time.perf_counter(), int(inputs[0].shape[0])))

        return hook

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()


MTCNN_STAGES = (
    "PNet over the pyramid",
    "pyramid resizing, PNet boxes, NMS per scale",
    "NMS over scales + RNet patches",
    "RNet",
    "NMS + ONet patches",
    "ONet",
    "NMS + output",
)


def mtcnn_stages(clock: StageClock, start: float, end: float) -> tuple[dict[str, float], str]:
    """One detect()'s milliseconds per MTCNN_STAGES entry (from the network marks between start and end), and how
    many pyramid levels and boxes RNet and ONet saw."""
    first = {label: instant for label, instant, _ in reversed(clock.marks)}
    last = {label: instant for label, instant, _ in clock.marks}
    batches = {label: size for label, _, size in clock.marks if label.endswith("start")}
    pnet_ms = sum(e[1] - b[1] for b, e in zip(clock.marks[::2], clock.marks[1::2], strict=True) if b[0] == "pnet start")
    rnet_start, onet_start = first.get("rnet start", end), first.get("onet start", end)
    rnet_end, onet_end = last.get("rnet end", rnet_start), last.get("onet end", onet_start)
    instants = (start, last["pnet end"], rnet_start, rnet_end, onet_start, onet_end, end)
    spans = [b - a for a, b in zip(instants, instants[1:], strict=False)]
    spans = [pnet_ms, spans[0] - pnet_ms, *spans[1:]]
    levels = sum(1 for label, _, _ in clock.marks if label == "pnet start")
    seen = f"{levels} levels, RNet {batches.get('rnet start', 0)} boxes, ONet {batches.get('onet start', 0)}"
    return {name: span * 1000 for name, span in zip(MTCNN_STAGES, spans, strict=True)}, seen


def stage_rows(frame: np.ndarray, repeats: int) -> list[tuple[str, ...]]:
    """MTCNN's stages on one frame, median / p95 ms, with the usual 20 px smallest face and the derived one."""
    rows: list[tuple[str, ...]] = []
    for label, settings in (("20 px (MTCNN's usual)", DetectorSettings(min_face_px=20)), ("derived", None)):
        detector = Detector(settings)
        clock = StageClock(detector)
        times: dict[str, list[float]] = {name: [] for name in (*MTCNN_STAGES, "whole detect")}
        for run in range(WARMUP + repeats):
            clock.marks.clear()
            start = time.perf_counter()
            detector.detect(frame)
            end = time.perf_counter()
            stages, seen = mtcnn_stages(clock, start, end)
            if run >= WARMUP:
                for name, value in (*stages.items(), ("whole detect", (end - start) * 1000)):
                    times[name].append(value)
        clock.close()
        rows.append((f"   smallest face {detector.min_face_px:.1f} px, {label}: {seen}", "", "", ""))
        rows.extend(percentile_row(f"     {name}", values) for name, values in times.items())
    return rows


def follow_rows(
    walk: list[np.ndarray], pipeline: FacePipeline, embedder: Embedder, index: faiss.Index, full_every: int
) -> list[tuple[str, ...]]:
    """Detection and the whole frame per frame of a walk-up, full search every frame vs followed."""
    rows: list[tuple[str, ...]] = []
    for followed in (False, True):
        follower = FaceFollower(pipeline.detector, full_every) if followed else None
        detect = follower.detect if follower is not None else None
        detect_ms, whole_ms, found = [], [], []
        for run, frame in enumerate(walk):
            (t0, t1, *_, t4), faces = run_frame(frame, pipeline, embedder, index, detect)
            if run >= WARMUP:
                detect_ms.append((t1 - t0) * 1000)
                whole_ms.append((t4 - t0) * 1000)
                found.append(faces)
        label = f"followed, full search every {full_every}" if followed else "full search every frame"
        rows.append((f"   {label}: faces found {min(found)}-{max(found)}", "", "", ""))
        rows.append(percentile_row("     detect", detect_ms))
        target = TARGETS["whole frame, 1 face, followed"] if followed else None
        rows.append(percentile_row("     whole frame", whole_ms, target))
        rows.append((f"     mean ms: detect {np.mean(detect_ms):.2f}, whole frame {np.mean(whole_ms):.2f}", "", "", ""))
    return rows


def refine_rows(frames: dict[str, np.ndarray], detector: Detector, repeats: int) -> list[tuple[str, ...]]:
    """Finding a frame's faces again by following (Detector.refine on each face's predicted region, all faces in
    one batch) against a full search, per frame of build_frames."""
    rows: list[tuple[str, ...]] = [("-- following alone (refine) vs a full search, still frames", "", "", "")]
    for name, frame in frames.items():
        regions = [Followed(face).predicted_region() for face in detector.detect(frame)]
        times: dict[str, list[float]] = {"full search": [], f"refine {len(regions)} regions": []}
        for run in range(WARMUP + repeats):
            for label in times:
                start = time.perf_counter()
                if label == "full search":
                    detector.detect(frame)
                else:
                    detector.refine(frame, regions)
                if run >= WARMUP:
                    times[label].append((time.perf_counter() - start) * 1000)
        rows.append((f"   {name}", "", "", ""))
        rows.extend(percentile_row(f"     {label}", values) for label, values in times.items())
    return rows


def newcomer_rows(lfw: Path, detector: Detector, full_every: int) -> list[tuple[str, ...]]:
    """Processed frames from a second face's arrival to its first detection (1: found in the frame it arrives
    in), followed, for an arrival at every phase of the full-search schedule."""
    waits = []
    for phase in range(full_every):
        arrival = 2 * full_every + phase  # the walker has been followed for a while
        follower = FaceFollower(detector, full_every)
        frames = walk_frames(lfw, arrival + 2 * full_every, newcomer_from=arrival)
        counts = [len(follower.detect(frame)) for frame in frames]
        waits.append(next((n + 1 for n, c in enumerate(counts[arrival:]) if c >= 2), len(counts) - arrival + 1))
    return [
        (f"   frames until a new face is found, full search every {full_every}", "", "", ""),
        (f"     followed: {waits} by arrival phase (max {max(waits)}); full search every frame: 1", "", "", ""),
    ]


def turnstile_walk(person: Path, seed: int) -> list[np.ndarray]:
    """One simulated walk-up (evaluation.turnstile: growing, drifting, blur fading, light, sensor noise) of the
    person's first photo, then WALKUP_AFTER empty frames."""
    rng = np.random.default_rng(seed)
    backdrop = background(640, 480, rng)
    photo = load_image(sorted(person.glob("*.jpg"))[0])
    walk = [expose(frame, rng) for frame in turnstile_frames(photo, backdrop, WALKUP_FRAMES, rng, TurnstileSpec())]
    return walk + [expose(backdrop, rng) for _ in range(WALKUP_AFTER)]


def walkup_rows(lfw: Path, walks: int, full_every: int) -> list[tuple[str, ...]]:
    """The largest face's outcome per frame over `walks` turnstile walk-ups of random LFW people, full search
    every frame vs followed: what following changes for the gate (usable frames, reasons, faces after leaving)."""
    people = sorted(path for path in lfw.iterdir() if path.is_dir())
    chosen = [people[i] for i in np.random.default_rng(3).choice(len(people), walks, replace=False)]
    pipeline = FacePipeline(DetectorSettings(follow=True, full_every=full_every))
    outcomes = {"full search": Counter(), "followed": Counter()}
    for seed, person in enumerate(chosen):
        frames = turnstile_walk(person, seed)
        for mode, counts in outcomes.items():
            follower = pipeline.follower() if mode == "followed" else None
            for index, frame in enumerate(frames):
                crops = pipeline.process(frame, follower)
                counts[str(crops[0].rejected or "usable") if crops else "no face"] += 1
                counts["faces found"] += len(crops)
                counts["faces after leaving"] += len(crops) if index >= WALKUP_FRAMES else 0
    rows: list[tuple[str, ...]] = [(f"-- {walks} turnstile walk-ups, largest face per frame", "", "", "")]
    keys = sorted(set(outcomes["full search"]) | set(outcomes["followed"]))
    for mode, counts in outcomes.items():
        rows.append((f"   {mode}: " + ", ".join(f"{key} {counts[key]}" for key in keys), "", "", ""))
    return rows


def detection_rows(lfw: Path, embedder: Embedder, repeats: int, full_every: int) -> list[tuple[str, ...]]:
    """The detection section: MTCNN's stages, then following against a full search on a walk-up."""
    frame = build_frames(lfw)["1 face"]
    rows: list[tuple[str, ...]] = [("-- MTCNN's stages, 1-face frame", "", "", "")]
    rows.extend(stage_rows(frame, repeats))
    pipeline = FacePipeline(template=embedder.template)
    index = faiss.IndexFlatIP(embedder.card.embedding_size)
    index.add(unit_rows(np.random.default_rng(1), FRAME_GALLERY, embedder.card.embedding_size))
    walk = walk_frames(lfw, WARMUP + max(repeats, 3 * full_every))
    rows.append(
        (f"-- walk-up, {len(walk) - WARMUP} frames: detection and whole frame ({embedder.model_id})", "", "", "")
    )
    with faiss_threads(1):
        rows.extend(follow_rows(walk, pipeline, embedder, index, full_every))
    rows.extend(newcomer_rows(lfw, pipeline.detector, full_every))
    rows.extend(refine_rows(build_frames(lfw), pipeline.detector, repeats))
    return rows


def _timed(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    times, found = [], []
    for row in range(len(queries)):
        start = time.perf_counter()
        found.append(search(queries[row : row + 1]))
        times.append((time.perf_counter() - start) * 1000)
    return times, np.concatenate(found)


def search_rows(rng: np.random.Generator, dim: int, size: int, queries: int) -> list[tuple[str, ...]]:
    """Exact and HNSW search over one gallery; HNSW at the gate's M, efSearch and 4x; recall@1 vs exact."""
    settings = GallerySettings()
    name = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
    target = TARGETS.get(f"search {name}")
    gallery = unit_rows(rng, size, dim)
    query = probes(rng, gallery, queries)
    exact = faiss.IndexFlatIP(dim)
    exact.add(gallery)
    with faiss_threads(1):
        exact_ms, exact_ids = _timed(lambda q: exact.search(q, 1)[1][:, 0], query)
    rows = [percentile_row(f"   {name} exact (IndexFlatIP)", exact_ms, target)]
    hnsw = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    hnsw.add(gallery)  # the build uses every thread
    rows.append((f"   {name} HNSW M={settings.hnsw_m}: build {time.perf_counter() - start:.1f} s", "", "", ""))
    for ef_search in (settings.hnsw_ef_search, 4 * settings.hnsw_ef_search):
        hnsw.hnsw.efSearch = ef_search
        with faiss_threads(1):
            hnsw_ms, hnsw_ids = _timed(lambda q: hnsw.search(q, 1)[1][:, 0], query)
        recall = float(np.mean(hnsw_ids == exact_ids))
        rows.append(percentile_row(f"     efSearch={ef_search}: recall@1 {recall:.3f}", hnsw_ms, target))
    return rows


def print_rows(rows: list[tuple[str, ...]]) -> None:
    for row in rows:
        print(f"{row[0]:<{LABEL_WIDTH}}  {row[1]:>9}  {row[2]:>9}  {row[3]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed frames per case (after 3 warm-ups)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (all cores)")
    parser.add_argument("--queries", type=int, default=200, help="search queries per gallery size")
    parser.add_argument("--skip-1m", action="store_true", help="leave out the 1M gallery (slow HNSW build)")
    parser.add_argument("--model", type=Path, action="append", default=[], help="also time this model card")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True, help="FaceGate beside dlib")
    parser.add_argument("--embed-batch", action="store_true", help="embedding per face for batches of 1 and 8")
    parser.add_argument("--detection-only", action="store_true", help="only the detection section (MTCNN, following)")
    parser.add_argument("--full-every", type=int, default=DetectorSettings().full_every, help="following's period")
    parser.add_argument("--walkups", type=int, default=0, help="also N turnstile walk-ups, full search vs followed")
    args = parser.parse_args(argv)
    lfw = dataset_root() / "lfw" / "lfw-deepfunneled"
    if not lfw.is_dir():
        print(f"LFW photos not found at {lfw}: set FACEGATE_DATA to the datasets folder", file=sys.stderr)
        return 2
    threads = args.threads
    torch.set_num_threads(threads)
    print(
        f"torch threads {threads}, faiss threads {faiss.omp_get_max_threads()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}, frame {FRAME_SHAPE[1]}x{FRAME_SHAPE[0]}"
    )
    if os.getloadavg()[0] >= (os.cpu_count() or 1):
        print("note: other processes keep the CPU busy: these timings are inflated; rerun on an idle machine")
    print_rows([("stage", "median ms", "p95 ms", "target (median)")])
    frames = build_frames(lfw)
    with tempfile.TemporaryDirectory() as workdir:
        loaded = models(Path(workdir), args.model)
        print_rows(detection_rows(lfw, loaded[0][1], args.repeats, args.full_every))
        if args.walkups:
            print_rows(walkup_rows(lfw, args.walkups, args.full_every))
        if args.detection_only:
            return 0
        print_rows(frame_rows(frames, loaded, args.repeats, args.embed_batch))
        if args.peer:
            print_rows(peer_rows(frames, *loaded[0], args.repeats))
            walk = walk_frames(lfw, WARMUP + max(args.repeats, 10 * args.full_every))
            print_rows(peer_walk_rows(walk, loaded[0][1], args.full_every))
    dim = loaded[0][1].card.embedding_size
    print_rows([(f"-- search, dim {dim}, {args.queries} queries one at a time, 1 thread", "", "", "")])
    rng = np.random.default_rng(0)
    for size in GALLERY_SIZES[:-1] if args.skip_1m else GALLERY_SIZES:
        print_rows(search_rows(rng, dim, size, args.queries))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
