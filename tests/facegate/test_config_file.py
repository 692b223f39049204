"""Writing the calibrated threshold into config.toml: comments kept, the edit validated, nothing changed on error."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from facegate.config_file import write_threshold
from gate.config import load_settings
from gate.errors import FaceGateError

CONFIG = """# site config
[decision]
target_far = "0.001"   # keep me
votes_needed = 3

[gallery]
match = "best"
"""


def test_write_threshold_keeps_comments_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = write_threshold(path, 0.512345, "FAR 0.001 on 5000 impostor pairs")
    text = path.read_text(encoding="utf-8")
    assert "# site config" in text and "# keep me" in text and "FAR 0.001 on 5000" in text
    assert tomllib.loads(text)["decision"]["threshold"] == 0.5123
    assert settings.decision.threshold == 0.5123 == load_settings(path).decision.threshold
    assert settings.decision.votes_needed == 3


def test_write_threshold_invalid_value_leaves_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(FaceGateError, match="decision.threshold"):
        write_threshold(path, float("nan"), "impossible")
    assert path.read_text(encoding="utf-8") == CONFIG
    path.write_text("[decision\n", encoding="utf-8")
    with pytest.raises(FaceGateError, match="not valid TOML"):
        write_threshold(path, 0.5, "x")
    assert path.read_text(encoding="utf-8") == "[decision\n"


# --- the Markdown report -------------------------------------------------------------------------------------
