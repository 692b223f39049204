"""Re-embed everyone after a model change, from the aligned crops stored with the templates.

Raw photos are never stored (they are larger and more sensitive than needed); each template keeps its aligned
face crop instead, so a new model can compute its own templates without the original photos. The old model's
templates stay (switching back needs no work); `facegate enroll reembed` adds the missing ones for the current
model in one transaction and updates the gallery with them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session
from tqdm import tqdm

from enrollment import audit
from enrollment.photos import decode_crop
from enrollment.sync import IndexChange, write_with_index
from gate.matching.gallery import Gallery
from gate.model.embedder import Embedder
from gate.store import people
from gate.store.database import Database
from gate.store.people import NewTemplate, Owner
from gate.store.schema import Template

log = logging.getLogger(__name__)

BATCH = 64


@dataclass(frozen=True)
class ReembedResult:
    model_id: str
    added: int  # new templates written for model_id
    already: int  # photos that had a template of model_id
    without_crop: int  # photos whose templates keep no crop: enroll them again from the photo


def _sources(session: Session, model_id: str) -> tuple[list[Template], int, int]:
    """One template per (person, photo) lacking a template of model_id; and the counts skipped."""
    done = people.photos_of_model(session, model_id)
    others = people.templates_of_other_models(session, model_id)
    chosen: dict[tuple[int, str], Template] = {}
    without_crop: set[tuple[int, str]] = set()
    for template in others:
        key = (template.person_id, template.image_sha256)
        if key in done or key in chosen:
            continue
        if template.crop is None:
            without_crop.add(key)
        else:
            chosen[key] = template
    return sorted(chosen.values(), key=lambda t: t.id), len(done), len(without_crop - set(chosen))


def _embed_crops(embedder: Embedder, templates: list[Template]) -> np.ndarray:
    out = np.empty((len(templates), embedder.card.embedding_size), dtype=np.float32)
    for start in tqdm(range(0, len(templates), BATCH), desc="re-embedding", unit="batch", disable=None):
        batch = templates[start : start + BATCH]
        crops = np.stack([decode_crop(t.crop or b"", embedder.template) for t in batch])
        out[start : start + len(batch)] = embedder.embed(crops)
    return out


def reembed_all(database: Database, gallery: Gallery, embedder: Embedder) -> ReembedResult:
    """Write templates of the embedder's model for every enrolled photo that lacks one, in one transaction."""
    if gallery.model_id != embedder.model_id:
        raise ValueError(f"gallery of model {gallery.model_id} cannot take embeddings of {embedder.model_id}")
    counts: list[ReembedResult] = []

    def write(session: Session) -> IndexChange:
        sources, already, without_crop = _sources(session, embedder.model_id)
        vectors = _embed_crops(embedder, sources)
        new = [
            NewTemplate(
                s.person_id, embedder.model_id, vector, s.image_sha256, s.quality, s.source, s.crop
            ).from_origin(s.origin, s.event_id)
            for s, vector in zip(sources, vectors, strict=True)
        ]
        ids = people.add_templates(session, new)
        everyone = people.people_by_id(session)
        for person_id in sorted({t.person_id for t in new}):
            added = sum(t.person_id == person_id for t in new)
            audit.record(
                session, "reembed", everyone[person_id].employee_id, model_id=embedder.model_id, templates=added
            )
        counts.append(ReembedResult(embedder.model_id, len(new), already, without_crop))
        active = {person_id: p for person_id, p in everyone.items() if p.active}
        indexed = [(i, t) for i, t in zip(ids, new, strict=True) if t.person_id in active]
        return IndexChange(
            add_ids=[i for i, _ in indexed],
            add_vectors=[t.vector for _, t in indexed],
            add_owners=[
                Owner(t.person_id, active[t.person_id].employee_id, active[t.person_id].name) for _, t in indexed
            ],
        )

    write_with_index(database, gallery, write)
    log.info("re-embedded %d photos for model %s", counts[0].added, embedder.model_id)
    if counts[0].without_crop:
        log.warning("%d photos keep no face crop: enroll them again from the photos", counts[0].without_crop)
    return counts[0]
