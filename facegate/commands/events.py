"""`facegate events`: the access log, filtered, as a table, CSV or JSON (to the screen or a file); `facegate events
confirm` / `undo-confirm`: a denied event's face added to the person it showed, or taken back; `visitors` /
`dismiss` / `enrol-visitor`: the unknown visitors, grouped, dismissed or enrolled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext
from gate.errors import FaceGateError

if TYPE_CHECKING:
    from gate.store.events import AccessEventRecord, EventMark

FORMATS = ("table", "csv", "json")

events_app = typer.Typer(no_args_is_help=False)


def _number(mark: EventMark | None) -> str:
    """An event's number, and whom it was confirmed as."""
    if mark is None:
        return ""
    return f"{mark.event_id}" + (f" (confirmed as {mark.confirmed_as})" if mark.confirmed_as else "")


def render(events: list[AccessEventRecord], fmt: str, marks: dict[str, EventMark] | None = None) -> str:
    """The events in one of FORMATS; the table ends each row with the event's number (what `facegate events
    confirm` takes) and whom its face was confirmed as, from `marks`."""
    from gate.store.csv_cells import csv_text
    from gate.store.events import EVENT_FIELDS

    rows = [e.to_json() for e in events]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        return csv_text(EVENT_FIELDS, rows).rstrip("\n")
    marks = marks or {}
    lines = [f"{'time (UTC)':19}  {'gate':12} {'decision':8} {'reason':16} {'employee':12} {'door':9} score  event"]
    for e in events:
        number = _number(marks.get(e.event_uid or ""))
        score = "" if e.score is None else f"{e.score:.3f}"
        who = e.employee_id or (f"({e.candidate_id})" if e.candidate_id else "-")
        door = e.door or "-"
        when = f"{e.time:%Y-%m-%d %H:%M:%S}"
        lines.append(f"{when}  {e.gate_id:12} {e.decision:8} {e.reason:16} {who:12} {door:9} {score:5}  {number}")
    return "\n".join(lines)


@events_app.callback(invoke_without_command=True)
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
    """The access log, newest first; confirm a denied event's face.

    Every door decision with its gate, person, score, reason and number, filtered, as a table, CSV or JSON.
    `facegate events confirm EVENT_ID EMPLOYEE_ID` adds a denied event's face to that person."""
    if ctx.invoked_subcommand is not None:
        return
    from gate.store.event_log import Journal
    from gate.store.events import EventFilter, parse_moment

    if fmt not in FORMATS:
        raise FaceGateError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if decision not in (None, "granted", "denied"):
        raise FaceGateError(f"--decision must be granted or denied, got {decision!r}")
    where = EventFilter(gate, person, decision, parse_moment(since, "--since"), parse_moment(until, "--until"))  # type: ignore[arg-type]
    context: AppContext = ctx.obj
    found = context.database.events(limit, where)
    marks = context.database.event_marks([e.event_uid for e in found if e.event_uid]) if fmt == "table" else {}
    text = render(found, fmt, marks)
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


@events_app.command("confirm")
def confirm(
    ctx: typer.Context,
    event_id: Annotated[int, typer.Argument(help="The event's number (the last column of `facegate events`).")],
    employee_id: Annotated[str, typer.Argument(help="Who the event's face showed.")],
) -> None:
    """Add a denied event's face to a person's templates.

    Only when the face passes the quality gate again, matches the person at the review threshold ([enrollment]
    review_far) and no one else as well; audited. `facegate events undo-confirm` takes it back."""
    from enrollment.confirm import confirm_event

    context: AppContext = ctx.obj
    done = confirm_event(context.runtime, event_id, employee_id)
    nearest = done.nearest_other
    other = "" if nearest is None else f"; nearest other person {nearest.employee_id} at {nearest.score:.3f}"
    typer.echo(
        f"event {done.event_id} confirmed as {done.employee_id} ({done.name}): template {done.template_id}, score"
        f" {done.score:.3f} >= review threshold {done.review_threshold:.3f} (FAR {done.review_far}){other}"
    )


