"""How a person is scored from their templates, the one rule the gallery and every evaluation use: by their best
template, or by their mean template (the templates' mean, scaled back to unit length)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gate.model.scoring import Scorer

MATCH_RULES = ("best", "mean")


def mean_template(templates: np.ndarray) -> np.ndarray:
    """Unit-length means of templates: (k, D) -> (D,), or (..., k, D) -> (..., D) along the next-to-last axis."""
    mean = np.asarray(templates).mean(axis=-2)
    return mean / np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)


def person_scores(
    queries: np.ndarray, templates: Sequence[np.ndarray], match: str = "best", scorer: Scorer | None = None
) -> np.ndarray:
    """(queries, people) scores as the model scores (`scorer`, default cosine): each person's best template,
    or their mean template; `templates[p]` holds person p's templates (k_p, D)."""
    if match not in MATCH_RULES:
        raise ValueError(f"match must be 'best' or 'mean', got {match!r}")
    scorer = scorer or Scorer()
    columns = []
    for person in templates:
        if match == "best":
            columns.append(scorer.matrix(queries, person).max(axis=1))
        else:
            columns.append(scorer.matrix(queries, mean_template(person)[None])[:, 0])
    return np.stack(columns, axis=1) if columns else np.zeros((len(queries), 0))
