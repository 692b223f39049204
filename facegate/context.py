"""What the commands share: the validated settings, where they came from, the logging, and the gate's parts
(gate.runtime.parts: each built once on first use)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gate.config import Settings
from gate.runtime.parts import LazyParts

QUIET_LIBRARIES = ("faiss.loader",)  # says which CPU build it loaded, at INFO, on every import


@dataclass
class AppContext(LazyParts):
    settings: Settings
    config_file: Path = Path("config.toml")  # where the settings come from (or would, for the defaults)
    config_found: bool = True  # False: none found, the defaults; the site's data is refused (gate.runtime.parts)

    def configure_logging(self) -> None:
        level = self.settings.logging.level
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if level != "DEBUG":  # libraries imported after this (commands import their work lazily) stay quiet
            for name in QUIET_LIBRARIES:
                logging.getLogger(name).setLevel(logging.WARNING)