@events_app.command("undo-confirm")
def undo_confirm(
    ctx: typer.Context,
    event_id: Annotated[int, typer.Argument(help="The confirmed event's number.")],
) -> None:
    """Take back a confirmed event's face.

    The template its confirmation made is removed (audited)."""
    from enrollment import confirm

    context: AppContext = ctx.obj
    undone = confirm.undo_confirm(context.database, context.gallery, event_id)
    ids = ", ".join(str(t.id) for t in undone.templates)
    typer.echo(f"event {event_id}'s confirmation undone: template {ids} of {undone.employee_id} removed")


def visitors(
    ctx: typer.Context,
    days: Annotated[int | None, typer.Option(help="Of the last this many days (default: [visitors] days).")] = None,
    limit: Annotated[
        int | None, typer.Option(help="At most this many faces, newest first (default: [visitors] max_faces).")
    ] = None,
    min_size: Annotated[int, typer.Option(min=1, help="Only groups of at least this many faces.")] = 1,
) -> None:
    """The unknown visitors, grouped by who they look like.

    Recent denied faces that matched nobody enrolled, neither dismissed nor confirmed, grouped so that every two
    faces of a group look alike; the largest groups first. Enrol a group with `facegate events enrol-visitor`, or
    dismiss it with `facegate events dismiss`."""
    from enrollment.visitors import visitor_groups

    context: AppContext = ctx.obj
    groups = visitor_groups(context.runtime, days, limit, min_size)
    if not groups:
        typer.echo("no unknown visitors")
        return
    typer.echo(f"{'group':5}  {'size':4}  {'first seen (UTC)':19}  {'last seen (UTC)':19}  {'gates':16} events")
    for number, group in enumerate(groups, 1):
        first, last = f"{group.first_seen:%Y-%m-%d %H:%M:%S}", f"{group.last_seen:%Y-%m-%d %H:%M:%S}"
        gates, ids = ",".join(group.gate_ids), " ".join(str(i) for i in group.event_ids)
        typer.echo(f"{number:<5}  {group.size:<4}  {first:19}  {last:19}  {gates:16} {ids}")


def dismiss(
    ctx: typer.Context,
    event_ids: Annotated[list[int], typer.Argument(help="The events' numbers (`facegate events visitors`).")],
) -> None:
    """Dismiss unknown visitors' faces.

    They leave the unknown visitors; the events stay in the access log."""
    from enrollment.visitors import dismiss_visitors

    context: AppContext = ctx.obj
    marked = dismiss_visitors(context.database, event_ids)
    typer.echo(f"{marked} of {len(set(event_ids))} events dismissed from the unknown visitors")


def enrol_visitor(
    ctx: typer.Context,
    event_ids: Annotated[list[int], typer.Argument(help="The group's event numbers (`facegate events visitors`).")],
    employee_id: Annotated[str, typer.Option("--id", help="The new person's employee id.")],
    name: Annotated[str, typer.Option(help="The new person's name.")],
    force: Annotated[bool, typer.Option(help="Enrol even if a face matches another enrolled person.")] = False,
) -> None:
    """Enrol an unknown visitor as a new person from their faces at the door.

    The same rules as photos: each face passes the quality gate again, none looks like someone enrolled, and all
    look like one another; each template records its event; audited."""
    from enrollment.visitors import enrol_visitor as enrol

    context: AppContext = ctx.obj
    result = enrol(context.runtime, event_ids, employee_id, name, force)
    for outcome in result.outcomes:
        typer.echo(f"{outcome.path.name}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
    typer.echo(f"{result.employee_id} ({result.name}) enrolled from {result.added} faces at the door")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    events_app.command("visitors")(visitors)
    events_app.command("dismiss")(dismiss)
    events_app.command("enrol-visitor")(enrol_visitor)
    app.add_typer(events_app, name="events")
