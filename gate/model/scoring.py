"""How a model's two embeddings are scored: plain cosine, or cosine normalised against a cohort (adaptive S-norm).

With a cohort (embeddings of people neither enrolled nor used to calibrate), each embedding gets the mean and
spread of its `top_k` highest cosines to the cohort: how close it sits to strangers in general. A pair's cosine s
becomes 0.5 * ((s - mu_a) / sd_a + (s - mu_b) / sd_b), so a face that resembles many people needs a higher cosine
to pass than one that resembles few. The card's thresholds are then on this scale (docs/research/dlib-port.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gate.errors import FaceGateError
from gate.model.card import ModelCard, cohort_path

CHUNK = 4096  # embeddings scored against the cohort at once (bounds the memory of one matrix product)


class Scorer:
    """`stats(embeddings)` once per embedding, then `normalise(cosines, stats_a, stats_b)` for any pairs."""

    def __init__(self, cohort: np.ndarray | None = None, top_k: int = 0) -> None:
        if cohort is not None and not 1 <= top_k <= len(cohort):
            raise FaceGateError(f"score normalisation: top_k {top_k} must be 1..{len(cohort)} (the cohort's size)")
        self.cohort = None if cohort is None else np.ascontiguousarray(cohort, dtype=np.float32)
        self.top_k = top_k

    @property
    def normalised(self) -> bool:
        return self.cohort is not None

    def stats(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, 2): mean and standard deviation of each row's top_k cohort cosines; (0, 1) rows without a cohort."""
        rows = np.asarray(embeddings, dtype=np.float32).reshape(len(embeddings), -1)
        out = np.tile(np.array([0.0, 1.0], np.float32), (len(rows), 1))
        if self.cohort is None:
            return out
        for start in range(0, len(rows), CHUNK):
            cosines = rows[start : start + CHUNK] @ self.cohort.T
            top = np.partition(cosines, len(self.cohort) - self.top_k, axis=1)[:, -self.top_k :]
            out[start : start + len(top), 0] = top.mean(axis=1)
            out[start : start + len(top), 1] = top.std(axis=1) + 1e-6
        return out

    def normalise(self, cosines: np.ndarray, stats_a: np.ndarray, stats_b: np.ndarray) -> np.ndarray:
        """Scores of pairs with these cosines, stats broadcasting like the cosines (returned as is without a cohort)."""
        if self.cohort is None:
            return cosines
        mean_a, sd_a = stats_a[..., 0], stats_a[..., 1]
        mean_b, sd_b = stats_b[..., 0], stats_b[..., 1]
        return 0.5 * ((cosines - mean_a) / sd_a + (cosines - mean_b) / sd_b)

    def pair_scores(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Scores of row i of `left` with row i of `right`."""
        cosines = np.einsum("ij,ij->i", left, right)
        return self.normalise(cosines, self.stats(left), self.stats(right))

    def matrix(self, queries: np.ndarray, references: np.ndarray) -> np.ndarray:
        """(Q, R) scores of every query with every reference."""
        cosines = queries @ references.T
        return self.normalise(cosines, self.stats(queries)[:, None, :], self.stats(references)[None, :, :])


def write_cohort(path: Path, embeddings: np.ndarray, people: np.ndarray) -> None:
    """Store a cohort: its embeddings in float16 (half the file; scores move by < 1e-3) and whose they are."""
    np.savez(path, embeddings=embeddings.astype(np.float16), people=np.asarray(people, dtype=str))


def read_cohort(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings float32, people) of a cohort file written by write_cohort; one-line error when unreadable."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return stored["embeddings"].astype(np.float32), stored["people"]
    except (OSError, ValueError, KeyError) as error:
        raise FaceGateError(f"{path}: not a readable score-normalisation cohort ({error})") from None


def card_scorer(card_path: Path, card: ModelCard) -> Scorer:
    """The scorer a card asks for: plain cosine, or S-norm against its cohort file."""
    if not card.score_norm:
        return Scorer()
    embeddings, _ = read_cohort(cohort_path(card_path, card))
    if embeddings.ndim != 2 or embeddings.shape[1] != card.embedding_size:
        raise FaceGateError(f"{card_path}: its cohort holds {embeddings.shape} vectors, not {card.embedding_size}-d")
    return Scorer(embeddings, int(card.score_norm.get("top_k", 0)))


def cohort_people(card_path: Path, card: ModelCard) -> set[str]:
    """Whose faces a card's cohort holds (none without score normalisation): evaluations must leave them out."""
    return set(read_cohort(cohort_path(card_path, card))[1].tolist()) if card.score_norm else set()
