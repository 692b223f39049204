"""Fixtures of the command tests: a working folder where no config file is found."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.config import CONFIG_ENV, SYSTEM_CONFIG


@pytest.fixture
def no_config_anywhere(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder (a new empty one) where no config is found: no $FACEGATE_CONFIG, no ./config.toml and
    an empty user config folder (XDG_CONFIG_HOME), for this process and the commands it starts."""
    if SYSTEM_CONFIG.exists():
        pytest.skip(f"this machine has a {SYSTEM_CONFIG}")
    folder = tmp_path_factory.mktemp("nowhere")
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / "user-config"))
    monkeypatch.chdir(folder)
    return folder
