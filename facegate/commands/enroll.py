"""`facegate enroll` subcommands: add, capture (from the camera), list, show, remove and re-embed people (wrappers
of enrollment/, each imported when its command runs: listing people must not load the network)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext

if TYPE_CHECKING:
    from enrollment.people import EnrollResult
    from enrollment.photos import PhotoOutcome
    from enrollment.roster import PersonSummary, TemplateInfo
    from enrollment.strength import Strength

enroll_app = typer.Typer(
    help="Enrolled people: add, capture, list, show, audit, rename, deactivate, reactivate, remove, remove-template, "
    "reembed.",
    no_args_is_help=True,
)


def _echo_outcomes(outcomes: Sequence[PhotoOutcome]) -> None:
    for outcome in outcomes:
        reason = f"  {outcome.reason}" if outcome.reason else ""
        typer.echo(f"  {outcome.status:<9} {outcome.path}{reason}")


def _report(enrol: Callable[[], EnrollResult], what: str) -> None:
    """Run an enrolment and print what became of each face offered (`what`: photos or captured faces), refused
    ones included."""
    from enrollment.people import EnrollmentRefused

    try:
        result = enrol()
    except EnrollmentRefused as refused:
        _echo_outcomes(refused.outcomes)
        raise
    verb = "enrolled" if result.created else "updated"
    typer.echo(f"{verb} {result.employee_id}: {result.added} of {len(result.outcomes)} {what} added")
    _echo_outcomes(result.outcomes)


@enroll_app.command("add")
def add(
    ctx: typer.Context,
    employee_id: Annotated[str, typer.Argument(help="The person's employee id (unique).")],
    photos: Annotated[list[Path], typer.Argument(help="Photo files or folders of photos, one face each.")],
    name: Annotated[str | None, typer.Option(help="Full name (required for a new person).")] = None,
    force: Annotated[bool, typer.Option(help="Enroll even if the photos match another enrolled person.")] = False,
    accept_unmatched: Annotated[
        bool, typer.Option(help="Add photos to an enrolled person even if they do not match the person's own.")
    ] = False,
) -> None:
    """Enroll a person, or add photos to one.

    Each photo goes through the gate's own detect, align and quality path; one face a photo. New photos of an
    enrolled person must match that person (--accept-unmatched insists); photos like another enrolled person's
    are refused (--force insists)."""
    from enrollment.people import add_person

    context: AppContext = ctx.obj
    _report(lambda: add_person(context.runtime, employee_id, name, photos, force, accept_unmatched=accept_unmatched),
            "photos")  # fmt: skip


@enroll_app.command("capture")
def capture(
    ctx: typer.Context,
    employee_id: Annotated[str, typer.Argument(help="The person's employee id (unique).")],
    name: Annotated[str | None, typer.Option(help="Full name (required for a new person).")] = None,
    source: Annotated[
        str | None,
        typer.Option(help="A camera (0, /dev/video0), a stream URL or a video file (default: [camera] source)."),
    ] = None,
    gate: Annotated[
        str | None, typer.Option(help="Watch the camera the config gives this gate id ([camera] or [[cameras]]).")
    ] = None,
    frames: Annotated[int, typer.Option(min=1, max=50, help="Good, different frames to enrol.")] = 5,
    timeout: Annotated[float, typer.Option(min=1.0, max=600.0, help="Seconds to watch before giving up.")] = 30.0,
    force: Annotated[bool, typer.Option(help="Enroll even if the face matches another enrolled person.")] = False,
    accept_unmatched: Annotated[
        bool, typer.Option(help="Add faces to an enrolled person even if they do not match the person's own.")
    ] = False,
) -> None:
    """Enroll a person, or add faces to one, from the gate's camera.

    Watches the source until it has shown the given number of good frames of the one person in view, each with
    the head turned a little differently; a second face in view refuses the frame. The faces then go through the
    same checks as photos (enroll add)."""
    from enrollment.capture import CaptureOptions, enrol_from_camera
    from gate.errors import FaceGateError
    from gate.vision.sources import GateCamera, configured_source, gate_camera

    context: AppContext = ctx.obj
    if source is not None and gate is not None:
        raise FaceGateError("enroll capture: give --source or --gate, not both")
    spec: str | GateCamera = source if source is not None else configured_source(context.settings)
    if gate is not None:
        spec = gate_camera(context.settings, gate)
    options = CaptureOptions(frames, timeout, progress=lambda line: typer.echo(line, err=True))
    _report(lambda: enrol_from_camera(context.runtime, employee_id, name, spec, options, force, accept_unmatched),
            "captured faces")  # fmt: skip


def _echo_people(people: Sequence[PersonSummary], strengths: dict[str, Strength]) -> None:
    typer.echo(f"{'EMPLOYEE_ID':<16} {'NAME':<28} {'ACTIVE':<6} {'TEMPLATES':>9}  {'STRENGTH':<8}  MODELS")
    for p in people:
        active = "yes" if p.active else "no"
        strength = strengths.get(p.employee_id)
        flag = "?" if strength is None else "weak" if strength.weak else "ok"
        line = f"{p.employee_id:<16} {p.name:<28} {active:<6} {p.templates:>9}  {flag:<8}  {', '.join(p.model_ids)}"
        typer.echo(line + (f"  ({'; '.join(strength.reasons)})" if strength and strength.weak else ""))


@enroll_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Everyone enrolled, with their enrolment strength for the configured model.

    "weak" says why: a single template, their own templates disagreeing below the decision threshold, or another
    person close to them (see `enroll show`)."""
    from enrollment.roster import list_people
    from enrollment.strength import configured_strengths

    people = list_people(ctx.obj.database)
    if not people:
        typer.echo("nobody is enrolled yet (facegate enroll add EMPLOYEE_ID --name NAME PHOTOS...)")
        return
    _echo_people(people, configured_strengths(ctx.obj.database, ctx.obj.settings))


