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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import faiss
import numpy as np
import torch

from gate.alignment import CropTemplate
from gate.backbones import build_backbone, template_for_backbone
from gate.config import GallerySettings
from gate.embedder import Embedder
from gate.imageio import load_image
from gate.model_card import SHIPPED_CARD
from gate.pipeline import FacePipeline
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
TARGETS = {"whole frame, 1 face": 80.0, "embed per face": 25.0, "search 100k": 5.0}  # median ms on 2 cores
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


def run_frame(
    frame: np.ndarray, pipeline: FacePipeline, embedder: Embedder, index: faiss.Index
) -> tuple[tuple[float, ...], int]:
    """One frame through the gate: the five perf_counter instants around detect, align + quality, embed and
    search, and the number of faces found."""
    t0 = time.perf_counter()
    detected = pipeline.detector.detect(frame)
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
        print_rows(frame_rows(frames, loaded, args.repeats, args.embed_batch))
        if args.peer:
            print_rows(peer_rows(frames, *loaded[0], args.repeats))
    dim = loaded[0][1].card.embedding_size
    print_rows([(f"-- search, dim {dim}, {args.queries} queries one at a time, 1 thread", "", "", "")])
    rng = np.random.default_rng(0)
    for size in GALLERY_SIZES[:-1] if args.skip_1m else GALLERY_SIZES:
        print_rows(search_rows(rng, dim, size, args.queries))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
