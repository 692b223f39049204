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
from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from enrollment import audit
from enrollment.photos import decode_crop
from enrollment.sync import IndexChange, write_with_index
from gate.matching.gallery import Gallery
from gate.model.embedder import Embedder
from gate.store.database import Database, Owner, Person, Template

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
    query = select(Template.person_id, Template.image_sha256).where(Template.model_id == model_id)
    done = {(person_id, sha) for person_id, sha in session.execute(query)}
    others = session.scalars(select(Template).where(Template.model_id != model_id).order_by(Template.id.desc())).all()
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
            Template(
                person_id=source.person_id,
                embedding=vector.tobytes(),
                embedding_size=len(vector),
                model_id=embedder.model_id,
                image_sha256=source.image_sha256,
                quality=source.quality,
                source=source.source,
                crop=source.crop,
            )
            for source, vector in zip(sources, vectors, strict=True)
        ]
        session.add_all(new)
        session.flush()
        owners = {p.id: p.employee_id for p in session.scalars(select(Person))}
        for person_id in sorted({t.person_id for t in new}):
            added = sum(t.person_id == person_id for t in new)
            audit.record(session, "reembed", owners[person_id], model_id=embedder.model_id, templates=added)
        counts.append(ReembedResult(embedder.model_id, len(new), already, without_crop))
        people = {p.id: p for p in session.scalars(select(Person).where(Person.active))}
        indexed = [(t, v) for t, v in zip(new, vectors, strict=True) if t.person_id in people]
        return IndexChange(
            add_ids=[t.id for t, _ in indexed],
            add_vectors=[v for _, v in indexed],
            add_owners=[
                Owner(t.person_id, people[t.person_id].employee_id, people[t.person_id].name) for t, _ in indexed
            ],
        )

    write_with_index(database, gallery, write)
    log.info("re-embedded %d photos for model %s", counts[0].added, embedder.model_id)
    if counts[0].without_crop:
        log.warning("%d photos keep no face crop: enroll them again from the photos", counts[0].without_crop)
    return counts[0]
