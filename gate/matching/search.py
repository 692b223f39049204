"""Search: the templates of one model in memory (a FAISS inner-product index by template id, each template's owner
and, with score normalisation, its cohort statistics), searched for the best people or scored against one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from gate.config import GallerySettings
from gate.matching.rule import mean_template, person_scores
from gate.model.scoring import Scorer
from gate.store.people import Owner

SEARCH_DEPTH = 8  # templates looked at per wanted person: a person may have several close templates


@dataclass(frozen=True)
class Match:
    """The enrolled person nearest to a query embedding; score: their best template's, on the model's scale
    (cosine, or cosine normalised against the model's cohort: gate/model/scoring.py)."""

    employee_id: str
    name: str
    score: float


def new_index(settings: GallerySettings, embedding_size: int) -> faiss.IndexIDMap2:
    """An empty index of the configured kind (exact inner product, or HNSW) keyed by template id."""
    base: faiss.Index
    if settings.kind == "hnsw":
        base = faiss.IndexHNSWFlat(embedding_size, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efSearch = settings.hnsw_ef_search
    else:
        base = faiss.IndexFlatIP(embedding_size)
    return faiss.IndexIDMap2(base)


class TemplateSet:
    """Templates of one model: `candidates(embeddings (N, D))` the best people per row, `verify` against one."""

    def __init__(self, settings: GallerySettings, model_id: str, embedding_size: int, scorer: Scorer) -> None:
        self.settings, self.model_id, self.embedding_size, self.scorer = settings, model_id, embedding_size, scorer
        self.index = new_index(settings, embedding_size)
        self.owners: dict[int, Owner] = {}
        self._stats: dict[int, np.ndarray] = {}  # template id -> its cohort statistics (score normalisation only)
        self._means: tuple[np.ndarray, list[Owner]] | None = None  # per-person mean templates, made on demand
        self._people: dict[str, list[int]] | None = None  # employee id -> template ids, made on demand

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def vectors(self) -> np.ndarray:
        """Every template's vector, in the order of `ids()`."""
        return self.index.index.reconstruct_n(0, len(self)) if len(self) else np.zeros((0, self.embedding_size))

    def adopt(self, index: faiss.IndexIDMap2, owners: dict[int, Owner]) -> None:
        """Take a loaded index and its templates' owners in place of what is held."""
        self.index, self.owners, self._stats = index, dict(owners), {}
        self._owners_changed()
        if self.scorer.normalised and len(self):  # only then are the vectors read back (a large gallery is big)
            self._remember_stats(self.ids(), self.vectors())

    def candidates(self, embeddings: np.ndarray, top: int = 5) -> list[list[Match]]:
        """Up to `top` distinct people per query row, best first, each scored by their best template."""
        queries = self.as_rows(embeddings)
        if not len(self):
            return [[] for _ in queries]
        if self.settings.match == "mean":
            return self._mean_candidates(queries, top)
        scores, ids = self.index.search(queries, min(len(self), top * SEARCH_DEPTH))
        scores = self._normalised(queries, scores, ids)
        results = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            best: dict[str, Match] = {}
            for score, template_id in zip(row_scores, row_ids, strict=True):
                owner = self.owners.get(int(template_id))  # -1: fewer hits than asked
                if owner is not None and owner.employee_id not in best:
                    best[owner.employee_id] = Match(owner.employee_id, owner.name, float(score))
            results.append(sorted(best.values(), key=lambda m: -m.score)[:top])
        return results

    def templates_of(self, employee_id: str) -> list[int]:
        if self._people is None:
            self._people = {}
            for template_id, owner in self.owners.items():
                self._people.setdefault(owner.employee_id, []).append(template_id)
        return self._people.get(employee_id, [])

    def verify(self, embeddings: np.ndarray, employee_id: str) -> list[Match | None]:
        """Card + face (1:1): each query scored against one person's templates only (their best template, or
        their mean, as gallery.match says); all None when they have none here."""
        queries = self.as_rows(embeddings)
        ids = self.templates_of(employee_id)  # looked up per frame while a badge's claim waits: not a scan
        if not ids:
            return [None] * len(queries)
        owner = self.owners[ids[0]]
        templates = np.stack([self.index.reconstruct(template_id) for template_id in ids])
        scores = person_scores(queries, [templates], self.settings.match, self.scorer)[:, 0]
        return [Match(owner.employee_id, owner.name, float(score)) for score in scores]

    def add(self, ids: np.ndarray, rows: np.ndarray, owners: Sequence[Owner]) -> None:
        """Index new templates (ids not held yet, one owner per row)."""
        already = [int(i) for i in ids if int(i) in self.owners]
        if already or len(set(ids.tolist())) != len(ids):
            raise ValueError(f"templates already in the gallery or repeated: {already or ids.tolist()}")
        if len(owners) != len(ids):
            raise ValueError(f"{len(owners)} owners for {len(ids)} templates")
        if len(ids):
            self.index.add_with_ids(rows, ids)
        self.owners.update(zip(ids.tolist(), owners, strict=True))
        self._remember_stats(ids, rows)
        self._owners_changed()

    def remove(self, ids: np.ndarray) -> None:
        """Drop templates (ids not held are ignored)."""
        present = np.array([i for i in ids.tolist() if i in self.owners], dtype=np.int64)
        if not len(present):
            return
        if self.settings.kind == "hnsw":  # HNSW graphs cannot delete: rebuild from the remaining vectors
            ids_now, vectors = self.ids(), self.vectors()
            keep = ~np.isin(ids_now, present)
            self.index = new_index(self.settings, self.embedding_size)
            if keep.any():
                self.index.add_with_ids(vectors[keep], ids_now[keep])
        else:
            self.index.remove_ids(faiss.IDSelectorBatch(present))
        for template_id in present.tolist():
            del self.owners[template_id]
            self._stats.pop(template_id, None)
        self._owners_changed()

    def as_rows(self, embeddings: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(embeddings, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.embedding_size:
            raise ValueError(
                f"gallery of model {self.model_id} wants (N, {self.embedding_size}) rows, got {rows.shape}"
            )
        return rows

    def _owners_changed(self) -> None:
        """Drop what is derived from the owners (made again when next needed)."""
        self._means = None
        self._people = None

    def _remember_stats(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Keep each template's cohort statistics (computed once, when it enters the set)."""
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
        ids, vectors = self.ids(), self.vectors()
        people: dict[str, list[int]] = {}
        for row, template_id in enumerate(ids.tolist()):
            people.setdefault(self.owners[template_id].employee_id, []).append(row)
        owners = [self.owners[int(ids[rows[0]])] for rows in people.values()]
        means = np.stack([mean_template(vectors[rows]) for rows in people.values()])
        return means.astype(np.float32), owners
