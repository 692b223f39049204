"""`facegate events`: the access log, filtered, as a table, CSV or JSON (to the screen or a file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext
from gate.errors import FaceGateError

if TYPE_CHECKING:
    from gate.store.events import AccessEventRecord

FORMATS = ("table", "csv", "json")


def render(events: list[AccessEventRecord], fmt: str) -> str:
    """The events in one of FORMATS."""
    from gate.store.csv_cells import csv_text
    from gate.store.events import EVENT_FIELDS

    rows = [e.to_json() for e in events]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        return csv_text(EVENT_FIELDS, rows).rstrip("\n")
    lines = [f"{'time (UTC)':19}  {'gate':12} {'decision':8} {'reason':16} {'employee':12} {'door':9} score"]
    for e in events:
        score = "" if e.score is None else f"{e.score:.3f}"
        who = e.employee_id or (f"({e.candidate_id})" if e.candidate_id else "-")
        door = e.door or "-"
        when = f"{e.time:%Y-%m-%d %H:%M:%S}"
        lines.append(f"{when}  {e.gate_id:12} {e.decision:8} {e.reason:16} {who:12} {door:9} {score}")
    return "\n".join(lines)


def events(
    ctx: typer.Context,
    gate: Annotated[str | None, typer.Option(help="Only this gate's events.")] = None,
    person: Annotated[str | None, typer.Option(help="Only this employee id's events.")] = None,
    decision: Annotated[str | None, typer.Option(help="granted or denied.")] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO date/time on (UTC unless given).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO date/time.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of the screen.")] = None,
) -> None:
    """The access log, newest first.

    Every door decision with its gate, person, score and reason, filtered, as a table, CSV or JSON."""
    from gate.store.event_log import Journal
    from gate.store.events import EventFilter, parse_moment

    if fmt not in FORMATS:
        raise FaceGateError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if decision not in (None, "granted", "denied"):
        raise FaceGateError(f"--decision must be granted or denied, got {decision!r}")
    where = EventFilter(gate, person, decision, parse_moment(since, "--since"), parse_moment(until, "--until"))  # type: ignore[arg-type]
    context: AppContext = ctx.obj
    text = render(context.database.events(limit, where), fmt)
    journal = Journal(context.settings.resolve(context.settings.database.journal_path))
    if waiting := journal.waiting():
        typer.echo(
            f"note: {waiting} records the database could not take wait in {journal.path} (the gate adds "
            "them when it can write to it)",
            err=True,
        )
    if out is None:
        typer.echo(text)
        return
    out.write_text(text + "\n", encoding="utf-8")
    typer.echo(f"{out}: written")


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("events")(events)
