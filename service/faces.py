"""A stored face crop (WebP bytes) as an HTTP response: biometric data, so it is never kept by shared caches."""

from __future__ import annotations

from typing import Any

from fastapi import Response

FACE_MEDIA_TYPE = "image/webp"  # templates keep lossless WebP crops, events lossy ones (gate.store.schema)
FACE_CACHE = "private, max-age=60"  # the page may reuse a thumbnail for a minute; no proxy keeps it
# what a face route answers, for its `responses` (the route's response_class says nothing of it)
FACE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the aligned face, a WebP image",
        "content": {FACE_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


def face_response(face: bytes) -> Response:
    return Response(face, media_type=FACE_MEDIA_TYPE, headers={"Cache-Control": FACE_CACHE})
