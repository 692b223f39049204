"""Derive, from data, the 5-point crop template at 150x150 that matches dlib's own face chips, for MTCNN's landmarks.

Run: `python benchmarks/dlib_template.py [--photos 600] [--seed 0] [--people FILE] [--out out/dlib_template.json]
[--no-check] [--check-photos 100] [--upsample 1]` (needs the `peer` extra: dlib-bin).

For `--photos` photos of the LFW people in peopleDevTrain.txt ($FACEGATE_DATA, default ../shared/datasets from
the repo root), drawn with a seeded RNG, it finds the face with FaceGate's MTCNN (the central face), takes the
dlib HOG detection that overlaps it most, fits dlib's 5-point shape predictor and gets the chip dlib's
face-recognition ResNet reads (`get_face_chip_details(shape, size=150, padding=0.25)`, compute_face_descriptor's
own arguments). MTCNN's landmarks are mapped into that chip with dlib's own mapping (get_mapping_to_chip in
dlib/image_transforms/interpolation.h) and averaged: the mean is the template, printed with each point's
standard deviation. It checks the mapping by comparing dlib's chip with cv2.warpAffine of the photo.

`--check` (default on) then aligns the first `--check-photos` used photos onto the derived template with
FaceGate's similarity transform and prints the cosine between dlib's descriptor of that crop and of dlib's own
chip, beside the cosine between different photos' chips for scale. Writes a JSON (template rounded to 0.1 px,
stds, counts, checks) to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from gate.errors import FaceGateError
from gate.vision.alignment import similarity_transform
from gate.vision.detection import Detector, Face, central_face
from gate.vision.imageio import load_image

SIZE = 150  # dlib's face-recognition chip: get_face_chip_details(shape, 150, padding)
PADDING = 0.25  # compute_face_descriptor's default padding
POINTS = ("left eye", "right eye", "nose", "left mouth", "right mouth")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    """One used photo: MTCNN's landmarks in the image and in dlib's chip, and what the descriptor check needs."""

    name: str
    landmarks: np.ndarray
    chip_points: np.ndarray
    chip_error: tuple[float, float]
    image: np.ndarray | None = None
    chip: np.ndarray | None = None


@dataclass
class Dlib:
    """dlib's HOG detector, 5-point shape predictor and face-recognition ResNet."""

    dlib: Any
    detector: Any
    shape: Any
    net: Any = field(repr=False)


def load_dlib() -> Dlib:
    try:
        import dlib
        import face_recognition_models as models
    except ImportError as error:
        raise SystemExit(f"needs the peer extra: pip install -e '.[peer]' ({error})") from None
    return Dlib(
        dlib=dlib,
        detector=dlib.get_frontal_face_detector(),
        shape=dlib.shape_predictor(models.pose_predictor_five_point_model_location()),
        net=dlib.face_recognition_model_v1(models.face_recognition_model_location()),
    )


def data_root() -> Path:
    return Path(os.environ.get("FACEGATE_DATA") or REPO / ".." / "shared" / "datasets").resolve()


def people_photos(people_file: Path, images: Path) -> list[Path]:
    """Every photo of the people in an LFW people file (first line a count, then `name count` lines)."""
    photos = []
    for line in people_file.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            name = parts[0]
            photos += [images / name / f"{name}_{i:04d}.jpg" for i in range(1, int(parts[1]) + 1)]
    return photos


def pick(photos: list[Path], count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(photos), size=min(count, len(photos)), replace=False)
    return [photos[i] for i in chosen]


def overlap(box: tuple[float, float, float, float], rect: Any) -> float:
    """Intersection over union of an (x1, y1, x2, y2) box and a dlib rectangle (inclusive corners)."""
    x1, y1, x2, y2 = box
    rx1, ry1, rx2, ry2 = rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1
    inter = max(0.0, min(x2, rx2) - max(x1, rx1)) * max(0.0, min(y2, ry2) - max(y1, ry1))
    union = (x2 - x1) * (y2 - y1) + (rx2 - rx1) * (ry2 - ry1) - inter
    return inter / union if union > 0 else 0.0


