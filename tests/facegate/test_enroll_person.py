"""`facegate enroll list / show / rename / remove-template` on constructed templates of the shipped model: the
strength column and its reasons, where each template came from, one-line refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from facegate.cli import app
from gate.model.card import SHIPPED_CARD, read_card
from gate.store.database import Database
from gate.store.schema import Person, Template

CARD = read_card(SHIPPED_CARD)


def unit(axis: int, lean: float = 0.0, towards: int = 100) -> np.ndarray:
    row = np.zeros(CARD.embedding_size, dtype=np.float32)
    row[axis], row[towards] = 1.0, lean
    return row / np.linalg.norm(row)


def site(tmp_path: Path) -> str:
    """A config and a database: E1 with two agreeing templates (one from a confirmed event), E2 with one template
    close to E1's, E3 with two agreeing templates far from everyone."""
    config = tmp_path / "config.toml"
    database_line = f'[database]\nurl = "sqlite:///{tmp_path}/gate.db"\n'
    config.write_text(database_line + '[gallery]\nindex_path = "g.faiss"\n[logging]\nlevel = "WARNING"\n')
    database = Database(f"sqlite:///{tmp_path}/gate.db")
    faces = {"E1": [(unit(0), "photo", None), (unit(0, 0.05), "event", 7)], "E2": [(unit(0, 0.1, 101), "photo", None)]}
    faces["E3"] = [(unit(1), "capture", None), (unit(1, 0.05), "photo", None)]
    with database.session() as session:
        for employee_id, rows in faces.items():
            person = Person(employee_id=employee_id, name=f"Person {employee_id}")
            for i, (vector, origin, event_id) in enumerate(rows):
                person.templates.append(
                    Template(
                        embedding=vector.tobytes(), embedding_size=len(vector), model_id=CARD.model_id,
                        image_sha256=f"{employee_id}{i}", quality=0.99, source=f"{i}.jpg", origin=origin,
                        event_id=event_id,
                    )
                )  # fmt: skip
            session.add(person)
    database.close()
    return str(config)


def run(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args))
    return done.exit_code, done.output


def test_enroll_list_flags_the_weak_with_their_reasons(tmp_path: Path) -> None:
    code, out = run("--config", site(tmp_path), "enroll", "list")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert code == 0 and "STRENGTH" in out.splitlines()[0]
    assert " weak " in lines["E2"] and "only one template" in lines["E2"] and "close to E1" in lines["E2"]
    assert " weak " in lines["E1"] and "close to E2" in lines["E1"]
    assert " ok " in lines["E3"] and "(" not in lines["E3"]


def test_enroll_show_gives_origins_and_strength(tmp_path: Path) -> None:
    code, out = run("--config", site(tmp_path), "enroll", "show", "E3")
    assert code == 0 and "strength: strong" in out and "own templates agree: worst 0.99" in out
    assert "capture" in out and "nearest other person: E" in out
    code, out = run("--config", str(tmp_path / "config.toml"), "enroll", "show", "E1")
    assert "event 7" in out and "strength: weak: close to E2" in out


def test_enroll_rename_and_remove_template(tmp_path: Path) -> None:
    config = site(tmp_path)
    code, out = run("--config", config, "enroll", "rename", "E1", "Ada Lovelace")
    assert code == 0 and "E1 is now Ada Lovelace" in out
    assert "Ada Lovelace" in run("--config", config, "enroll", "list")[1]
    code, out = run("--config", config, "enroll", "rename", "E1", " ")
    assert code != 0 and "Ada Lovelace" in run("--config", config, "enroll", "show", "E1")[1]
    database = Database(f"sqlite:///{tmp_path}/gate.db")
    with database.session() as session:
        ids = {t.origin: t.id for t in session.query(Template).all() if t.person_id == 1}
    code, out = run("--config", config, "enroll", "remove-template", "E1", str(ids["event"]), "--yes")
    assert code == 0 and f"removed template {ids['event']} of E1 (event 7, 1.jpg)" in out
    code, out = run("--config", config, "enroll", "remove-template", "E1", str(ids["photo"]), "--yes")
    assert code != 0  # the last one stays
    code, out = run("--config", config, "enroll", "remove-template", "E2", str(ids["photo"]), "--yes")
    assert code != 0  # another person's template
    assert run("--config", config, "enroll", "show", "E1")[1].count(".jpg") == 1
