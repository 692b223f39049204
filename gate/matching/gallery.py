"""The gallery: a FAISS inner-product index of enrolled templates, a cache rebuilt from the database.

The index file is saved next to a JSON sidecar (model id, index kind, count, digest of the template ids); on
open both are checked against the database and the index is rebuilt from it when they disagree. When the database
has a key, the index file is sealed with it too (gate/store/encryption.py): it holds the templates' vectors.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import faiss
import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from gate.config import GallerySettings, Settings
from gate.errors import FaceGateError
from gate.matching.rule import mean_template, person_scores
from gate.model.scoring import Scorer
from gate.store.database import Database, Owner, database_error
from gate.store.encryption import PREFIX, ensure_private

if TYPE_CHECKING:
    from gate.model.card import ModelCard

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".json"
STALE_TEMP_S = 600  # a temporary file this old is left over from a crash, not another process's write in progress
SEARCH_DEPTH = 8  # templates looked at per wanted person: a person may have several close templates


@dataclass(frozen=True)
class Match:
    """The enrolled person nearest to a query embedding; score: their best template's, on the model's scale
    (cosine, or cosine normalised against the model's cohort: gate/model/scoring.py)."""

    employee_id: str
    name: str
    score: float


def ids_digest(template_ids: np.ndarray) -> str:
    """sha256 of the sorted template ids: equal digests mean the same set of templates."""
    return hashlib.sha256(np.sort(np.asarray(template_ids, dtype=np.int64)).tobytes()).hexdigest()


def vectors_digest(template_ids: np.ndarray, vectors: np.ndarray) -> str:
    """sha256 of the (id, vector) pairs in id order: equal digests mean the same templates with the same content
    (ids alone are not enough: they are reused after a removal, and another site's index has the same ones)."""
    ids = np.asarray(template_ids, dtype=np.int64)
    if not len(ids):
        return hashlib.sha256(b"").hexdigest()
    order = np.argsort(ids, kind="stable")
    rows = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)[order])
    return hashlib.sha256(ids[order].tobytes() + rows.tobytes()).hexdigest()


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(temp_path) on a temporary file beside `path`, then move it over `path` in one step."""
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temp_name))
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


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
        self.database = database
        self.settings = settings
        self.index_path = Path(index_path)
        self.model_id = model_id
        self.embedding_size = embedding_size
        self.scorer = scorer or Scorer()
        self._index = self._new_index()
        self._owners: dict[int, Owner] = {}
        self._stats: dict[int, np.ndarray] = {}  # template id -> its cohort statistics (score normalisation only)
        self._means: tuple[np.ndarray, list[Owner]] | None = None  # per-person mean templates, made on demand
        self._people: dict[str, list[int]] | None = None  # employee id -> template ids, made on demand
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
        gallery._remove_stale_temp_files()
        for path in (gallery.index_path, gallery.sidecar_path):
            ensure_private(path, "gallery index")
        gallery._version = database.gallery_version()  # read first: a change while loading triggers a reload
        owners = database.template_owners(model_id)
        problem = gallery._load(owners)
        if problem is None:
            log.info("gallery %s: %d templates of model %s", gallery.index_path, len(gallery), model_id)
        else:
            log.info("gallery %s: rebuilding from the database (%s)", gallery.index_path, problem)
            gallery.rebuild()
            try:
                gallery.save()
            except FaceGateError as error:
                log.warning("%s; the gallery works from memory this time", error)
        if not gallery._owners:
            gallery._warn_empty()
        gallery._saved_stamp = gallery._sidecar_stamp()
        return gallery

    def refresh(self) -> bool:
        """Take up enrolment changes made since by anyone: this machine's enroll command (the index file's
        sidecar moved) or any process on the same database, on any machine (its change counter moved). Costs a
        stat() and one small query when nothing changed; True when the gallery was reloaded. A database that
        cannot be read right now keeps the gallery as it is (logged), never stops the gate."""
        try:
            if self._sidecar_stamp() == self._saved_stamp and self.database.gallery_version() == self._version:
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
        self._index, self._owners, self._saved_stamp = fresh._index, fresh._owners, fresh._saved_stamp
        self._version = fresh._version
        self._stats = fresh._stats
        self._owners_changed()
        log.info("gallery reloaded: %d templates", len(self))
        return True

    def _remove_stale_temp_files(self) -> None:
        """Delete what a crash between writing and moving into place left behind (`_write_atomic`'s temp files)."""
        now = time.time()
        for name in (self.index_path.name, self.sidecar_path.name):
            for temp in self.index_path.parent.glob(f"{glob.escape(name)}.*.tmp"):
                try:
                    if now - temp.stat().st_mtime > STALE_TEMP_S:
                        temp.unlink()
                        log.info("removed %s, left over from an interrupted save", temp)
                except OSError:
                    pass  # gone already, or not ours to remove

    def _sidecar_stamp(self) -> int | None:
        try:
            return self.sidecar_path.stat().st_mtime_ns
        except OSError:
            return None

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._owners

    @property
    def sidecar_path(self) -> Path:
        return self.index_path.with_name(self.index_path.name + SIDECAR_SUFFIX)

    def search(self, embeddings: np.ndarray) -> list[Match | None]:
        """The best person for each query row (None when the gallery is empty), whatever the score."""
        return [found[0] if found else None for found in self.candidates(embeddings, top=1)]

    def candidates(self, embeddings: np.ndarray, top: int = 5) -> list[list[Match]]:
        """Up to `top` distinct people per query row, best first, each scored by their best template."""
        queries = self._as_rows(embeddings)
        if not len(self):
            return [[] for _ in queries]
        if self.settings.match == "mean":
            return self._mean_candidates(queries, top)
        scores, ids = self._index.search(queries, min(len(self), top * SEARCH_DEPTH))
        scores = self._normalised(queries, scores, ids)
        results = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            best: dict[str, Match] = {}
            for score, template_id in zip(row_scores, row_ids, strict=True):
                owner = self._owners.get(int(template_id))  # -1: fewer hits than asked
                if owner is not None and owner.employee_id not in best:
                    best[owner.employee_id] = Match(owner.employee_id, owner.name, float(score))
            results.append(sorted(best.values(), key=lambda m: -m.score)[:top])
        return results

    def _owners_changed(self) -> None:
        """Drop what is derived from the owners (made again when next needed)."""
        self._means = None
        self._people = None

    def _templates_of(self, employee_id: str) -> list[int]:
        if self._people is None:
            self._people = {}
            for template_id, owner in self._owners.items():
                self._people.setdefault(owner.employee_id, []).append(template_id)
        return self._people.get(employee_id, [])

    def has_person(self, employee_id: str) -> bool:
        return bool(self._templates_of(employee_id))

    def verify(self, embeddings: np.ndarray, employee_id: str) -> list[Match | None]:
        """Card + face (1:1): each query scored against one person's templates only (their best template, or
        their mean, as gallery.match says); all None when they have none in this gallery."""
        queries = self._as_rows(embeddings)
        ids = self._templates_of(employee_id)  # looked up per frame while a badge's claim waits: not a scan
        if not ids:
            return [None] * len(queries)
        owner = self._owners[ids[0]]
        templates = np.stack([self._index.reconstruct(template_id) for template_id in ids])
        scores = person_scores(queries, [templates], self.settings.match, self.scorer)[:, 0]
        return [Match(owner.employee_id, owner.name, float(score)) for score in scores]

    def add(self, template_ids: np.ndarray, embeddings: np.ndarray, owners: Sequence[Owner] | None = None) -> None:
        """Index templates already in the database; owners (one per row) are read from it when not given."""
        ids = np.asarray(template_ids, dtype=np.int64).reshape(-1)
        rows = self._as_rows(embeddings)
        if len(ids) != len(rows):
            raise ValueError(f"{len(ids)} template ids for {len(rows)} embeddings")
        already = [int(i) for i in ids if int(i) in self._owners]
        if already or len(set(ids.tolist())) != len(ids):
            raise ValueError(f"templates already in the gallery or repeated: {already or ids.tolist()}")
        if owners is None:
            found = self.database.template_owners(self.model_id, ids.tolist())
            missing = [int(i) for i in ids if int(i) not in found]
            if missing:
                raise ValueError(f"templates {missing} are not active templates of model {self.model_id}")
            owners = [found[int(i)] for i in ids]
        if len(owners) != len(ids):
            raise ValueError(f"{len(owners)} owners for {len(ids)} templates")
        if len(ids):
            self._index.add_with_ids(rows, ids)
        self._owners.update(zip(ids.tolist(), owners, strict=True))
        self._remember_stats(ids, rows)
        self._owners_changed()

    def remove(self, template_ids: np.ndarray) -> None:
        """Drop templates from the index (ids not in it are ignored)."""
        ids = np.asarray(template_ids, dtype=np.int64).reshape(-1)
        present = np.array([i for i in ids.tolist() if i in self._owners], dtype=np.int64)
        if not len(present):
            return
        if self.settings.kind == "hnsw":  # HNSW graphs cannot delete: rebuild from the remaining vectors
            self._rebuild_without(present)
        else:
            self._index.remove_ids(faiss.IDSelectorBatch(present))
        for template_id in present.tolist():
            del self._owners[template_id]
            self._stats.pop(template_id, None)
        self._owners_changed()

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
        self._index = self._new_index()
        self._owners = {}
        self._stats = {}
        self._owners_changed()
        if keep.any():
            self.add(ids[keep], embeddings[keep], [owners[int(i)] for i in ids[keep]])

    def save(self) -> None:
        """Write the index and its sidecar, each atomically (a temporary file moved into place)."""
        ids = self._ids()
        vectors = self._index.index.reconstruct_n(0, len(ids)) if len(ids) else np.zeros((0, self.embedding_size))
        sidecar = {
            **self._expected_sidecar(),
            "count": len(self),
            "ids_sha256": ids_digest(ids),
            "vectors_sha256": vectors_digest(ids, vectors),
        }
        try:
            self.index_path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.index_path, self._write_index)
            _write_atomic(self.sidecar_path, lambda temp: temp.write_text(json.dumps(sidecar, indent=2) + "\n"))
        except (OSError, RuntimeError) as error:
            raise FaceGateError(f"cannot write the gallery index {self.index_path}: {error}") from None
        self._saved_stamp = self._sidecar_stamp()
        log.debug("gallery saved: %d templates to %s", len(self), self.index_path)

    def _new_index(self) -> faiss.IndexIDMap2:
        if self.settings.kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.embedding_size, self.settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efSearch = self.settings.hnsw_ef_search
        else:
            base = faiss.IndexFlatIP(self.embedding_size)
        return faiss.IndexIDMap2(base)

    def _expected_sidecar(self) -> dict:
        kind = {"kind": self.settings.kind}
        if self.settings.kind == "hnsw":
            kind["hnsw_m"] = self.settings.hnsw_m
        return {"model_id": self.model_id, "embedding_size": self.embedding_size, **kind}

    def _ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def _load(self, owners: dict[int, Owner]) -> str | None:
        """Fill the gallery from the saved files; returns why they cannot be used, or None on success."""
        if not self.index_path.is_file() or not self.sidecar_path.is_file():
            return "no saved index"
        try:
            sidecar = json.loads(self.sidecar_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return f"unreadable sidecar: {error}"
        expected = self._expected_sidecar()
        if not isinstance(sidecar, dict) or any(sidecar.get(k) != v for k, v in expected.items()):
            return f"saved for other settings ({sidecar!r:.200}), wanted {expected}"
        db_ids = np.array(sorted(owners), dtype=np.int64)
        if sidecar.get("count") != len(db_ids) or sidecar.get("ids_sha256") != ids_digest(db_ids):
            return f"saved with {sidecar.get('count')} templates, the database has {len(db_ids)} or others"
        index = self._read_index()
        if isinstance(index, str):
            return index
        if not isinstance(index, faiss.IndexIDMap2) or index.d != self.embedding_size:
            return "index file of another kind or dimension"
        if self.settings.kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = self.settings.hnsw_ef_search
        self._index = index
        if problem := self._content_problem(sidecar, db_ids):
            self._index = self._new_index()
            return problem
        self._owners = dict(owners)
        self._owners_changed()
        self._stats = {}
        if self.scorer.normalised and len(self):  # only then are the vectors read back (a large gallery is big)
            self._remember_stats(self._ids(), self._index.index.reconstruct_n(0, len(self)))
        return None

    def _write_index(self, path: Path) -> None:
        """The index to `path`: FAISS's own file, or its serialized bytes sealed when the database has a key."""
        cipher = self.database.cipher
        if cipher is None:
            faiss.write_index(self._index, str(path))
        else:
            path.write_bytes(cipher.seal(faiss.serialize_index(self._index).tobytes()))

    def _read_index(self) -> faiss.Index | str:
        """The saved index, or why it cannot be used: sealed with another key (or with none configured), plain
        while a key is configured (it is then rewritten sealed), or not an index file."""
        cipher = self.database.cipher
        try:
            with self.index_path.open("rb") as handle:
                sealed = handle.read(len(PREFIX)) == PREFIX
            if cipher is None and not sealed:
                return faiss.read_index(str(self.index_path))
            data = self.index_path.read_bytes()
        except (OSError, RuntimeError) as error:
            return f"unreadable index file: {str(error).splitlines()[0]}"
        if not sealed:
            return "index file is not encrypted, and a key is configured"
        if cipher is None:
            log.warning("gallery index %s is encrypted and no key is configured", self.index_path)
            return "index file is encrypted and no key is configured"
        try:
            data = cipher.unseal(data, f"gallery index {self.index_path}")
            return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except FaceGateError as error:
            log.warning("%s; rebuilding it from the database", error)
            return "index file sealed with another key"
        except RuntimeError as error:
            return f"unreadable index file: {str(error).splitlines()[0]}"

    def _content_problem(self, sidecar: dict, db_ids: np.ndarray) -> str | None:
        """Why the loaded vectors cannot be trusted, or None: they, the sidecar and the database's templates must
        all have the same content digest (an index from another site or an old backup has other vectors)."""
        if ids_digest(self._ids()) != ids_digest(db_ids):
            return "index file disagrees with its sidecar"
        ids, _, embeddings = self.database.all_templates(self.model_id)
        keep = np.isin(ids, db_ids)
        truth = vectors_digest(ids[keep], embeddings[keep] if len(embeddings) else embeddings)
        loaded = self._ids()
        held = vectors_digest(loaded, self._index.index.reconstruct_n(0, len(loaded)) if len(loaded) else np.zeros(0))
        if sidecar.get("vectors_sha256") != truth or held != truth:
            return "index vectors differ from the database's templates (another site's index, or an old backup)"
        return None

    def _remember_stats(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Keep each template's cohort statistics (computed once, when it enters the gallery)."""
        if self.scorer.normalised and len(ids):
            self._stats.update(zip(ids.tolist(), self.scorer.stats(rows), strict=True))

    def _normalised(self, queries: np.ndarray, cosines: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The (Q, K) search hits' cosines on the model's score scale (unchanged without score normalisation)."""
        if not self.scorer.normalised:
            return cosines
        neutral = np.array([0.0, 1.0], np.float32)  # FAISS pads missing hits with id -1
        template_stats = np.array([[self._stats.get(int(i), neutral) for i in row] for row in ids], np.float32)
        return self.scorer.normalise(cosines, self.scorer.stats(queries)[:, None, :], template_stats)

    def _mean_candidates(self, queries: np.ndarray, top: int) -> list[list[Match]]:
        """Score each person by the cosine to their mean template (unit length), an exact matrix product."""
        if self._means is None:
            self._means = self._person_means()
        means, owners = self._means
        scores = self.scorer.matrix(queries, means)
        best = np.argsort(-scores, axis=1)[:, :top]
        return [
            [Match(owners[j].employee_id, owners[j].name, float(row[j])) for j in order]
            for row, order in zip(scores, best, strict=True)
        ]

    def _person_means(self) -> tuple[np.ndarray, list[Owner]]:
        ids = self._ids()
        vectors = self._index.index.reconstruct_n(0, len(ids))
        people: dict[str, list[int]] = {}
        for row, template_id in enumerate(ids.tolist()):
            people.setdefault(self._owners[template_id].employee_id, []).append(row)
        owners = [self._owners[int(ids[rows[0]])] for rows in people.values()]
        means = np.stack([mean_template(vectors[rows]) for rows in people.values()])
        return means.astype(np.float32), owners

    def _rebuild_without(self, template_ids: np.ndarray) -> None:
        ids = self._ids()
        vectors = self._index.index.reconstruct_n(0, len(ids))
        keep = ~np.isin(ids, template_ids)
        self._index = self._new_index()
        if keep.any():
            self._index.add_with_ids(vectors[keep], ids[keep])

    def _as_rows(self, embeddings: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(embeddings, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.embedding_size:
            raise ValueError(
                f"gallery of model {self.model_id} wants (N, {self.embedding_size}) rows, got {rows.shape}"
            )
        return rows

    def _warn_empty(self) -> None:
        others = {m: n for m, n in self.database.model_counts().items() if m != self.model_id}
        hint = (
            f"; the database has templates of {others} only: run `facegate enroll reembed`"
            if others
            else "; enroll people with `facegate enroll add`"
        )
        log.warning("gallery: no templates of model %s in the database%s", self.model_id, hint)


class ModelFacts(Protocol):
    """What a gallery needs of a model: an Embedder, or gate.runtime.parts.CardOnly when nothing is embedded."""

    @property
    def model_id(self) -> str: ...

    card: ModelCard
    scorer: Scorer


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
