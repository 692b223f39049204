"""The gallery's index file and its proof: FAISS's file (sealed with the site's key when one is set) beside a JSON
sidecar (model id, index kind, count, digests of the template ids and of their vectors). A saved index is used
only when the sidecar, the file and the database's templates all agree; otherwise the gallery is rebuilt."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from gate.config import GallerySettings
from gate.errors import FaceGateError
from gate.store.encryption import PREFIX, Cipher, ensure_private

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".json"
STALE_TEMP_S = 600  # a temporary file this old is left over from a crash, not another process's write in progress


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


def expected_sidecar(settings: GallerySettings, model_id: str, embedding_size: int) -> dict:
    """What a sidecar must say for an index to serve these settings and this model."""
    kind: dict[str, object] = {"kind": settings.kind}
    if settings.kind == "hnsw":
        kind["hnsw_m"] = settings.hnsw_m
    return {"model_id": model_id, "embedding_size": embedding_size, **kind}


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(temp_path) on a temporary file beside `path`, then move it over `path` in one step."""
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temp_name))
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


class IndexFile:
    """One gallery's index on disk at `path` (its sidecar beside it), sealed with `cipher` when there is one."""

    def __init__(self, path: Path, cipher: Cipher | None) -> None:
        self.path, self.cipher = Path(path), cipher

    @property
    def sidecar_path(self) -> Path:
        return self.path.with_name(self.path.name + SIDECAR_SUFFIX)

    def stamp(self) -> int | None:
        """The sidecar's mtime (ns): it moves with every save, by any process on this machine."""
        try:
            return self.sidecar_path.stat().st_mtime_ns
        except OSError:
            return None

    def prepare(self) -> None:
        """Owner-only modes on both files, and what a crash between writing and moving into place left behind."""
        for path in (self.path, self.sidecar_path):
            ensure_private(path, "gallery index")
        now = time.time()
        for name in (self.path.name, self.sidecar_path.name):
            for temp in self.path.parent.glob(f"{glob.escape(name)}.*.tmp"):
                try:
                    if now - temp.stat().st_mtime > STALE_TEMP_S:
                        temp.unlink()
                        log.info("removed %s, left over from an interrupted save", temp)
                except OSError:
                    pass  # gone already, or not ours to remove

    def save(self, index: faiss.Index, expected: dict, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Write the index and its sidecar, each atomically (a temporary file moved into place)."""
        sidecar = {**expected, "count": len(ids), "ids_sha256": ids_digest(ids)}
        sidecar["vectors_sha256"] = vectors_digest(ids, vectors)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, lambda temp: self._write_index(index, temp))
            write_atomic(self.sidecar_path, lambda temp: temp.write_text(json.dumps(sidecar, indent=2) + "\n"))
        except (OSError, RuntimeError) as error:
            raise FaceGateError(f"cannot write the gallery index {self.path}: {error}") from None

    def load(self, expected: dict, db_ids: np.ndarray, truth: Callable[[], str]) -> faiss.IndexIDMap2 | str:
        """The saved index if its sidecar is for `expected` settings and the database's templates `db_ids`, and
        its vectors' digest equals `truth()` (the database's); else why it cannot be used."""
        if not self.path.is_file() or not self.sidecar_path.is_file():
            return "no saved index"
        try:
            sidecar = json.loads(self.sidecar_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return f"unreadable sidecar: {error}"
        if not isinstance(sidecar, dict) or any(sidecar.get(k) != v for k, v in expected.items()):
            return f"saved for other settings ({sidecar!r:.200}), wanted {expected}"
        if sidecar.get("count") != len(db_ids) or sidecar.get("ids_sha256") != ids_digest(db_ids):
            return f"saved with {sidecar.get('count')} templates, the database has {len(db_ids)} or others"
        index = self._read_index()
        if isinstance(index, str):
            return index
        if not isinstance(index, faiss.IndexIDMap2) or index.d != expected["embedding_size"]:
            return "index file of another kind or dimension"
        return _content_problem(index, sidecar, db_ids, truth) or index

    def _write_index(self, index: faiss.Index, path: Path) -> None:
        """The index to `path`: FAISS's own file, or its serialized bytes sealed when there is a key."""
        if self.cipher is None:
            faiss.write_index(index, str(path))
        else:
            path.write_bytes(self.cipher.seal(faiss.serialize_index(index).tobytes()))

    def _read_index(self) -> faiss.Index | str:
        """The saved index, or why it cannot be used: sealed with another key (or with none configured), plain
        while a key is configured (it is then rewritten sealed), or not an index file."""
        try:
            with self.path.open("rb") as handle:
                sealed = handle.read(len(PREFIX)) == PREFIX
            if self.cipher is None and not sealed:
                return faiss.read_index(str(self.path))
            data = self.path.read_bytes()
        except (OSError, RuntimeError) as error:
            return f"unreadable index file: {str(error).splitlines()[0]}"
        if not sealed:
            return "index file is not encrypted, and a key is configured"
        if self.cipher is None:
            log.warning("gallery index %s is encrypted and no key is configured", self.path)
            return "index file is encrypted and no key is configured"
        try:
            data = self.cipher.unseal(data, f"gallery index {self.path}")
            return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except FaceGateError as error:
            log.warning("%s; rebuilding it from the database", error)
            return "index file sealed with another key"
        except RuntimeError as error:
            return f"unreadable index file: {str(error).splitlines()[0]}"


def _content_problem(
    index: faiss.IndexIDMap2, sidecar: dict, db_ids: np.ndarray, truth: Callable[[], str]
) -> str | None:
    """Why the loaded vectors cannot be trusted, or None: they, the sidecar and the database's templates must
    all have the same content digest (an index from another site or an old backup has other vectors)."""
    loaded = faiss.vector_to_array(index.id_map).astype(np.int64)
    if ids_digest(loaded) != ids_digest(db_ids):
        return "index file disagrees with its sidecar"
    expected = truth()
    held = vectors_digest(loaded, index.index.reconstruct_n(0, len(loaded)) if len(loaded) else np.zeros(0))
    if sidecar.get("vectors_sha256") != expected or held != expected:
        return "index vectors differ from the database's templates (another site's index, or an old backup)"
    return None
