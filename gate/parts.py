"""The gate's parts for a command or a server process, each built on first use and its heavy modules imported
only then: listing people or the access log never loads the network (nor FAISS, nor the store, for --help)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from gate.config import Settings

if TYPE_CHECKING:
    from gate.embedder import Embedder
    from gate.gallery import Gallery
    from gate.pipeline import FacePipeline
    from gate.runtime import Runtime
    from gate.store import Database


class LazyParts:
    """Database, embedder, pipeline, gallery and the whole runtime, each built once when first asked for.
    Subclasses provide `settings` (an attribute or a dataclass field)."""

    settings: Settings

    @cached_property
    def database(self) -> Database:
        from gate.runtime import open_database

        return open_database(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        from gate.runtime import load_embedder

        return load_embedder(self.settings)

    @cached_property
    def pipeline(self) -> FacePipeline:
        from gate.pipeline import FacePipeline

        return FacePipeline(self.settings.detector, self.settings.quality, template=self.embedder.template)

    @cached_property
    def gallery(self) -> Gallery:
        """The configured model's gallery (loaded, or rebuilt from the database); the model's card is enough
        while no network has been loaded (a removal embeds nothing)."""
        from gate.gallery import open_gallery
        from gate.runtime import card_only

        model = self.__dict__.get("embedder") or card_only(self.settings)
        return open_gallery(self.database, self.settings, model)

    @cached_property
    def runtime(self) -> Runtime:
        """All the parts together (the network is loaded the first time)."""
        from gate.runtime import Runtime

        return Runtime(self.settings, self.embedder, self.pipeline, self.database, self.gallery)
