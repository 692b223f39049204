"""Presentation-attack species for the liveness evaluation, each rendered from one photo and its 5 landmarks as a
walk-up clip: flat replay, flat replay with per-frame perspective jitter, prints bent mildly and strongly, and the
photo animated into a small head turn by warping its landmark triangulation; beside the 3D-like walk-up (bona fide).

Every clip of one person is drawn from the same seed, so all share the backdrop, the approach and the light.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from evaluation.head_motion import FLAT, HEAD, ClipSpec, Motion, draw_motion, head_depth, head_turn, plane_turn
from evaluation.turnstile import background, expose, walk_frame

JITTER, BEND_MILD, BEND_STRONG, ANIMATED = "jitter", "bend_mild", "bend_strong", "animated"
ATTACKS = (FLAT, JITTER, BEND_MILD, BEND_STRONG, ANIMATED)  # the presentation-attack instrument species
BONA_FIDE = HEAD  # the 3D-like walk-up
SPECIES = (*ATTACKS, BONA_FIDE)
JITTER_SHARE = 0.02  # jitter: standard deviation of each photo corner's per-frame shift, as a share of its side
BEND_RADIUS_EYES = {BEND_MILD: 6.0, BEND_STRONG: 2.5}  # a bent print's cylinder radius, in eye distances
MESH_RINGS = ((0.6, 8), (1.0, 12))  # animated: control rings (share of the head's outline, points on each)
HEAD_HALF_EYES = (1.3, 1.8)  # the head outline's half width and half height in eye distances (as head_depth's)

Frames = Callable[[np.ndarray, np.ndarray, Motion, np.random.Generator, ClipSpec], Iterator[np.ndarray]]


@dataclass(frozen=True)
class SpeciesClip:
    """One species' clip of a photo: its motion (amplitudes drawn per clip) and its frames (RGB uint8)."""

    species: str
    motion: Motion
    frames: Iterator[np.ndarray]


def eye_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The face's centre (between eyes and mouth), the unit vector along the eye line, and the eye distance."""
    points = np.asarray(landmarks, np.float64)
    across = points[1] - points[0]
    eye_distance = float(np.linalg.norm(across))
    return (points[:2].mean(axis=0) + points[3:].mean(axis=0)) / 2, across / eye_distance, eye_distance


def bend_depth(shape: tuple[int, int], landmarks: np.ndarray, radius_eyes: float) -> np.ndarray:
    """(H, W) float32 depth of a print bent round a vertical cylinder of `radius_eyes` eye distances whose crest
    runs through the face's centre: 0 on the crest, the sides curving away from the camera (negative)."""
    centre, _, eye_distance = eye_frame(landmarks)
    radius = radius_eyes * eye_distance
    across = np.clip(np.arange(shape[1], dtype=np.float64) - centre[0], -radius, radius)
    row = np.sqrt(radius**2 - across**2) - radius
    return np.repeat(row[None, :], shape[0], axis=0).astype(np.float32)


