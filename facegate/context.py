"""What the commands share: the validated settings and the gate's parts, each built once on first use."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from gate.config import Settings
from gate.embedder import Embedder
from gate.gallery import Gallery, open_gallery
from gate.pipeline import FacePipeline
from gate.runtime import Runtime, load_embedder, open_database
from gate.store import Database


@dataclass
class AppContext:
    settings: Settings
    config_file: Path = Path("config.toml")  # where the settings come from (or would, for the defaults)

    def configure_logging(self) -> None:
        logging.basicConfig(level=self.settings.logging.level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    @cached_property
    def embedder(self) -> Embedder:
        return load_embedder(self.settings)

    @cached_property
    def pipeline(self) -> FacePipeline:
        return FacePipeline(self.settings.detector, self.settings.quality, template=self.embedder.template)

    @cached_property
    def database(self) -> Database:
        return open_database(self.settings)

    @cached_property
    def gallery(self) -> Gallery:
        """The gallery of the configured model's templates (loaded, or rebuilt from the database)."""
        return open_gallery(self.database, self.settings, self.embedder)

    @cached_property
    def runtime(self) -> Runtime:
        """All the gate's parts together (built on first use, like each part)."""
        return Runtime(self.settings, self.embedder, self.pipeline, self.database, self.gallery)
