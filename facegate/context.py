"""What the commands share: the validated settings and the gate's parts, each built once on first use (and
imported then: a command that embeds nothing never loads the network)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from gate.config import Settings

if TYPE_CHECKING:
    from gate.embedder import Embedder
    from gate.gallery import Gallery
    from gate.pipeline import FacePipeline
    from gate.runtime import Runtime
    from gate.store import Database


QUIET_LIBRARIES = ("faiss.loader",)  # says which CPU build it loaded, at INFO, on every import


@dataclass
class AppContext:
    settings: Settings
    config_file: Path = Path("config.toml")  # where the settings come from (or would, for the defaults)

    def configure_logging(self) -> None:
        level = self.settings.logging.level
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if level != "DEBUG":  # libraries imported after this (commands import their work lazily) stay quiet
            for name in QUIET_LIBRARIES:
                logging.getLogger(name).setLevel(logging.WARNING)

    @cached_property
    def embedder(self) -> Embedder:
        from gate.runtime import load_embedder

        return load_embedder(self.settings)

    @cached_property
    def pipeline(self) -> FacePipeline:
        from gate.pipeline import FacePipeline

        return FacePipeline(self.settings.detector, self.settings.quality, template=self.embedder.template)

    @cached_property
    def database(self) -> Database:
        from gate.runtime import open_database

        return open_database(self.settings)

    @cached_property
    def gallery(self) -> Gallery:
        """The gallery of the configured model's templates (loaded, or rebuilt from the database); the model's card
        is enough when no network has been loaded yet (a removal embeds nothing)."""
        from gate.gallery import open_gallery
        from gate.runtime import card_only

        model = self.__dict__.get("embedder") or card_only(self.settings)
        return open_gallery(self.database, self.settings, model)

    @cached_property
    def runtime(self) -> Runtime:
        """All the gate's parts together (built on first use, like each part)."""
        from gate.runtime import Runtime

        return Runtime(self.settings, self.embedder, self.pipeline, self.database, self.gallery)
