"""A runtime of the shipped model over a fresh database with some LFW people enrolled, for the enrolment tests whose
rules must tell people apart (the embedder and pipeline are conftest's session fixtures)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from typer.testing import CliRunner

from enrollment import add_person
from facegate.cli import app
from gate.config import GallerySettings, Settings
from gate.matching.gallery import Gallery
from gate.model.embedder import Embedder
from gate.runtime.parts import Runtime
from gate.store.database import Database
from gate.vision.faces import FacePipeline


def photo(lfw_root: Path, person: str, number: int) -> Path:
    return lfw_root / person / f"{person}_{number:04d}.jpg"


def shipped_runtime(
    folder: Path, shipped: Embedder, pipeline: FacePipeline, lfw_root: Path, people: dict[str, tuple[str, str]]
) -> Iterator[Runtime]:
    """A runtime over a new database in `folder`, each of `people` (id -> (name, LFW person)) enrolled from their
    first two photos; closed after."""
    database = Database(f"sqlite:///{folder / 'gate.db'}")
    gallery = Gallery.open(database, GallerySettings(), folder / "gallery.faiss", shipped.model_id, 128)
    runtime = Runtime(Settings(), shipped, pipeline, database, gallery)
    for employee_id, (name, person) in people.items():
        add_person(runtime, employee_id, name, [photo(lfw_root, person, n) for n in (1, 2)])
    yield runtime
    database.close()


def events_command(folder: Path) -> Callable[..., str]:
    """`facegate events ...` in-process over shipped_runtime's database in `folder`: its output; a FaceGateError
    (which `facegate` prints as one `error:` line) raised."""
    config = folder / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{folder / "gate.db"}"\n[gallery]\nindex_path = "{folder / "cli.faiss"}"\n',
        encoding="utf-8",
    )

    def facegate(*args: str) -> str:
        outcome = CliRunner().invoke(app, ["--config", str(config), "events", *args])
        if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
            raise outcome.exception
        assert outcome.exit_code == 0, outcome.output
        return outcome.output

    return facegate