@enroll_app.command("audit")
def audit(
    ctx: typer.Context,
    employee_id: Annotated[str | None, typer.Argument(help="Only this person's entries (default: everyone's).")] = None,
) -> None:
    """Who changed the enrolment, when, from where.

    Enrolments, photos added, removals and re-embeddings, with the user (or API account) and host."""
    from enrollment.audit import audit_trail

    entries = audit_trail(ctx.obj.database, employee_id)
    if not entries:
        typer.echo("no enrolment changes recorded")
    for entry in entries:
        who = f"{entry.actor}@{entry.host}"
        typer.echo(
            f"{entry.time:%Y-%m-%d %H:%M:%S} UTC  {who:30} {entry.action:13} {entry.employee_id:12} {entry.detail}"
        )


def _origin(template: TemplateInfo) -> str:
    return f"event {template.event_id}" if template.origin == "event" and template.event_id else template.origin


def _echo_strength(strength: Strength | None) -> None:
    from enrollment.strength import describe

    if strength is None:
        return
    own = "n/a" if strength.own_worst is None else f"worst {strength.own_worst:.3f}, median {strength.own_median:.3f}"
    near = "nobody" if strength.nearest_id is None else f"{strength.nearest_id} at {strength.nearest_score:.3f}"
    typer.echo(f"strength: {describe(strength)}")
    typer.echo(f"  own templates agree: {own}; nearest other person: {near}")


@enroll_app.command("show")
def show(ctx: typer.Context, employee_id: Annotated[str, typer.Argument(help="Employee id.")]) -> None:
    """One person, their templates (with where each face came from) and their enrolment strength."""
    from enrollment.roster import show_person
    from enrollment.strength import configured_strengths

    detail = show_person(ctx.obj.database, employee_id)
    person = detail.person
    typer.echo(f"{person.employee_id}: {person.name} ({'active' if person.active else 'inactive'})")
    typer.echo(f"enrolled {person.created_at:%Y-%m-%d %H:%M} UTC, {person.templates} templates")
    _echo_strength(configured_strengths(ctx.obj.database, ctx.obj.settings).get(person.employee_id))
    typer.echo(f"  {'ID':>6}  {'MODEL':<24} {'QUALITY':>7}  {'CREATED':<16}  {'ORIGIN':<14}  SOURCE")
    for t in detail.templates:
        when = f"{t.created_at:%Y-%m-%d %H:%M}"
        typer.echo(f"  {t.id:>6}  {t.model_id:<24} {t.quality:>7.3f}  {when}  {_origin(t):<14}  {t.source}")


