"""`facegate backup OUT` and `facegate restore IN`: the database copied while gates run, and loaded into an empty
one (gate/store/backup.py); the key is kept apart, the index rebuilt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegate.context import AppContext


def backup(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="The backup file to write (owner-only; never overwritten).")],
) -> None:
    """Copy the database into a backup file, consistent while gates run.

    SQLite through its online backup API, PostgreSQL through pg_dump. The encryption key is never in it: the
    backup says which key (by fingerprint) it needs; keep the key apart. The gallery index is not in it either
    (it is rebuilt from the database). Access events still waiting in this machine's journal are not in it."""
    from gate.store.backup import backup as take_backup
    from gate.store.event_log import Journal

    context: AppContext = ctx.obj
    manifest = take_backup(context.database, out)
    size = out.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"
    typer.echo(f"backed up {manifest.counts()} ({manifest.backend}, schema {manifest.revision}) to {out}")
    typer.echo(f"  {shown}, owner-only")
    if manifest.key_fingerprint:
        typer.echo(f"  its face data needs the key of fingerprint {manifest.key_fingerprint}: keep that key, apart")
    else:
        typer.echo("  nothing in it is encrypted: keep it as safe as the database itself")
    journal = Journal(context.settings.resolve(context.settings.database.journal_path))
    if waiting := journal.waiting():
        typer.echo(f"  {waiting} records still wait in this machine's journal and are not in it (a gate replays them)")


def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(metavar="IN", help="A backup file written by facegate backup.")],
) -> None:
    """Load a backup into the configured database, which must be empty.

    Refused, changing nothing, when the database holds anything, is of another kind than the backup's, or when
    the configured key ([encryption]) is not the one the backup's face data is encrypted with."""
    from gate.store.backup import restore as load_backup
    from gate.store.backup import shown_url
    from gate.store.encryption import load_cipher

    context: AppContext = ctx.obj
    context.require_config()  # the database is the config's, never ./data wherever the command started
    url = context.settings.database_url
    manifest = load_backup(url, load_cipher(context.settings), source)
    taken = f"taken {manifest.created}, schema {manifest.revision}"
    typer.echo(f"restored {manifest.counts()} ({taken}) into {shown_url(url)}")
    typer.echo("the gallery index is rebuilt from them when a gate starts")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("backup")(backup)
    app.command("restore")(restore)
