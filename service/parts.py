"""The server's share of the gate: the parts the commands use (gate.runtime.parts: each built once per process on first
use, the network only when an enrolment needs it), plus the model card and a lock for changes."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from gate.config import Settings
from gate.runtime.parts import LazyParts

if TYPE_CHECKING:
    from gate.matching.gallery import Gallery
    from gate.model.card import ModelCard


class ServiceParts(LazyParts):
    """One per server process: the gate's parts (gate.runtime.parts), its card, and a `lock` that serialises changes
    to who is enrolled (the gallery is one object)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.RLock()

    @cached_property
    def card(self) -> ModelCard:
        from gate.runtime.parts import card_only

        return card_only(self.settings).card

    def current_gallery(self) -> Gallery:
        """The gallery with every change made elsewhere (the CLI, another server) taken up."""
        gallery = self.gallery
        gallery.refresh()
        return gallery

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.close()
