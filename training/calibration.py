"""Threshold calibration from impostor scores of people the model never saw: every pair of a held-out set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gate.config import CALIBRATED_FARS
from gate.errors import FaceGateError
from gate.model.card import ModelCard
from gate.model.scoring import Scorer
from training.metrics import threshold_at_far

FARS = CALIBRATED_FARS
TAR_KEY = "tar_at_far_"  # the summary's JSON holds the TAR at each FAR as tar_at_far_<far>
CARD_ENTRY = "calibration"  # where `facegate model calibrate` keeps the summary among a card's results


@dataclass(frozen=True)
class CalibrationSummary:
    """What a card's thresholds rest on: the genuine and impostor pairs, the TAR each calibration FAR's threshold
    gives on the genuine ones, and, once written into a card, how many people and images and who they are."""

    genuine_pairs: int
    impostor_pairs: int
    tar_at_far: dict[str, float] = field(default_factory=dict)
    people: int | None = None
    images: int | None = None
    who: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The card's JSON: the pairs, tar_at_far_<far> for each FAR, then the people, images and who if known."""
        known = {"people": self.people, "images": self.images, "who": self.who}
        return {
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            **{f"{TAR_KEY}{far}": tar for far, tar in self.tar_at_far.items()},
            **{name: value for name, value in known.items() if value is not None},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CalibrationSummary:
        """The summary back from a card's JSON; a key it does not know, or a missing count, is refused."""
        tar = {key.removeprefix(TAR_KEY): value for key, value in data.items() if key.startswith(TAR_KEY)}
        rest = {key: value for key, value in data.items() if not key.startswith(TAR_KEY)}
        try:
            return cls(**rest, tar_at_far=tar)
        except TypeError as error:
            raise FaceGateError(f"calibration summary: {error}") from None

    @classmethod
    def of_card(cls, card: ModelCard) -> CalibrationSummary:
        """The summary `facegate model calibrate` wrote into the card."""
        if CARD_ENTRY not in card.results:
            raise FaceGateError(f"model {card.model_id} has not been calibrated (its card has no {CARD_ENTRY} results)")
        return cls.from_json(card.results[CARD_ENTRY])


def all_pair_scores(
    embeddings: np.ndarray, labels: np.ndarray, scorer: Scorer | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (the model's `scorer`; default cosine) and same-person flags of every unordered pair (i < j)."""
    scores = (scorer or Scorer()).matrix(embeddings, embeddings)
    upper = np.triu_indices(len(labels), k=1)
    return scores[upper], labels[upper[0]] == labels[upper[1]]


def calibrate(embeddings: np.ndarray, labels: np.ndarray, scorer: Scorer | None = None) -> dict:
    """Thresholds at each target FAR from the impostor pairs, with the genuine accept rate each gives."""
    scores, same = all_pair_scores(embeddings, labels, scorer)
    genuine, impostor = scores[same], scores[~same]
    thresholds = {far: float(threshold_at_far(impostor, float(far))) for far in FARS}
    tar = {far: round(float(np.mean(genuine >= threshold)), 4) for far, threshold in thresholds.items()}
    summary = CalibrationSummary(genuine_pairs=int(len(genuine)), impostor_pairs=int(len(impostor)), tar_at_far=tar)
    return {"thresholds": thresholds, "summary": summary.to_json()}
