"""The gallery: the enrolled templates of one model, kept in step with the database (the source of truth).

Search is `TemplateSet`'s (gate/matching/search.py); the index file and its proof are `IndexFile`'s
(gate/matching/index_file.py). On open the saved index is used when it agrees with the database, else rebuilt
from it; `refresh` takes up enrolment changes made since by any process on the same database.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import faiss
import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from gate.config import GallerySettings, Settings
from gate.errors import FaceGateError
from gate.matching.index_file import IndexFile, expected_sidecar, vectors_digest
from gate.matching.search import Match, TemplateSet
from gate.model.scoring import Scorer
from gate.store.database import Database, database_error
from gate.store.people import Owner

if TYPE_CHECKING:
    from gate.model.card import ModelCard

log = logging.getLogger(__name__)


class Gallery:
    """Templates of one model: `search(embeddings (N, D)) -> list[Match | None]`; ids are the template ids."""

    def __init__(
        self,
        database: Database,
        settings: GallerySettings,
        index_path: Path,
        model_id: str,
        embedding_size: int,
        scorer: Scorer | None = None,
    ) -> None:
        """An empty gallery; use `Gallery.open` to get one filled from the file or the database."""
        self.database, self.settings, self.model_id, self.embedding_size = database, settings, model_id, embedding_size
        self.scorer = scorer or Scorer()
        self.file = IndexFile(Path(index_path), database.cipher)
        self.templates = TemplateSet(settings, model_id, embedding_size, self.scorer)
        self._saved_stamp: int | None = None  # the sidecar's mtime when this process last read or wrote it
        self._version: int | None = None  # the database's enrolment change counter when this gallery was loaded
        self._unreadable = False  # the last refresh could not read the database

    @classmethod
    def open(
        cls,
        database: Database,
        settings: GallerySettings,
        index_path: Path,
        model_id: str,
        embedding_size: int,
        scorer: Scorer | None = None,
    ) -> Gallery:
        """Load the saved index if it agrees with the database, else rebuild it from the database and save."""
        gallery = cls(database, settings, index_path, model_id, embedding_size, scorer)
        gallery.file.prepare()
        gallery._version = database.gallery_version()  # read first: a change while loading triggers a reload
        problem = gallery._load(database.template_owners(model_id))
        if problem is None:
            log.info("gallery %s: %d templates of model %s", gallery.index_path, len(gallery), model_id)
        else:
            log.info("gallery %s: rebuilding from the database (%s)", gallery.index_path, problem)
            gallery.rebuild()
            try:
                gallery.save()
            except FaceGateError as error:
                log.warning("%s; the gallery works from memory this time", error)
        if not gallery.templates.owners:
            warn_empty(database, model_id)
        gallery._saved_stamp = gallery.file.stamp()
        return gallery

    def refresh(self) -> bool:
        """Take up enrolment changes made since by anyone: this machine's enroll command (the index file's
        sidecar moved) or any process on the same database, on any machine (its change counter moved). Costs a
        stat() and one small query when nothing changed; True when the gallery was reloaded. A database that
        cannot be read right now keeps the gallery as it is (logged), never stops the gate."""
        try:
            if self.file.stamp() == self._saved_stamp and self.database.gallery_version() == self._version:
                return False
            fresh = Gallery.open(
                self.database, self.settings, self.index_path, self.model_id, self.embedding_size, self.scorer
            )
        except SQLAlchemyError as error:
            if not self._unreadable:  # once per outage, not every refresh
                log.warning("gallery kept as it is, the database cannot be read: %s", database_error(error))
            self._unreadable = True
            return False
        self._unreadable = False
        self.templates, self._saved_stamp, self._version = fresh.templates, fresh._saved_stamp, fresh._version
        log.info("gallery reloaded: %d templates", len(self))
        return True

    def __len__(self) -> int:
        return len(self.templates)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self.templates.owners

    @property
    def index_path(self) -> Path:
        return self.file.path

    @property
    def sidecar_path(self) -> Path:
        return self.file.sidecar_path

    def search(self, embeddings: np.ndarray) -> list[Match | None]:
        """The best person for each query row (None when the gallery is empty), whatever the score."""
        return [found[0] if found else None for found in self.candidates(embeddings, top=1)]

    def candidates(self, embeddings: np.ndarray, top: int = 5) -> list[list[Match]]:
        """Up to `top` distinct people per query row, best first, each scored by their best template."""
        return self.templates.candidates(embeddings, top)

    def verify(self, embeddings: np.ndarray, employee_id: str) -> list[Match | None]:
        """Card + face (1:1): each query scored against one person's templates only."""
        return self.templates.verify(embeddings, employee_id)

    def has_person(self, employee_id: str) -> bool:
        return bool(self.templates.templates_of(employee_id))

    def add(self, template_ids: np.ndarray, embeddings: np.ndarray, owners: Sequence[Owner] | None = None) -> None:
        """Index templates already in the database; owners (one per row) are read from it when not given."""
        ids = np.asarray(template_ids, dtype=np.int64).reshape(-1)
        rows = self.templates.as_rows(embeddings)
        if len(ids) != len(rows):
            raise ValueError(f"{len(ids)} template ids for {len(rows)} embeddings")
        if owners is None:
            found = self.database.template_owners(self.model_id, ids.tolist())
            missing = [int(i) for i in ids if int(i) not in found]
            if missing:
                raise ValueError(f"templates {missing} are not active templates of model {self.model_id}")
            owners = [found[int(i)] for i in ids]
        self.templates.add(ids, rows, owners)

    def remove(self, template_ids: np.ndarray) -> None:
        """Drop templates from the index (ids not in it are ignored)."""
        self.templates.remove(np.asarray(template_ids, dtype=np.int64).reshape(-1))

    def rebuild(self) -> None:
        """Replace the index by the active templates of this model in the database."""
        owners = self.database.template_owners(self.model_id)
        ids, _, embeddings = self.database.all_templates(self.model_id)
        keep = np.array([int(i) in owners for i in ids], dtype=bool)  # both reads agree even under writes
        if len(ids) and embeddings.shape[1] != self.embedding_size:
            raise FaceGateError(
                f"templates of model {self.model_id} have {embeddings.shape[1]} dimensions, the model makes "
                f"{self.embedding_size}; run `facegate enroll reembed`"
            )
        self.templates = TemplateSet(self.settings, self.model_id, self.embedding_size, self.scorer)
        if keep.any():
            self.add(ids[keep], embeddings[keep], [owners[int(i)] for i in ids[keep]])

    def save(self) -> None:
        """Write the index and its sidecar, each atomically (a temporary file moved into place)."""
        self.file.save(
            self.templates.index,
            expected_sidecar(self.settings, self.model_id, self.embedding_size),
            self.templates.ids(),
            self.templates.vectors(),
        )
        self._saved_stamp = self.file.stamp()
        log.debug("gallery saved: %d templates to %s", len(self), self.index_path)

    def _load(self, owners: dict[int, Owner]) -> str | None:
        """Fill the gallery from the saved files; returns why they cannot be used, or None on success."""
        db_ids = np.array(sorted(owners), dtype=np.int64)

        def truth() -> str:
            ids, _, embeddings = self.database.all_templates(self.model_id)
            keep = np.isin(ids, db_ids)
            return vectors_digest(ids[keep], embeddings[keep] if len(embeddings) else embeddings)

        index = self.file.load(expected_sidecar(self.settings, self.model_id, self.embedding_size), db_ids, truth)
        if isinstance(index, str):
            return index
        if self.settings.kind == "hnsw":
            graph = faiss.downcast_index(index.index)
            if not isinstance(graph, faiss.IndexHNSWFlat):  # the sidecar said hnsw
                return "index file of another kind or dimension"
            graph.hnsw.efSearch = self.settings.hnsw_ef_search
        self.templates.adopt(index, owners)
        return None


def warn_empty(database: Database, model_id: str) -> None:
    """Say why a gallery is empty: nobody enrolled, or only under another model (then re-embed)."""
    others = {m: n for m, n in database.model_counts().items() if m != model_id}
    hint = (
        f"; the database has templates of {others} only: run `facegate enroll reembed`"
        if others
        else "; enroll people with `facegate enroll add`"
    )
    log.warning("gallery: no templates of model %s in the database%s", model_id, hint)


class ModelFacts(Protocol):
    """What a gallery needs of a model: an Embedder, or gate.runtime.parts.CardOnly when nothing is embedded."""

    @property
    def model_id(self) -> str: ...

    @property
    def card(self) -> ModelCard: ...

    @property
    def scorer(self) -> Scorer: ...


def open_gallery(database: Database, settings: Settings, embedder: ModelFacts) -> Gallery:
    """The gallery of a model's templates at the configured index path (loaded, or rebuilt from the database)."""
    return Gallery.open(
        database,
        settings.gallery,
        settings.resolve(settings.gallery.index_path),
        embedder.model_id,
        embedder.card.embedding_size,
        embedder.scorer,
    )
