"""The model card: a JSON file travelling with the weights (architecture, crop template, thresholds, checksum)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gate.errors import FaceGateError

SHIPPED_MODELS = Path(__file__).parents[1] / "models"
SHIPPED_CARD = SHIPPED_MODELS / "default.json"  # dlib's ResNet, converted (gate/model/dlib_format.py) and calibrated


def shipped_model_names() -> list[str]:
    """The models shipped inside the package, selectable by name in `[model] path` (e.g. "mobilefacenet")."""
    return sorted(p.stem for p in SHIPPED_MODELS.glob("*.json"))


def locate_card(value: str, base_dir: Path) -> Path:
    """`[model] path`: empty for the default, a shipped model's name, or a card path (relative to base_dir)."""
    if not value:
        return SHIPPED_CARD
    if value in shipped_model_names():
        return SHIPPED_MODELS / f"{value}.json"
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


@dataclass(frozen=True)
class ModelCard:
    """What the gate must know about a model to feed it and to trust its scores."""

    model_id: str
    architecture: str
    input_size: int
    embedding_size: int
    crop_template: list[list[float]]  # the 5 landmark positions the crops were aligned to, in pixels
    weights_file: str  # relative to the card's folder
    sha256: str
    thresholds: dict[str, float] = field(default_factory=dict)  # target FAR (as a string) -> cosine threshold
    training: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    # where the weights came from when not trained here: file, sha256, licence, training-data caveat
    source: dict = field(default_factory=dict)
    # score normalisation (gate/model/scoring.py): cohort_file (relative to the card's folder), sha256, top_k, and
    # who the cohort people are; empty: plain cosine. The thresholds are on the scale this gives.
    score_norm: dict = field(default_factory=dict)

    def threshold(self, target_far: str) -> float:
        if target_far not in self.thresholds:
            known = ", ".join(sorted(self.thresholds)) or "none"
            raise FaceGateError(f"model {self.model_id} has no threshold for FAR {target_far} (it has: {known})")
        return self.thresholds[target_far]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(path: Path) -> ModelCard:
    """Read and check a card and its weights file: present, well-formed, checksum matching."""
    if not path.is_file():
        raise FaceGateError(f"model card not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        card = ModelCard(**data)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as error:
        raise FaceGateError(f"{path}: not a valid model card ({error})") from None
    weights = weights_path(path, card)
    if not weights.is_file():
        raise FaceGateError(f"{path}: weights file {weights} not found")
    if sha256_of(weights) != card.sha256:
        raise FaceGateError(f"{weights}: checksum does not match its model card {path} (file damaged or replaced)")
    if card.score_norm:
        cohort = cohort_path(path, card)
        if not cohort.is_file():
            raise FaceGateError(f"{path}: score-normalisation cohort {cohort} not found")
        if sha256_of(cohort) != card.score_norm.get("sha256"):
            raise FaceGateError(f"{cohort}: checksum does not match its model card {path} (file damaged or replaced)")
    return card


def weights_path(card_path: Path, card: ModelCard) -> Path:
    return card_path.parent / card.weights_file


def cohort_path(card_path: Path, card: ModelCard) -> Path:
    return card_path.parent / card.score_norm["cohort_file"]