@enroll_app.command("rename")
def rename(
    ctx: typer.Context,
    employee_id: Annotated[str, typer.Argument(help="Employee id.")],
    name: Annotated[str, typer.Argument(help="Their new full name.")],
) -> None:
    """Change a person's name (audited); every gate shows the new name after its next refresh."""
    from enrollment.roster import rename_person

    context: AppContext = ctx.obj
    person = rename_person(context.database, context.gallery, employee_id, name)
    typer.echo(f"{person.employee_id} is now {person.name}")


@enroll_app.command("remove-template")
def remove_template(
    ctx: typer.Context,
    employee_id: Annotated[str, typer.Argument(help="Employee id.")],
    template_id: Annotated[int, typer.Argument(help="The template's id (see `facegate enroll show`).", min=1)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete one of a person's templates (audited); never their last one of the configured model."""
    from enrollment.roster import remove_template as remove_one

    context: AppContext = ctx.obj
    if not yes:
        typer.confirm(f"remove template {template_id} of {employee_id}?", abort=True)
    removed = remove_one(context.database, context.gallery, employee_id, template_id)
    typer.echo(f"removed template {removed.id} of {employee_id} ({_origin(removed)}, {removed.source})")


@enroll_app.command("remove")
def remove(
    ctx: typer.Context,
    employee_id: Annotated[str, typer.Argument(help="Employee id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a person and their templates.

    Their access events stay, with the employee id; the faces kept with those events are deleted."""
    from enrollment.roster import remove_person, show_person

    context: AppContext = ctx.obj
    person = show_person(context.database, employee_id).person
    if not yes:
        typer.confirm(f"remove {person.employee_id} ({person.name}) and {person.templates} templates?", abort=True)
    removed = remove_person(context.database, context.gallery, employee_id)
    typer.echo(f"removed {removed.employee_id} ({removed.name}): {removed.templates} templates")


@enroll_app.command("deactivate")
def deactivate(ctx: typer.Context, employee_id: Annotated[str, typer.Argument(help="Employee id.")]) -> None:
    """Stop letting a person in, at every gate.

    Their templates are kept; `facegate enroll reactivate` undoes it."""
    from enrollment.roster import set_active

    context: AppContext = ctx.obj
    person = set_active(context.database, context.gallery, employee_id, False)
    typer.echo(f"{person.employee_id} ({person.name}) deactivated: no gate lets them in")


@enroll_app.command("reactivate")
def reactivate(ctx: typer.Context, employee_id: Annotated[str, typer.Argument(help="Employee id.")]) -> None:
    """Let a deactivated person in again."""
    from enrollment.roster import set_active

    context: AppContext = ctx.obj
    person = set_active(context.database, context.gallery, employee_id, True)
    typer.echo(f"{person.employee_id} ({person.name}) active again")


@enroll_app.command("reembed")
def reembed(ctx: typer.Context) -> None:
    """Re-embed everyone for the configured model.

    After a model change: templates are computed from the stored face crops, without the photos; the old
    model's templates are kept."""
    from enrollment.reembed import reembed_all

    context: AppContext = ctx.obj
    result = reembed_all(context.database, context.gallery, context.embedder)
    typer.echo(
        f"model {result.model_id}: {result.added} templates added, {result.already} photos had one"
        + (f", {result.without_crop} without a stored crop (enroll them again)" if result.without_crop else "")
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(enroll_app, name="enroll")
