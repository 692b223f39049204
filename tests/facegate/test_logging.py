"""The log as a site reads it: [logging] format = "json" gives one JSON object per line for journald and log
collectors; a new database's first command prints no Alembic line unless --verbose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from facegate_process import facegate_command

pytestmark = pytest.mark.slow  # each test starts the real `facegate` command in a subprocess (~2 s)

JSON_KEYS = {"time", "level", "logger", "message"}


def _config(tmp_path: Path, logging: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/gate.db"\n[logging]\n{logging}', encoding="utf-8")
    return path


def facegate(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(facegate_command(*args), cwd=cwd, capture_output=True, text=True, timeout=120)


def test_json_format_every_line_is_an_object_with_time_level_logger_message(tmp_path: Path) -> None:
    (tmp_path / "gate.db").touch()
    os.chmod(tmp_path / "gate.db", 0o644)  # others could read it: the database warns as it narrows the mode
    config = _config(tmp_path, 'format = "json"\n')
    done = facegate("--config", config, "--verbose", "enroll", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stderr.splitlines()]  # every line whole JSON, or this fails
    assert len(records) > 3 and all(set(record) >= JSON_KEYS for record in records)
    warning = next(r for r in records if r["level"] == "WARNING")
    assert warning["logger"] == "gate.store.encryption" and "could be read by other users" in warning["message"]
    assert any(r["logger"].startswith("alembic") for r in records)  # --verbose: the libraries' lines too
    assert records[0]["time"].endswith("+00:00")  # ISO 8601 in UTC


def test_json_format_carries_the_exception(tmp_path: Path) -> None:
    """A record logged with its exception (a gate loop that crashed) keeps the traceback in one field."""
    config = _config(tmp_path, 'format = "json"\n')
    code = (
        "import logging; from facegate.context import AppContext; from gate.config import load_settings\n"
        f"AppContext(load_settings({str(config)!r})).configure_logging()\n"
        "try:\n    {}['camera']\n"
        "except KeyError:\n    logging.getLogger('gate.runtime.loop').exception('loop failed')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    (record,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert record["level"] == "ERROR" and record["message"] == "loop failed"
    assert record["exception"].startswith("Traceback") and "KeyError: 'camera'" in record["exception"]


def test_text_format_stays_the_default(tmp_path: Path) -> None:
    done = facegate("--config", _config(tmp_path, 'level = "DEBUG"\n'), "enroll", "list", cwd=tmp_path)
    assert done.returncode == 0
    assert " DEBUG gate.store.database: " in done.stderr and not done.stderr.lstrip().startswith("{")


def test_new_database_prints_no_alembic_line_unless_verbose(tmp_path: Path) -> None:
    config = _config(tmp_path)
    quiet = facegate("--config", config, "enroll", "list", cwd=tmp_path)
    assert quiet.returncode == 0 and (tmp_path / "gate.db").stat().st_size > 0  # the database was made
    assert "alembic" not in quiet.stderr and "schema" not in quiet.stderr, quiet.stderr
    (tmp_path / "gate.db").unlink()
    verbose = facegate("-v", "--config", config, "enroll", "list", cwd=tmp_path)
    assert verbose.returncode == 0
    assert "alembic.runtime.migration: Running upgrade  -> 0001" in verbose.stderr
