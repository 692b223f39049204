"""One schema, one way to the database: every table on gate.store.schema's one metadata (service/ not imported),
the same schema in a new database, in one upgraded from any older revision (its rows kept) and in one made from the
models, on SQLite and on PostgreSQL when a server can be started here; no table defined and no SQL written
outside gate/store."""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from gate.store.database import MIGRATIONS, SCHEMA_HEAD, Database
from gate.store.schema import Base

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gate", "enrollment", "training", "evaluation", "service", "facegate", "benchmarks")
STORE = ROOT / "gate" / "store"
SQLALCHEMY_OUTSIDE_STORE = {"sqlalchemy.exc": None, "sqlalchemy.orm": {"Session"}}  # module: names (None: any)
VECTOR = np.arange(8, dtype=np.float32) / 8


def _alembic() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


OLDER = [revision.revision for revision in ScriptDirectory.from_config(_alembic()).walk_revisions()][::-1][:-1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes the URL of a new, empty database: a SQLite file, or a database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        numbers = itertools.count()
        return lambda: f"sqlite:///{tmp_path / f'db{next(numbers)}.db'}"
    try:
        server = request.getfixturevalue("postgres")  # skips when PostgreSQL is not installed
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"no PostgreSQL server could be started here: {error}")
    return server.new_database


def snapshot(engine: Engine) -> dict[str, dict]:
    """What the database says of each of its tables (Alembic's own left out): columns with types and nullability,
    primary key, indexes, unique constraints, foreign keys with their ON DELETE, check constraints."""
    inspector = inspect(engine)
    tables = {}
    for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        keys = inspector.get_foreign_keys(name)
        tables[name] = {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)),
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
                if "duplicates_constraint" not in i
            ),
            "uniques": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
            "foreign keys": sorted(
                (
                    tuple(k["constrained_columns"]),
                    k["referred_table"],
                    tuple(k["referred_columns"]),
                    k["options"].get("ondelete"),
                )
                for k in keys
            ),  # fmt: skip
            "checks": sorted((c["name"], c["sqltext"]) for c in inspector.get_check_constraints(name)),
        }
    return tables


def _upgrade(url: str, revision: str) -> None:
    """Bring a database to `revision` with Alembic and store a person, a template and an event in it (the columns
    of the first revision: they exist at every one)."""
    config, engine = _alembic(), create_engine(url)
    at = datetime(2026, 1, 2, 3, 4, 5)  # naive UTC, as the first revision stored times
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        insert = (
            "INSERT INTO people (employee_id, name, active, created_at, updated_at) VALUES ('E1', 'Ada', :on, :t, :t)"
        )
        connection.execute(text(insert), {"on": True, "t": at})
        connection.execute(
            text(
                "INSERT INTO templates (person_id, embedding, embedding_size, model_id, image_sha256, quality, source,"
                " created_at) SELECT id, :blob, 8, 'm', :sha, 0.99, 'a.jpg', :t FROM people WHERE employee_id = 'E1'"
            ),
            {"blob": VECTOR.tobytes(), "sha": "0" * 64, "t": at},
        )
        connection.execute(
            text(
                "INSERT INTO access_events (time, gate_id, employee_id, score, decision, reason)"
                " VALUES (:t, 'front', 'E1', 0.97, 'granted', 'GRANTED')"
            ),
            {"t": at},
        )
    engine.dispose()


