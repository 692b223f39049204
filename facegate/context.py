"""What the commands share: the validated settings, where they came from, the logging, and the gate's parts
(gate.runtime.parts: each built once on first use)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gate.config import Settings
from gate.runtime.parts import LazyParts

# libraries that log at INFO what a site need not see: which CPU build FAISS loaded (on every import), each of
# Alembic's migration steps when a new database is made (about 20 lines); --verbose or level DEBUG shows them
QUIET_LIBRARIES = ("faiss.loader", "alembic")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# [logging] format = "json": one object per line; the record's own names renamed to the ones log collectors expect
JSON_FIELDS = ("levelname", "name", "message")
JSON_NAMES = {"levelname": "level", "name": "logger", "exc_info": "exception"}


@dataclass
class AppContext(LazyParts):
    settings: Settings
    config_file: Path = Path("config.toml")  # where the settings come from (or would, for the defaults)
    config_found: bool = True  # False: none found, the defaults; the site's data is refused (gate.runtime.parts)

    def configure_logging(self, verbose: bool = False) -> None:
        """Log to stderr at [logging] level (DEBUG with `verbose`) in [logging] format."""
        level = "DEBUG" if verbose else self.settings.logging.level
        handler = logging.StreamHandler()
        if self.settings.logging.format == "json":  # for journald and log collectors; time in UTC, ISO 8601
            from pythonjsonlogger.json import JsonFormatter

            handler.setFormatter(JsonFormatter(list(JSON_FIELDS), timestamp="time", rename_fields=JSON_NAMES))
        else:
            handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        logging.basicConfig(level=level, handlers=[handler])
        if level != "DEBUG":  # libraries imported after this (commands import their work lazily) stay quiet
            for name in QUIET_LIBRARIES:
                logging.getLogger(name).setLevel(logging.WARNING)
