"""`facegate init [DIR]`: a new site in a folder: its commented config.toml (every setting at its default), an
owner-only data/ folder (or the one --data names, as a service needs), and, as asked, an encryption key and the
first admin account."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from gate.config import CONFIG_NAME, Settings
from gate.errors import FaceGateError

DATA_FOLDER = "data"  # where the template's database, journal and index lie, relative to the config
KEY_NAME = "facegate.key"  # beside the config, not in data/: a backup of data/ must not carry the key to it
PRIVATE_FOLDER = 0o700


@dataclass(frozen=True)
class Answers:
    """What the new site gets beyond its config and data folder."""

    key: bool
    admin: str | None  # the first admin account's name; None: none now
    password: str = field(default="", repr=False)


def _ask(key: bool | None, admin: str | None, no_admin: bool, password_stdin: bool, yes: bool) -> Answers:
    """The flags' answers, the questions not answered by a flag asked (with --yes: their defaults taken)."""
    from facegate.commands.admin import read_password

    if admin is not None and no_admin:
        raise FaceGateError("--admin NAME or --no-admin, not both")
    if key is None:
        key = yes or typer.confirm(
            f"Encrypt face data at rest with a new key file ({KEY_NAME}, owner-only)?", default=True
        )
    ask_admin = admin is None and not (no_admin or yes)
    if ask_admin and typer.confirm("Create the first admin account of the admin page (facegate serve)?", default=True):
        admin = typer.prompt("its name", default="admin")
    if admin is None or no_admin:
        return Answers(key, None)
    return Answers(key, admin, read_password(password_stdin))


def _check_data_folder(path: Path) -> None:
    """An existing data folder must be empty or FaceGate's (every file in it a database, journal or index of the
    names the config gives them, or their sidecars): init makes it owner-only, which must not befall a folder of
    other things, even one that also holds a file of FaceGate's name."""
    from facegate.config_file import template_data_files

    if not path.exists():
        return
    try:
        names = sorted(entry.name for entry in path.iterdir())
    except NotADirectoryError:
        raise FaceGateError(f"the data folder {path} is not a folder") from None
    except OSError as error:
        raise FaceGateError(f"cannot read the data folder {path}: {error.strerror}") from None
    others = [name for name in names if not name.startswith(tuple(template_data_files()))]
    if others:
        raise FaceGateError(
            f"the data folder {path} holds files that are not FaceGate's ({others[0]}, ...): "
            "give an empty folder, a FaceGate data folder or a new one"
        )


def _private_folder(path: Path) -> str:
    there = path.exists()
    try:
        path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        os.chmod(path, PRIVATE_FOLDER)
    except OSError as error:
        raise FaceGateError(f"cannot make the data folder {path}: {error.strerror}") from None
    done = "kept  {}/ (already there; now owner-only)" if there else "made  {}/ (owner-only)"
    return done.format(path) + ": the database, journal and index go here"


def _key_path(folder: Path, key_file: Path | None, key: bool | None) -> tuple[Path, bool | None]:
    """Where the key goes (beside the config unless --key-file) and --key's answer (--key-file says yes)."""
    if key_file is None:
        return folder / KEY_NAME, key
    if key is False:
        raise FaceGateError("--key-file PATH or --no-key, not both")
    return key_file, True


def _check_key_apart(key: Path, data: Path) -> None:
    if key.resolve().is_relative_to(data.resolve()):
        raise FaceGateError(
            f"the key file {key} would lie in the data folder {data}: a backup of the data would carry its key "
            "(--key-file PATH elsewhere)"
        )


def _key(path: Path) -> str:
    """A new key file at `path`, or the one already there (what it sealed needs it) once it proves a key."""
    from gate.store.encryption import read_key_file, write_key_file

    if path.exists():
        read_key_file(path, f"{path} (already there)")
        return f"kept  {path}: the key file already there"
    write_key_file(path)
    return f"made  {path} (owner-only): the key; keep a copy apart from the database's backups"


def _add_admin(settings: Settings, name: str, password: str) -> str:
    """The first account, in the new site's database (as `facegate admin add` makes one)."""
    from facegate.commands.admin import add_admin
    from gate.runtime.parts import open_database

    database = open_database(settings)
    try:
        added = add_admin(database, name, "admin", password)
    finally:
        database.close()
    return f"{added}, to sign in to the admin page"


def _next_steps(config: Path, admin: str | None) -> list[str]:
    here = config.parent.resolve() == Path.cwd().resolve()
    command = "facegate" if here else f"facegate --config {config}"
    steps = [
        f"edit {config}: [camera] source and gate_id, [actuator] for the door",
        f"{command} doctor    checks the setup",
        f"{command} run       the gate",
        f"{command} serve     the admin page and the REST API",
    ]
    if admin is None:
        steps.insert(1, f"{command} admin add NAME    an account for the admin page")
    return steps


def init(
    folder: Annotated[
        Path, typer.Argument(help="The site's folder: its config.toml, data/ and key (made if absent).")
    ] = Path("."),
    data: Annotated[
        Path | None,
        typer.Option(
            help="The data folder (database, journal, index) instead of DIR/data: made owner-only; "
            "one already there must be empty or FaceGate's.",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        bool | None,
        typer.Option("--key/--no-key", help=f"Make an encryption key file ({KEY_NAME}) for face data at rest."),
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option(help=f"The key file's path instead of DIR/{KEY_NAME} (implies --key).")
    ] = None,
    admin: Annotated[str | None, typer.Option("--admin", help="Create the first admin account, of this name.")] = None,
    no_admin: Annotated[bool, typer.Option("--no-admin", help="Create no account now.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the admin's password from the first line of stdin.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Ask nothing: a key unless --no-key, no account unless --admin.")
    ] = False,
) -> None:
    """Make a new site: config.toml, data/, a key and the first admin.

    Writes DIR/config.toml from the commented template (every setting at its default; an existing one is never
    overwritten) and an owner-only DIR/data for the database, journal and index (--data PATH: that folder
    instead, named in the config; absolute when PATH is). Asks whether to make an encryption key
    (DIR/facegate.key or --key-file PATH, owner-only, named in the config's [encryption] key_file) and the first
    admin account (password of at least 10 characters); --key/--no-key, --admin NAME, --no-admin and --yes
    answer for scripts. Relative paths in the config are relative to its folder."""
    from facegate.config_file import create_config, data_folder_setting, from_template

    config = folder / CONFIG_NAME
    if config.exists() or config.is_symlink():
        raise FaceGateError(f"{config} exists: it is never overwritten (edit it, or init another folder)")
    data_folder = folder / DATA_FOLDER if data is None else data
    _check_data_folder(data_folder)
    key_path, key = _key_path(folder, key_file, key)
    answers = _ask(key, admin, no_admin, password_stdin, yes)
    if answers.key:
        _check_key_apart(key_path, data_folder)
    text, settings = from_template(  # validated before anything is written
        config, key_path if answers.key else None, None if data is None else data_folder_setting(data, config)
    )
    done = [_private_folder(data_folder)]
    if answers.key:
        done.append(_key(key_path))
    if answers.admin is not None:  # before the config is written: a refused name leaves no config to redo
        done.append(_add_admin(settings, answers.admin, answers.password))
    create_config(config, text)
    typer.echo(f"wrote {config}: every setting at its default, with what it does")
    typer.echo("\n".join(done))
    typer.echo("next:\n" + "\n".join(f"  {step}" for step in _next_steps(config, answers.admin)))


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("init")(init)