def rotate(point: tuple[float, float], centre: tuple[float, float], angle: float) -> tuple[float, float]:
    """dlib's rotate_point: p' = R(angle) (p - c) + c."""
    cos, sin = np.cos(angle), np.sin(angle)
    x, y = point[0] - centre[0], point[1] - centre[1]
    return cos * x - sin * y + centre[0], sin * x + cos * y + centre[1]


def chip_mapping(details: Any) -> np.ndarray:
    """The 2x3 affine from image to chip pixels: dlib's get_mapping_to_chip (interpolation.h)."""
    rect = details.rect
    left, top, right, bottom = rect.left(), rect.top(), rect.right(), rect.bottom()
    centre = ((left + right) / 2, (top + bottom) / 2)
    corners = [(left, top), (right, top), (right, bottom)]
    src = np.array([rotate(corner, centre, details.angle) for corner in corners], dtype=np.float32)
    cols, rows = details.cols, details.rows
    dst = np.array([(0, 0), (cols - 1, 0), (cols - 1, rows - 1)], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def chip_errors(image: np.ndarray, matrix: np.ndarray, chip: np.ndarray) -> tuple[float, float]:
    """Mean |dlib chip - cv2.warpAffine| in grey levels: of the uint8 warp (OpenCV rounds), and of the float warp
    truncated (dlib's bilinear interpolation truncates to uint8)."""
    warped = cv2.warpAffine(image, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    exact = cv2.warpAffine(image.astype(np.float32), matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
    rounded = float(np.abs(chip.astype(np.int16) - warped.astype(np.int16)).mean())
    truncated = float(np.abs(chip.astype(np.float32) - np.floor(exact)).mean())
    return rounded, truncated


def measure(path: Path, detector: Detector, dl: Dlib, upsample: int, keep: bool) -> Sample | str:
    """One photo's sample, or the reason it was skipped."""
    try:
        image = load_image(path)
    except FaceGateError:
        return "unreadable"
    height, width = image.shape[:2]
    face: Face | None = central_face(detector.detect(image), width, height)
    if face is None:
        return "no MTCNN face"
    rects = list(dl.detector(image, upsample))
    if not rects:
        return "no dlib face"
    best = max(rects, key=lambda rect: overlap(face.box, rect))
    if overlap(face.box, best) < 0.3:
        return "no dlib face on the MTCNN face"
    shape = dl.shape(image, best)
    details = dl.dlib.get_face_chip_details(shape, size=SIZE, padding=PADDING)
    matrix = chip_mapping(details)
    chip = dl.dlib.get_face_chip(image, shape, size=SIZE, padding=PADDING)
    return Sample(
        name=path.stem,
        landmarks=np.asarray(face.landmarks, dtype=np.float64),
        chip_points=transform(np.asarray(face.landmarks, dtype=np.float64), matrix),
        chip_error=chip_errors(image, matrix, chip),
        image=image if keep else None,
        chip=chip if keep else None,
    )


def collect(photos: list[Path], dl: Dlib, upsample: int, keep: int) -> tuple[list[Sample], Counter]:
    detector = Detector()
    samples: list[Sample] = []
    skipped: Counter = Counter()
    for path in tqdm(photos, desc="photos", unit="photo"):
        result = measure(path, detector, dl, upsample, keep=len(samples) < keep)
        if isinstance(result, str):
            skipped[result] += 1
        else:
            samples.append(result)
    return samples, skipped


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def descriptor_check(samples: list[Sample], template: np.ndarray, dl: Dlib) -> dict[str, float]:
    """dlib's descriptor of the crop aligned onto `template` against that of dlib's own chip."""
    ours, theirs = [], []
    for sample in tqdm(samples, desc="descriptors", unit="photo"):
        matrix = similarity_transform(sample.landmarks, template)
        crop = cv2.warpAffine(sample.image, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
        ours.append(np.array(dl.net.compute_face_descriptor(np.ascontiguousarray(crop))))
        theirs.append(np.array(dl.net.compute_face_descriptor(sample.chip)))
    same = np.array([cosine(a, b) for a, b in zip(ours, theirs, strict=True)])
    distance = np.array([np.linalg.norm(a - b) for a, b in zip(ours, theirs, strict=True)])
    # scale: different photos' dlib chips (consecutive used photos, almost always different people)
    other = np.array([cosine(theirs[i], theirs[i + 1]) for i in range(len(theirs) - 1)])
    return {
        "photos": len(same),
        "cosine_median": float(np.median(same)),
        "cosine_p5": float(np.percentile(same, 5)),
        "cosine_min": float(same.min()),
        "distance_median": float(np.median(distance)),
        "distance_p95": float(np.percentile(distance, 95)),
        "other_photos_cosine_median": float(np.median(other)) if len(other) else float("nan"),
    }


def report(samples: list[Sample], skipped: Counter, template: np.ndarray, stds: np.ndarray) -> dict[str, float]:
    errors = np.array([sample.chip_error[0] for sample in samples])
    truncated = np.array([sample.chip_error[1] for sample in samples])
    print(f"\nused {len(samples)} photos, skipped {sum(skipped.values())}: {dict(skipped) or '-'}")
    print(f"\n{'point':<12} {'x':>7} {'y':>7} {'std x':>7} {'std y':>7}")
    for name, (x, y), (sx, sy) in zip(POINTS, template, stds, strict=True):
        print(f"{name:<12} {x:7.1f} {y:7.1f} {sx:7.2f} {sy:7.2f}")
    chip = {
        "mean_abs_diff": float(errors.mean()),
        "p95_abs_diff": float(np.percentile(errors, 95)),
        "max_abs_diff": float(errors.max()),
        "truncated_mean_abs_diff": float(truncated.mean()),
        "truncated_max_abs_diff": float(truncated.max()),
    }
    print(
        "\nchip check, dlib.get_face_chip vs cv2.warpAffine with the mapping (mean |diff| per photo, grey levels): "
        f"mean {chip['mean_abs_diff']:.3f}, 95th pct {chip['p95_abs_diff']:.3f}, max {chip['max_abs_diff']:.3f}; "
        f"vs the float warp truncated as dlib does: mean {chip['truncated_mean_abs_diff']:.5f}, "
        f"max {chip['truncated_max_abs_diff']:.5f}"
    )
    return chip


def main() -> None:
    root = data_root()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=600, help="photos drawn (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--people", type=Path, default=root / "lfw" / "peopleDevTrain.txt")
    parser.add_argument("--out", type=Path, default=Path("out/dlib_template.json"))
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=True, help="descriptor check")
    parser.add_argument("--check-photos", type=int, default=100)
    parser.add_argument("--upsample", type=int, default=1, help="dlib HOG upsampling (face_recognition's 1)")
    args = parser.parse_args()

    dl = load_dlib()
    photos = pick(people_photos(args.people, root / "lfw" / "lfw-deepfunneled"), args.photos, args.seed)
    samples, skipped = collect(photos, dl, args.upsample, keep=args.check_photos if args.check else 0)
    if not samples:
        raise SystemExit("no photo gave both an MTCNN and a dlib face")
    points = np.stack([sample.chip_points for sample in samples])
    template, stds = points.mean(axis=0), points.std(axis=0)
    chip = report(samples, skipped, template, stds)
    result: dict[str, Any] = {
        "size": SIZE,
        "padding": PADDING,
        "points": list(POINTS),
        "template": np.round(template, 1).tolist(),
        "std": np.round(stds, 2).tolist(),
        "photos": len(photos),
        "used": len(samples),
        "skipped": dict(skipped),
        "seed": args.seed,
        "people": args.people.name,
        "chip_check": chip,
    }
    if args.check:
        check = descriptor_check(samples[: args.check_photos], np.round(template, 1), dl)
        print(
            f"\ndescriptor check ({check['photos']} photos), aligned onto the template vs dlib's chip: cosine median "
            f"{check['cosine_median']:.4f}, 5th pct {check['cosine_p5']:.4f}, min {check['cosine_min']:.4f}; "
            f"distance median {check['distance_median']:.3f}, 95th pct {check['distance_p95']:.3f} "
            f"(face_recognition's same-person limit 0.6); different photos' chips: cosine median "
            f"{check['other_photos_cosine_median']:.4f}"
        )
        result["descriptor_check"] = check
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
