"""`facegate gates`: every gate writing to this database, running, stopped or lost, with its camera's state, its
pace and last decision."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from facegate.context import AppContext


def gates(ctx: typer.Context) -> None:
    """Every gate's heartbeat: running, stopped or lost, and what its camera is doing.

    running: seen in the last 15 s. stopped: it stopped cleanly (SIGTERM, Ctrl-C, the end of a recording). lost:
    it was running and has not been seen for 15 s (crashed, killed, its host or network gone). CAMERA: waiting (not
    reached yet), streaming, lost (being reconnected), ended (a recording's end), or off (the gate stopped). With
    each gate's frames per second and last decision."""
    context: AppContext = ctx.obj
    statuses = context.database.gate_statuses()
    if not statuses:
        typer.echo("no gate has run against this database yet (facegate run)")
        return
    now = datetime.now(UTC)
    typer.echo(
        f"{'GATE':<16} {'STATE':<8} {'CAMERA':<10} {'LAST SEEN (UTC)':<20} {'FPS':>5} {'FRAMES':>9}  {'HOST':<20} "
        "LAST DECISION"
    )
    for status in statuses:
        decided = (
            f"{status.last_decision} {status.last_decision_at:%Y-%m-%d %H:%M:%S}" if status.last_decision_at else "-"
        )
        state, camera = status.status(now), status.camera_now(now) or "-"
        typer.echo(
            f"{status.gate_id:<16} {state:<8} {camera:<10} "
            f"{status.last_seen:%Y-%m-%d %H:%M:%S}  {status.fps:>5.1f} {status.frames:>9}  {status.host:<20} {decided}"
        )


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("gates")(gates)
