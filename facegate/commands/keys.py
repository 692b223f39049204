"""`facegate keys`: the key that seals face data at rest: make one, seal what is stored, prove it and show the state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext
from gate.errors import FaceGateError

if TYPE_CHECKING:
    from enrollment.sealing import SealingCounts
    from gate.store.encryption import Cipher

keys_app = typer.Typer(help="Encryption at rest: new, encrypt, status.", no_args_is_help=True)


@keys_app.command("new")
def new(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The key file to create (never overwritten).")],
    print_only: Annotated[
        bool, typer.Option("--print", help="Leave the config alone: print the line to put in it.")
    ] = False,
) -> None:
    """Write a fresh random key to a new file, and name it in the config.

    The file is owner-only and never overwritten. Its path is set as [encryption] key_file in the config file in
    use (comments kept; refused if the config already names a key); with --print, or without a config file, the
    line to put under its [encryption] is printed instead."""
    from facegate.config_file import check_no_second_key, key_file_setting, write_key_file_setting
    from gate.store.encryption import write_key_file

    context: AppContext = ctx.obj
    config = context.config_file
    if context.config_found and not print_only:
        check_no_second_key(config)  # before a key is made for nothing
        write_key_file(path)
        try:
            write_key_file_setting(config, path)
        except FaceGateError as error:
            raise FaceGateError(f"wrote the key {path}, but not into the config: {error}") from None
        typer.echo(f"wrote a new key to {path} (owner-only), set as [encryption] key_file in {config}")
    else:
        write_key_file(path)
        setting = key_file_setting(path, config) if context.config_found else str(path.resolve())
        where = config if context.config_found else "your config.toml"
        typer.echo(f"wrote a new key to {path} (owner-only). Put this line under [encryption] in {where}:\n")
        typer.echo(f"key_file = {json.dumps(setting)}\n")
    typer.echo("Then run `facegate keys encrypt` to seal what is already stored. Keep the key apart from the")
    typer.echo("database's backups: without it the templates cannot be read, and with it a backup is plain again.")


@keys_app.command("encrypt")
def encrypt(ctx: typer.Context) -> None:
    """Seal the stored face data with the configured key.

    Every plain template, crop, event face and gate snapshot, then the index is rebuilt. Safe to stop and run
    again: templates are sealed in one transaction, event faces in committed batches."""
    from enrollment.sealing import seal_stored

    context: AppContext = ctx.obj
    result = seal_stored(context.database, context.gallery)
    typer.echo(
        f"sealed {result.embeddings} embeddings and {result.crops} crops of {result.people} people, "
        f"{result.event_faces} event faces, {result.snapshots} gate snapshots"
    )


def _index_state(path: Path, cipher: Cipher | None) -> str:
    """Whether the index file is sealed (and, with a key, whether the key opens it), plain or absent."""
    from gate.store.encryption import PREFIX

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "absent"
    except OSError as error:
        return f"unreadable: {error.strerror}"
    if not data.startswith(PREFIX):
        return "plain"
    if cipher is None:
        return "sealed"
    try:
        cipher.unseal(data, f"gallery index {path}")
    except FaceGateError:
        return "sealed with another key (the gate rebuilds it from the database)"
    return "sealed, opened by the key"


def _key_line(cipher: Cipher | None, counts: SealingCounts, proven: list[str]) -> str:
    if cipher is None:
        unreadable = f" ({counts.sealed} sealed rows cannot be read without it)" if counts.sealed else ""
        return f"none configured{unreadable}"
    if not proven:
        return f"{cipher.source} (nothing is sealed yet to prove it against)"
    return f"{cipher.source} (opens the sealed {', '.join(kind + 's' for kind in proven)})"


@keys_app.command("status")
def status(ctx: typer.Context) -> None:
    """Prove the configured key and count what is sealed.

    The key is proven against a sealed row of each kind (a key that does not open them is an error, exit 2);
    then how many embeddings, crops, event faces and gate snapshots are sealed or still plain, and the index
    file's state."""
    from enrollment.sealing import prove_key, sealing_counts

    context: AppContext = ctx.obj
    cipher = context.database.cipher
    proven = prove_key(context.database) if cipher else []
    counts = sealing_counts(context.database)
    index = context.settings.resolve(context.settings.gallery.index_path)
    typer.echo(f"key:         {_key_line(cipher, counts, proven)}")
    typer.echo(f"embeddings:  {counts.embeddings_sealed} sealed, {counts.embeddings_plain} plain")
    typer.echo(f"crops:       {counts.crops_sealed} sealed, {counts.crops_plain} plain")
    typer.echo(f"event faces: {counts.event_faces_sealed} sealed, {counts.event_faces_plain} plain")
    typer.echo(f"snapshots:   {counts.snapshots_sealed} sealed, {counts.snapshots_plain} plain")
    typer.echo(f"index:       {_index_state(index, cipher)} ({index})")
    if cipher and counts.plain:
        typer.echo("run `facegate keys encrypt` to seal the plain ones")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(keys_app, name="keys")
