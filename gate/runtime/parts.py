"""The gate's parts, assembled in one place: settings, pipeline, embedder, database and gallery travel together.

`Runtime` opens them all at once (the gate loop, enrolment, the demo and the evaluations take one instead of five
parts by hand); `LazyParts` builds each on first use, for a command or a server process that may need only some:
listing people or the access log never loads the network. Each heavy module (torch, FAISS, the store) is imported
only where its part is built, so importing this module, as every command does, costs nothing (nor --help).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from gate.config import Settings, no_config_found
from gate.errors import FaceGateError

if TYPE_CHECKING:  # each imported where its part is built (see above)
    from gate.matching.gallery import Gallery
    from gate.model.card import ModelCard
    from gate.model.embedder import Embedder
    from gate.model.scoring import Scorer
    from gate.store.database import Database
    from gate.vision.faces import FacePipeline


@dataclass
class Runtime:
    settings: Settings
    embedder: Embedder
    pipeline: FacePipeline
    database: Database
    gallery: Gallery

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None, database: Database | None = None) -> Runtime:
        """Every part from the settings (the configured model unless `embedder`, the configured database unless
        `database`); the gallery is loaded, or rebuilt from the database."""
        from gate.matching.gallery import open_gallery
        from gate.vision.faces import FacePipeline

        embedder = embedder or load_embedder(settings)
        database = database or open_database(settings)
        pipeline = FacePipeline(settings.detector, settings.quality, template=embedder.template)
        return cls(settings, embedder, pipeline, database, open_gallery(database, settings, embedder))

    @property
    def threshold(self) -> float:
        """The decision threshold: the configured override, else the card's at the configured FAR."""
        from gate.decision.policy import threshold_for

        return threshold_for(self.settings.decision, self.embedder.card)

    def close(self) -> None:
        self.database.close()


def open_database(settings: Settings) -> Database:
    """The configured database ([database] url), its templates sealed with the configured key if one is set."""
    from gate.store.database import Database
    from gate.store.encryption import load_cipher

    return Database(settings.database_url, cipher=load_cipher(settings))


@dataclass(frozen=True)
class CardOnly:
    """What a gallery needs of a model (its id, size and scoring), read from its card without the network."""

    card: ModelCard
    scorer: Scorer

    @property
    def model_id(self) -> str:
        return self.card.model_id


def card_only(settings: Settings) -> CardOnly:
    """The configured model's card and scorer, for work that compares stored templates but embeds nothing."""
    from gate.model.card import locate_card, read_card
    from gate.model.scoring import card_scorer

    path = locate_card(settings.model.path, settings.base_dir)
    card = read_card(path)
    return CardOnly(card, card_scorer(path, card))


def load_embedder(settings: Settings, card: Path | None = None) -> Embedder:
    """The configured model ([model] path), or the model of `card`, on the configured device and flip averaging."""
    from gate.model.card import locate_card
    from gate.model.embedder import Embedder

    model = settings.model
    card = card or locate_card(model.path, settings.base_dir)
    return Embedder(card, device=model.device, flip=model.flip_average)


class LazyParts:
    """Database, embedder, pipeline, gallery and the whole runtime, each built once when first asked for.
    Subclasses provide `settings` (an attribute or a dataclass field), and `config_found` False when no config
    file was found: the settings are then the built-in defaults, and the site's data (the database, and the index,
    crops and journal that follow it) is refused here rather than made in ./data wherever the command started."""

    settings: Settings
    config_found: bool = True

    def require_config(self) -> None:
        """Refuse (one line, naming `facegate init`) when no config file was found."""
        if not self.config_found:
            raise FaceGateError(no_config_found())

    @cached_property
    def database(self) -> Database:
        self.require_config()
        return open_database(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        return load_embedder(self.settings)

    @cached_property
    def pipeline(self) -> FacePipeline:
        from gate.vision.faces import FacePipeline

        return FacePipeline(self.settings.detector, self.settings.quality, template=self.embedder.template)

    @cached_property
    def gallery(self) -> Gallery:
        """The configured model's gallery (loaded, or rebuilt from the database); the model's card is enough
        while no network has been loaded (a removal embeds nothing)."""
        from gate.matching.gallery import open_gallery

        model = self.__dict__.get("embedder") or card_only(self.settings)
        return open_gallery(self.database, self.settings, model)

    @cached_property
    def runtime(self) -> Runtime:
        """All the parts together (the network is loaded the first time)."""
        return Runtime(self.settings, self.embedder, self.pipeline, self.database, self.gallery)
