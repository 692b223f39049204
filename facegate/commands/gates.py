"""`facegate gates`: every gate writing to this database, online or offline, with its pace and last decision."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from facegate.context import AppContext


def gates(ctx: typer.Context) -> None:
    """Every gate's heartbeat: online or offline.

    Online means seen in the last 15 s; with each gate's frames per second and last decision."""
    context: AppContext = ctx.obj
    statuses = context.database.gate_statuses()
    if not statuses:
        typer.echo("no gate has run against this database yet (facegate run)")
        return
    now = datetime.now(UTC)
    typer.echo(
        f"{'GATE':<16} {'STATE':<8} {'LAST SEEN (UTC)':<20} {'FPS':>5} {'FRAMES':>9}  {'HOST':<20} LAST DECISION"
    )
    for status in statuses:
        state = "online" if status.online(now) else "offline"
        decided = (
            f"{status.last_decision} {status.last_decision_at:%Y-%m-%d %H:%M:%S}" if status.last_decision_at else "-"
        )
        typer.echo(
            f"{status.gate_id:<16} {state:<8} {status.last_seen:%Y-%m-%d %H:%M:%S}  {status.fps:>5.1f} "
            f"{status.frames:>9}  {status.host:<20} {decided}"
        )


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("gates")(gates)
