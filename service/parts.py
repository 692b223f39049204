"""The server's share of the gate: settings, database, gallery and (only when an enrolment needs it) the network,
each built once per process on first use, as the commands' context builds them."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from gate.config import Settings

if TYPE_CHECKING:
    from gate.embedder import Embedder
    from gate.gallery import Gallery
    from gate.model_card import ModelCard
    from gate.runtime import Runtime
    from gate.store import Database


class ServiceParts:
    """One per server process. `lock` serialises changes to who is enrolled (the gallery is one object)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.RLock()

    @cached_property
    def database(self) -> Database:
        from gate.runtime import open_database

        return open_database(self.settings)

    @cached_property
    def card(self) -> ModelCard:
        from gate.runtime import card_only

        return card_only(self.settings).card

    @cached_property
    def embedder(self) -> Embedder:
        from gate.runtime import load_embedder

        return load_embedder(self.settings)

    @cached_property
    def gallery(self) -> Gallery:
        """The configured model's gallery; the card is enough while no network is loaded (a removal embeds
        nothing). Brought up to date with the database before each change."""
        from gate.gallery import open_gallery
        from gate.runtime import card_only

        model = self.__dict__.get("embedder") or card_only(self.settings)
        return open_gallery(self.database, self.settings, model)

    @cached_property
    def runtime(self) -> Runtime:
        """Everything an enrolment needs (loads the network the first time)."""
        from gate.pipeline import FacePipeline
        from gate.runtime import Runtime

        embedder = self.embedder
        pipeline = FacePipeline(self.settings.detector, self.settings.quality, template=embedder.template)
        return Runtime(self.settings, embedder, pipeline, self.database, self.gallery)

    def current_gallery(self) -> Gallery:
        """The gallery with every change made elsewhere (the CLI, another server) taken up."""
        gallery = self.gallery
        gallery.refresh()
        return gallery

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.close()
