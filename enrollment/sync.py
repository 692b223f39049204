"""One database transaction together with its gallery change: both happen, or neither does."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session

from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.store.database import Database
from gate.store.people import Owner

log = logging.getLogger(__name__)


@dataclass
class IndexChange:
    """Templates to add to and remove from the gallery, with what is needed to undo it."""

    add_ids: list[int] = field(default_factory=list)
    add_vectors: list[np.ndarray] = field(default_factory=list)
    add_owners: list[Owner] = field(default_factory=list)
    remove_ids: list[int] = field(default_factory=list)
    remove_vectors: list[np.ndarray] = field(default_factory=list)
    remove_owners: list[Owner] = field(default_factory=list)
    _removed: bool = False
    _added: bool = False

    def apply(self, gallery: Gallery) -> None:
        if self.remove_ids:
            gallery.remove(np.array(self.remove_ids, dtype=np.int64))
            self._removed = True
        if self.add_ids:
            gallery.add(np.array(self.add_ids, dtype=np.int64), np.stack(self.add_vectors), self.add_owners)
            self._added = True

    def undo(self, gallery: Gallery) -> None:
        if self._added:
            gallery.remove(np.array(self.add_ids, dtype=np.int64))
        if self._removed:
            gallery.add(np.array(self.remove_ids, dtype=np.int64), np.stack(self.remove_vectors), self.remove_owners)

    @classmethod
    def removing(cls, gallery: Gallery, vectors: dict[int, np.ndarray], owner: Owner) -> IndexChange:
        """The removal of one person's templates (template id -> vector) from the gallery, those it holds."""
        indexed = [template_id for template_id in vectors if template_id in gallery]
        return cls(
            remove_ids=indexed,
            remove_vectors=[vectors[template_id] for template_id in indexed],
            remove_owners=[owner] * len(indexed),
        )

    @property
    def touched(self) -> bool:
        return self._added or self._removed


def write_with_index(database: Database, gallery: Gallery, write: Callable[[Session], IndexChange]) -> IndexChange:
    """Run `write` in one transaction, apply its gallery change and save the index file before committing.

    Any error leaves the database and the index (in memory and on disk) as they were: the transaction rolls
    back and the change is undone. A crash between saving the index and the commit leaves an index file that
    disagrees with the database, which the next `Gallery.open` notices and rebuilds.
    """
    change: IndexChange | None = None
    try:
        with database.session() as session:
            change = write(session)
            change.apply(gallery)
            if change.touched:
                gallery.save()
    except BaseException:
        if change is not None and change.touched:
            change.undo(gallery)
            _save_after_undo(gallery)
        raise
    return change


def _save_after_undo(gallery: Gallery) -> None:
    try:
        gallery.save()
    except FaceGateError as error:
        log.warning("%s; it will be rebuilt from the database when next opened", error)
