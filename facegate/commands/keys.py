"""`facegate keys`: the key that seals templates and crops at rest: make one, seal what is stored, show the state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facegate.context import AppContext

keys_app = typer.Typer(help="Encryption at rest: new, encrypt, status.", no_args_is_help=True)


@keys_app.command("new")
def new(path: Annotated[Path, typer.Argument(help="The key file to create (never overwritten).")]) -> None:
    """Write a fresh random key to a new owner-only file and print the config lines that use it."""
    from gate.encryption import write_key_file

    write_key_file(path)
    typer.echo(f"wrote a new key to {path} (owner-only). Add to config.toml:\n")
    typer.echo(f"[encryption]\nkey_file = {json.dumps(str(path.resolve()))}\n")
    typer.echo("then run `facegate keys encrypt` to seal what is already stored. Keep the key apart from the")
    typer.echo("database's backups: without it the templates cannot be read, and with it a backup is plain again.")


@keys_app.command("encrypt")
def encrypt(ctx: typer.Context) -> None:
    """Seal every plain template and crop with the configured key (one transaction), then rebuild the index."""
    from enrollment.sealing import seal_stored_templates

    context: AppContext = ctx.obj
    result = seal_stored_templates(context.database, context.gallery)
    typer.echo(f"sealed {result.embeddings} embeddings and {result.crops} crops of {result.people} people")


def _index_state(path: Path) -> str:
    from gate.encryption import PREFIX

    try:
        with path.open("rb") as handle:
            return "sealed" if handle.read(len(PREFIX)) == PREFIX else "plain"
    except FileNotFoundError:
        return "absent"
    except OSError as error:
        return f"unreadable: {error.strerror}"


@keys_app.command("status")
def status(ctx: typer.Context) -> None:
    """Which key is configured and how many stored embeddings and crops are sealed or still plain."""
    from enrollment.sealing import sealing_counts

    context: AppContext = ctx.obj
    cipher = context.database.cipher
    counts = sealing_counts(context.database)
    index = context.settings.resolve(context.settings.gallery.index_path)
    typer.echo(f"key:        {cipher.source if cipher else 'none configured'}")
    typer.echo(f"embeddings: {counts.embeddings_sealed} sealed, {counts.embeddings_plain} plain")
    typer.echo(f"crops:      {counts.crops_sealed} sealed, {counts.crops_plain} plain")
    typer.echo(f"index:      {_index_state(index)} ({index})")
    if cipher and (counts.embeddings_plain or counts.crops_plain):
        typer.echo("run `facegate keys encrypt` to seal the plain ones")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(keys_app, name="keys")
