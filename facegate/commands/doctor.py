"""`facegate doctor`: check a site before the first person walks up, one line per check (gate/runtime/doctor.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from facegate.context import AppContext


def doctor(
    ctx: typer.Context,
    camera_timeout: Annotated[
        float, typer.Option("--camera-timeout", min=0.5, max=300, help="Seconds each camera may take to give a frame.")
    ] = 10.0,
) -> None:
    """Check the site before its services start: config, model, database, journal, key, cameras, ports, clock.

    One line per check: ok, warn (works, but look at it) or FAIL (fix it before the gate runs), with what was
    found or why not. Exit status 1 when any check fails. Run it with the gate and facegate serve stopped: a running
    service holds its camera and port, and those checks fail (it is not a monitor; see facegate gates). The database
    and journal are opened as a gate opens them (a new database is made, files wider than owner-only are narrowed);
    no stored record is changed."""
    from gate.runtime.doctor import diagnose

    context: AppContext = ctx.obj
    failed = False
    for finding in diagnose(context.settings, context.config_file if context.config_found else None, camera_timeout):
        typer.echo(finding.line())
        failed = failed or finding.failed
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("doctor")(doctor)
