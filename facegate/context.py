"""What the commands share: the validated settings and the gate's parts, each built once on first use."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from gate.config import Settings
from gate.embedder import Embedder
from gate.pipeline import FacePipeline


@dataclass
class AppContext:
    settings: Settings

    def configure_logging(self) -> None:
        logging.basicConfig(
            level=self.settings.logging.level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

    @cached_property
    def embedder(self) -> Embedder:
        path = self.settings.model.path
        return Embedder(self.settings.resolve(path) if path else None, device=self.settings.model.device)

    @cached_property
    def pipeline(self) -> FacePipeline:
        return FacePipeline(self.settings.detector, self.settings.quality, crop_size=self.embedder.input_size)