def mesh_points(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """(N, 2) control points of a face mesh: the 5 landmarks, rings on the head's outline and the photo's border."""
    centre, unit, eye_distance = eye_frame(landmarks)
    normal = np.array([-unit[1], unit[0]])
    rings = []
    for share, count in MESH_RINGS:
        angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
        half_w, half_h = (share * half * eye_distance for half in HEAD_HALF_EYES)
        rings.append(centre + np.outer(half_w * np.cos(angles), unit) + np.outer(half_h * np.sin(angles), normal))
    height, width = shape
    border = [[x, y] for x in (0, (width - 1) / 2, width - 1) for y in (0, (height - 1) / 2, height - 1)]
    border.remove([(width - 1) / 2, (height - 1) / 2])
    return np.concatenate([np.asarray(landmarks, np.float64), *rings, np.asarray(border)])


def mesh_depth(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """(H, W) float32: `head_depth` kept only at the mesh's control points and spread linearly over each triangle
    of their Delaunay triangulation, so a turn warps every triangle as one plane (an animated photo)."""
    points = mesh_points(shape, landmarks)
    full = head_depth(shape, landmarks)
    inside = np.clip(np.round(points).astype(int), 0, [shape[1] - 1, shape[0] - 1])
    values = full[inside[:, 1], inside[:, 0]].astype(np.float64)
    subdiv = cv2.Subdiv2D((0, 0, shape[1], shape[0]))
    for point in points:
        subdiv.insert((float(np.clip(point[0], 0, shape[1] - 1)), float(np.clip(point[1], 0, shape[0] - 1))))
    depth = np.zeros(shape, np.float32)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    for triangle in np.asarray(subdiv.getTriangleList()).reshape(-1, 3, 2):
        nearest = [int(np.argmin(np.linalg.norm(points - corner, axis=1))) for corner in triangle]
        plane = np.linalg.lstsq(np.c_[points[nearest], np.ones(3)], values[nearest], rcond=None)[0]
        mask = np.zeros(shape, np.uint8)
        cv2.fillConvexPoly(mask, np.round(triangle).astype(np.int32), 1)
        depth[mask > 0] = (plane[0] * xs + plane[1] * ys + plane[2])[mask > 0]
    return depth


def corner_jitter(shape: tuple[int, int], rng: np.random.Generator, share: float = JITTER_SHARE) -> np.ndarray:
    """3x3 homography that moves each corner of a (height, width) image by a normal draw of `share` of its side:
    a slight perspective warp of its own for every frame, as an attacker's editing tool would make."""
    height, width = shape
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    moved = corners + rng.normal(0, share, (4, 2)).astype(np.float32) * np.array([width, height], np.float32)
    return cv2.getPerspectiveTransform(corners, moved)


def _turns(
    photo: np.ndarray, motion: Motion, count: int, depth: np.ndarray | None, jitters: list[np.ndarray] | None
) -> Iterator[np.ndarray]:
    """The photo at each of `count` moments: turned as a plane (depth None) or as the surface `depth`; with
    `jitters`, each frame's plane further warped by its own homography."""
    size = photo.shape[1], photo.shape[0]
    for step in range(count):
        angles = motion.angles(step / max(1, count - 1))
        if depth is not None:
            yield head_turn(photo, depth, *angles)
        elif jitters is None:
            yield plane_turn(photo, *angles)
        else:
            yield cv2.warpPerspective(plane_turn(photo, *angles), jitters[step], size, borderMode=cv2.BORDER_REFLECT)


def species_views(
    species: str, photo: np.ndarray, landmarks: np.ndarray, motion: Motion, count: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """The photo as the camera sees the species at each of `count` moments of `motion`, before the walk-up places,
    lights, blurs and noises it: turned as a plane (flat; jitter adds each frame's own homography, drawn from
    `rng` now), or as a surface with depth (a bent print, the animated mesh, the 3D-like head)."""
    if species not in SPECIES:
        raise ValueError(f"species {species!r}: expected one of {', '.join(SPECIES)}")
    shape = photo.shape[:2]
    jitters = [corner_jitter(shape, rng) for _ in range(count)] if species == JITTER else None
    depth = None
    if species == BONA_FIDE:
        depth = head_depth(shape, landmarks)
    elif species == ANIMATED:
        depth = mesh_depth(shape, landmarks)
    elif species in BEND_RADIUS_EYES:
        depth = bend_depth(shape, landmarks, BEND_RADIUS_EYES[species])
    return _turns(photo, motion, count, depth, jitters)


def species_clip(
    species: str, photo: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, spec: ClipSpec
) -> SpeciesClip:
    """A walk-up clip of `species` from one photo: its motion is drawn first (the same draws for every species,
    so a person's clips share the approach), then the backdrop; the frames are rendered as they are read."""
    motion = draw_motion(HEAD if species in (BONA_FIDE, ANIMATED) else FLAT, rng, spec)
    backdrop = background(spec.width, spec.height, rng)
    count = spec.frames
    views = species_views(species, photo, landmarks, motion, count, rng)
    frames = (
        expose(walk_frame(view, backdrop, motion.path, step / max(1, count - 1), spec.turnstile), rng)
        for step, view in enumerate(views)
    )
    return SpeciesClip(species, motion, frames)