def _models_schema(url: str) -> dict[str, dict]:
    """The schema SQLAlchemy makes from the models alone (no migration)."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


def test_every_table_is_on_the_one_metadata_without_importing_service(tmp_path: Path) -> None:
    """In a process that imports only the store, the metadata holds every table the migrations create."""
    probe = (
        "import json, sys\n"
        "from sqlalchemy import inspect\n"
        "from gate.store.database import Database\n"
        "from gate.store.schema import Base\n"
        f"database = Database('sqlite:///{tmp_path / 'probe.db'}')\n"
        "migrated = set(inspect(database.engine).get_table_names()) - {'alembic_version'}\n"
        "print(json.dumps({'metadata': sorted(Base.metadata.tables), 'migrated': sorted(migrated),\n"
        "                  'service': sorted(m for m in sys.modules if m.split('.')[0] == 'service')}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["service"] == []
    assert found["metadata"] == found["migrated"]
    assert {"people", "templates", "access_events", "admin_accounts", "api_tokens", "admin_sessions"} <= set(
        found["metadata"]
    )


def test_a_new_database_has_the_schema_of_the_models(new_url: Callable[[], str]) -> None:
    database = Database(new_url())
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
    assert snapshot(database.engine) == _models_schema(new_url())
    assert set(snapshot(database.engine)) == set(Base.metadata.tables)


@pytest.mark.parametrize("revision", OLDER)
def test_a_database_upgraded_from_an_older_revision_has_the_new_schema_and_keeps_its_rows(
    new_url: Callable[[], str], revision: str
) -> None:
    url = new_url()
    _upgrade(url, revision)
    upgraded = Database(url)  # upgrades to the newest revision on open
    with upgraded.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert snapshot(upgraded.engine) == snapshot(Database(new_url()).engine)
    [event] = upgraded.events()
    assert (event.employee_id, event.decision, event.event_uid, event.door) == ("E1", "granted", None, None)
    ids, _, vectors = upgraded.all_templates("m")
    assert len(ids) == 1 and np.array_equal(vectors[0], VECTOR)


def test_the_schema_check_sees_a_missing_index(tmp_path: Path) -> None:
    """The comparison is not blind: a database missing one index differs from a new one."""
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    database = Database(url)
    before = snapshot(database.engine)
    with database.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_templates_model_id"))
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) != []
    assert snapshot(database.engine) != before


def table_definitions(path: Path) -> list[str]:
    """'line: what' for each table a module defines: a class with __tablename__, or a Table(...) call."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ClassDef):
            targets = [
                target.id
                for statement in node.body
                if isinstance(statement, ast.Assign | ast.AnnAssign)
                for target in (statement.targets if isinstance(statement, ast.Assign) else [statement.target])
                if isinstance(target, ast.Name)
            ]
            if "__tablename__" in targets:
                found.append(f"{node.lineno}: class {node.name}")
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name == "Table":
                found.append(f"{node.lineno}: Table(...)")
    return found


def sql_imports(path: Path) -> list[str]:
    """'line: import' for each import of SQLAlchemy beyond its errors and the Session type (what a module needs
    to write SQL of its own)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            allowed = SQLALCHEMY_OUTSIDE_STORE.get(node.module or "", set())
            names = {alias.name for alias in node.names}
            if allowed is not None and not names <= allowed:
                found.append(f"{node.lineno}: from {node.module} import {', '.join(sorted(names - allowed))}")
    return found


def _modules_outside_the_store() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.is_relative_to(STORE)
    ]


def test_no_module_outside_the_store_defines_a_table() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{where}"
        for path in _modules_outside_the_store()
        for where in table_definitions(path)
    ]
    assert not found, "tables belong in gate/store/schema.py:\n" + "\n".join(found)


def test_no_module_outside_the_store_writes_sql() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{where}" for path in _modules_outside_the_store() for where in sql_imports(path)
    ]
    assert not found, "SQL belongs in gate/store (call its functions):\n" + "\n".join(found)


def test_the_rules_see_a_table_and_sql_outside_the_store(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from sqlalchemy import Table, select\n"
        "from sqlalchemy.orm import Mapped, Session\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "import sqlalchemy\n"
        "class Thing(Base):\n    __tablename__ = 'things'\n"
        "class Plain:\n    name: str = 'things'\n"
        "things = Table('things', metadata)\n"
        "other = sqlalchemy.Table('other', metadata)\n"
    )
    assert table_definitions(module) == ["5: class Thing", "9: Table(...)", "10: Table(...)"]
    assert sql_imports(module) == [
        "1: from sqlalchemy import Table, select",
        "2: from sqlalchemy.orm import Mapped",
        "4: import sqlalchemy",
    ]
