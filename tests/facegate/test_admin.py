"""`facegate admin` and `facegate token`: accounts and tokens as the API then sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from facegate.cli import app
from gate.config import load_settings
from gate.errors import FaceGateError
from gate.runtime.parts import open_database
from service.accounts import check_password, token_principal

PASSWORD = "correct horse battery"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/gate.db"\n')
    return path


def run(config: Path, *args: str, stdin: str | None = None) -> str:
    outcome = CliRunner().invoke(app, ["--config", str(config), *args], input=stdin)
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise outcome.exception
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def test_admin_add_from_stdin_list_and_disable(config: Path) -> None:
    assert "account ada added (admin)" in run(config, "admin", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n")
    run(config, "admin", "add", "vic", "--role", "viewer", stdin=f"{PASSWORD}\n{PASSWORD}\n")  # asked twice
    listed = run(config, "admin", "list")
    assert [line.split()[:3] for line in listed.splitlines()[1:]] == [
        ["ada", "admin", "active"],
        ["vic", "viewer", "active"],
    ]
    database = open_database(load_settings(config))
    assert check_password(database, "vic", PASSWORD) is not None
    assert check_password(database, "vic", "wrong password") is None
    run(config, "admin", "disable", "ada")
    assert "disabled" in run(config, "admin", "list").splitlines()[1]
    assert check_password(database, "ada", PASSWORD) is None


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("admin", "add", "bob", "--password-stdin"), "short\n", "at least 10 characters"),
        (("admin", "add", "bob", "--role", "root", "--password-stdin"), PASSWORD + "\n", "role must be one of"),
        (("admin", "disable", "nobody"), None, "no account named 'nobody'"),
        (("token", "revoke", "nobody"), None, "no token named 'nobody'"),
    ],
)
def test_admin_and_token_refusals_are_one_line(config: Path, args: tuple[str, ...], stdin: str | None, message: str):
    with pytest.raises(FaceGateError, match=message):
        run(config, *args, stdin=stdin)


def test_a_second_account_of_the_same_name_is_refused(config: Path) -> None:
    run(config, "admin", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n")
    with pytest.raises(FaceGateError, match="exists already"):
        run(config, "admin", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n")


def test_token_shown_once_works_until_revoked(config: Path) -> None:
    token = run(config, "token", "add", "door-panel", "--role", "admin").splitlines()[-1]
    database = open_database(load_settings(config))
    principal = token_principal(database, token)
    assert principal is not None and (principal.name, principal.role) == ("door-panel", "admin")
    listed = run(config, "token", "list")
    assert token not in listed and "door-panel" in listed and "active" in listed
    run(config, "token", "revoke", "door-panel")
    assert token_principal(database, token) is None
    assert "revoked" in run(config, "token", "list")


def test_admin_add_states_the_rule_before_asking_and_asks_again_for_a_short_or_unequal_password(config: Path):
    answers = f"short\n{PASSWORD}\n{PASSWORD}x\n{PASSWORD}\n{PASSWORD}\n"  # too short; not repeated the same; right
    output = run(config, "admin", "add", "ada", stdin=answers)
    assert output.index("The password needs at least 10 characters.") < output.index("password:")
    assert "too short (5 characters): at least 10; try again" in output and "the two differ; try again" in output
    assert output.rstrip().endswith("account ada added (admin)")
    database = open_database(load_settings(config))
    assert check_password(database, "ada", PASSWORD) is not None
    assert check_password(database, "ada", "short") is None
