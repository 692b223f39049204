"""`facegate --help` and every subcommand's help as a user reads them: config sections named in square brackets
(`[service]`, `[[cameras]]`) survive (Rich markup took them for style tags and printed nothing), and the
descriptions say what the code runs today."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from facegate.cli import app

BRACKETED = re.compile(r"\[[^\[\]\s]+\]")  # [service], [card.readers], [default: ...] is not one (a space)


def _help(tmp_path: Path, *command: str) -> str:
    config = tmp_path / "config.toml"
    config.write_text("")
    outcome = CliRunner().invoke(app, ["--config", str(config), *command, "--help"])
    assert outcome.exit_code == 0, outcome.output
    return " ".join(outcome.output.split())  # help is wrapped to the terminal: compare words, not lines


def _commands() -> Iterator[tuple[list[str], object]]:
    """Every command and group of the `facegate` tree with its path, the root first."""
    root = typer.main.get_command(app)
    context = typer.Context(root)
    stack: list[tuple[list[str], object]] = [([], root)]
    while stack:
        path, command = stack.pop(0)
        yield path, command
        if hasattr(command, "list_commands"):
            stack += [(path + [name], command.get_command(context, name)) for name in command.list_commands(context)]


def _written_help(command: object) -> str:
    """The help text written in the code for a command: its own and its parameters'."""
    texts = [getattr(command, "help", None) or ""]
    texts += [getattr(parameter, "help", None) or "" for parameter in getattr(command, "params", [])]
    return " ".join(texts)


def test_help_of_run_shows_the_cameras_table(tmp_path: Path) -> None:
    assert "With [[cameras]] in the config" in _help(tmp_path, "run")


def test_help_of_serve_and_of_model_list_show_their_config_sections(tmp_path: Path) -> None:
    assert "Listens on [service] host:port" in _help(tmp_path, "serve")
    assert "by name in [model] path" in _help(tmp_path, "model", "list")


def test_help_of_evaluate_gate_shows_the_default_policies(tmp_path: Path) -> None:
    assert "(default 1/1,2/3,3/5,4/7,5/10)" in _help(tmp_path, "evaluate-gate")


@pytest.mark.parametrize("path", [path for path, command in _commands() if BRACKETED.search(_written_help(command))])
def test_every_bracketed_name_in_a_help_text_reaches_the_screen(tmp_path: Path, path: list[str]) -> None:
    command = dict((tuple(p), c) for p, c in _commands())[tuple(path)]
    shown = _help(tmp_path, *path)
    for name in BRACKETED.findall(_written_help(command)):
        assert name in shown, f"facegate {' '.join(path)} --help lost {name}"


def test_top_level_help_and_package_description_name_the_network_in_use(tmp_path: Path) -> None:
    shown = _help(tmp_path)
    assert "dlib's face-recognition ResNet" in shown and "triplet-trained" not in shown
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    description = re.search(r'^description = "(.*)"$', pyproject, re.MULTILINE)
    assert description is not None
    assert "dlib's face-recognition ResNet" in description.group(1) and "triplet-trained" not in description.group(1)


def test_train_help_names_every_loss_it_offers(tmp_path: Path) -> None:
    shown = _help(tmp_path, "train")
    assert all(word in shown for word in ("batch-hard", "semi-hard", "contrastive", "ArcFace", "distillation"))
