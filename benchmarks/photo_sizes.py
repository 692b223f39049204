"""Photos per second of the enrolment/evaluation path at about 0.25, 1 and 12 megapixels, before and after bounded
detection (DetectorSettings.max_side), and whether the embeddings stay the same.

Run: `python benchmarks/photo_sizes.py [--photos 6] [--repeats 3] [--model CARD]`. Each photo is a real LFW photo
from $FACEGATE_DATA (default ../shared/datasets) upscaled (INTER_CUBIC) so that its face box is about a quarter of
the width, centred on a plain 4:3 background, like a portrait photo, and written as JPEG to a temporary folder:
the path timed is load_image -> FacePipeline.process (built-in default settings) -> embed the largest usable face.
"before" detects on the full image (max_side 10000: nothing is scaled), "after" at the default max_side (the
detector searches a copy scaled to that longest side; the crop is still cut from the full image). The two take
turns pass by pass; the 12 MP size gets one timed pass. found/N counts photos that gave a usable face; the cosine
compares each embedding with the same face's from the original 250x250 photo. The model is the shipped one
(gate/models/default.json) unless `--model` names a card; all cores are used (torch.set_num_threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from latency import PHOTOS as FRAME_PHOTOS

from gate.config import DetectorSettings, QualitySettings
from gate.model.card import SHIPPED_CARD
from gate.model.embedder import Embedder
from gate.vision.faces import FacePipeline
from gate.vision.imageio import load_image
from training.datasets import lfw_images

PHOTOS = (*FRAME_PHOTOS, "Aaron_Eckhart/Aaron_Eckhart_0001.jpg")  # latency.py's five DevTest photos and one more
SIZES = ((576, 432), (1152, 864), (4000, 3000))  # 0.25, 1 and 12 megapixels, 4:3
ONE_PASS_MP = 4.0  # sizes above this many megapixels get a single timed pass
FACE_FRACTION = 0.25  # face box width / photo width
BACKGROUND = 120  # plain grey
JPEG_QUALITY = 95
UNBOUNDED = 10_000  # max_side that scales nothing
WIDTHS = (18, 22, 9, 8, 13)  # of the table's columns


def embed_largest(image: np.ndarray, pipeline: FacePipeline, embedder: Embedder) -> np.ndarray | None:
    """The embedding of the largest usable face of the image, or None."""
    usable = [found for found in pipeline.process(image) if found.rejected is None]
    return embedder.embed(usable[0].crop[None])[0] if usable else None


def references(
    originals: list[np.ndarray], pipeline: FacePipeline, embedder: Embedder
) -> tuple[list[np.ndarray], list[float]]:
    """Each original's embedding and the width of its largest usable face's box."""
    embeddings, widths = [], []
    for image in originals:
        usable = [found for found in pipeline.process(image) if found.rejected is None]
        if not usable:
            raise SystemExit("an original LFW photo gave no usable face: choose other PHOTOS")
        embeddings.append(embedder.embed(usable[0].crop[None])[0])
        widths.append(usable[0].face.box[2] - usable[0].face.box[0])
    return embeddings, widths


def compose(photo: np.ndarray, face_width: float, size: tuple[int, int]) -> np.ndarray:
    """The photo upscaled so its face is FACE_FRACTION of the width, centred on a plain background of `size`."""
    width, height = size
    scale = FACE_FRACTION * width / face_width
    side = min(round(photo.shape[0] * scale), height)
    resized = cv2.resize(photo, (side, side), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    canvas[top : top + side, left : left + side] = resized
    return canvas


def write_photos(originals: list[np.ndarray], widths: list[float], size: tuple[int, int], folder: Path) -> list[Path]:
    paths = []
    for number, (photo, face_width) in enumerate(zip(originals, widths, strict=True)):
        path = folder / f"{size[0]}x{size[1]}_{number}.jpg"
        bgr = cv2.cvtColor(compose(photo, face_width, size), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise SystemExit(f"could not write {path}")
        paths.append(path)
    return paths


def one_pass(paths: list[Path], pipeline: FacePipeline, embedder: Embedder) -> tuple[float, list[np.ndarray | None]]:
    """Seconds for load -> process -> embed of every photo, and the embeddings."""
    start = time.perf_counter()
    embeddings = [embed_largest(load_image(path), pipeline, embedder) for path in paths]
    return time.perf_counter() - start, embeddings


def size_rows(
    paths: list[Path], pipelines: dict[str, FacePipeline], embedder: Embedder, refs: list[np.ndarray], repeats: int
) -> list[tuple[str, ...]]:
    """One row per setting: photos/s over `repeats` interleaved passes, found/N, median cosine to the originals."""
    seconds = dict.fromkeys(pipelines, 0.0)
    found: dict[str, list[np.ndarray | None]] = {}
    for _ in range(repeats):
        for setting, pipeline in pipelines.items():
            elapsed, found[setting] = one_pass(paths, pipeline, embedder)
            seconds[setting] += elapsed
    rows = []
    for setting, embeddings in found.items():
        cosines = [float(e @ r) for e, r in zip(embeddings, refs, strict=True) if e is not None]
        median = f"{statistics.median(cosines):.4f}" if cosines else "-"
        rate = f"{repeats * len(paths) / seconds[setting]:.2f}"
        rows.append((setting, rate, f"{len(cosines)}/{len(paths)}", median))
    return rows


def print_row(row: tuple[str, ...]) -> None:
    size, setting, *numbers = row
    cells = [f"{size:<{WIDTHS[0]}}", f"{setting:<{WIDTHS[1]}}"]
    cells += [f"{cell:>{width}}" for cell, width in zip(numbers, WIDTHS[2:], strict=True)]
    print("  ".join(cells), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=len(PHOTOS), help=f"photos per size (at most {len(PHOTOS)})")
    parser.add_argument("--repeats", type=int, default=3, help=f"timed passes per size up to {ONE_PASS_MP:g} MP")
    parser.add_argument("--model", type=Path, default=None, help="model card (default: the shipped one)")
    args = parser.parse_args(argv)
    lfw = lfw_images()
    if not lfw.is_dir():
        print(f"LFW photos not found at {lfw}: set FACEGATE_DATA to the datasets folder", file=sys.stderr)
        return 2
    if args.model is None and not SHIPPED_CARD.is_file():
        print(f"no shipped model at {SHIPPED_CARD}: name a card with --model", file=sys.stderr)
        return 2
    torch.set_num_threads(os.cpu_count() or 1)
    embedder = Embedder(args.model)
    before, after = DetectorSettings(max_side=UNBOUNDED), DetectorSettings()
    pipelines = {
        f"before (max_side {before.max_side})": FacePipeline(before, QualitySettings(), template=embedder.template),
        f"after (max_side {after.max_side})": FacePipeline(after, QualitySettings(), template=embedder.template),
    }
    print(
        f"model {embedder.model_id} ({embedder.card.architecture}), torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    if os.getloadavg()[0] >= (os.cpu_count() or 1):
        print("note: other processes keep the CPU busy: these rates are deflated; rerun on an idle machine")
    originals = [load_image(lfw / name) for name in PHOTOS[: args.photos]]
    for pipeline in pipelines.values():  # the same on 250x250 photos; also warms both detectors up
        refs, widths = references(originals, pipeline, embedder)
    print_row(("size (MP)", "setting", "photos/s", "found/N", "median cosine"))
    with tempfile.TemporaryDirectory() as folder:
        for size in SIZES:
            paths = write_photos(originals, widths, size, Path(folder))
            megapixels = size[0] * size[1] / 1e6
            repeats = 1 if megapixels > ONE_PASS_MP else args.repeats
            label = f"{megapixels:.2f} ({size[0]}x{size[1]})"
            for row in size_rows(paths, pipelines, embedder, refs, repeats):
                print_row((label, *row))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
