"""`facegate card`: the badge reader's side of card + face: make a reader's secret, send a signed claim."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from facegate.context import AppContext
from gate.config import Settings, camera_settings
from gate.errors import FaceGateError

card_app = typer.Typer(help="Card + face: reader secrets and signed claims.", no_args_is_help=True)
SEND_TIMEOUT_S = 5.0


@card_app.command("secret")
def secret(
    path: Annotated[Path, typer.Argument(help="The secret file to create (never overwritten).")],
    reader: Annotated[str, typer.Option("--reader", help="The reader's id, for the config lines printed.")] = "lobby",
) -> None:
    """Write a fresh badge-reader secret to a new file.

    The file is owner-only and never overwritten; prints the config lines that use it."""
    from gate.door.claims import write_secret_file

    write_secret_file(path)
    typer.echo(f"wrote a new reader secret to {path} (owner-only). Add to config.toml, under [card]:\n")
    typer.echo(f"[[card.readers]]\nid = {json.dumps(reader)}\nsecret_file = {json.dumps(str(path.resolve()))}\n")
    typer.echo("and give the badge reader the same secret: it signs each claim with it (docs/guide/card-and-face.md).")


def _gate(settings: Settings, gate_id: str | None) -> Settings:
    """The settings of the gate `gate_id` (one of [[cameras]]), or of the only gate."""
    cameras = camera_settings(settings)
    if gate_id is None:
        return cameras[0]
    found = next((camera for camera in cameras if camera.camera.gate_id == gate_id), None)
    if found is None:
        known = ", ".join(camera.camera.gate_id for camera in cameras)
        raise FaceGateError(f"no gate {gate_id!r} in the config (gates: {known})")
    return found


def _post(settings: Settings, body: bytes) -> str:
    """POST the claim to the gate's HTTP listener; its answer, or a FaceGateError with the gate's refusal."""
    host, port = settings.card.listen.rsplit(":", 1)
    host = "127.0.0.1" if host == "0.0.0.0" else host
    request = urllib.request.Request(f"http://{host}:{port}/claim", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through $HTTP_PROXY
        with direct.open(request, timeout=SEND_TIMEOUT_S) as response:
            return response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        answer = error.read().decode("utf-8", "replace")
        raise FaceGateError(f"the gate refused the claim ({error.code}): {answer}") from None
    except OSError as error:
        raise FaceGateError(f"no gate answers at {host}:{port} ({error})") from None


@card_app.command("claim")
def claim(
    ctx: typer.Context,
    employee: Annotated[str, typer.Argument(help="The employee id the badge names.")],
    reader: Annotated[str, typer.Option("--reader", help="Sign as this [[card.readers]] id (its secret).")],
    gate_id: Annotated[str | None, typer.Option("--gate-id", help="Which gate of [[cameras]].")] = None,
    print_only: Annotated[bool, typer.Option("--print", help="Print the signed claim; send nothing.")] = False,
    username: Annotated[str | None, typer.Option(help="mqtt: the reader's broker user (else [mqtt])")] = None,
    password_env: Annotated[str | None, typer.Option(help="mqtt: variable holding that user's password")] = None,
) -> None:
    """Sign a claim as a badge reader would, and send it.

    Sent to the gate as [card] claims says (http or mqtt), or printed with --print."""
    from gate.door.claims import read_secret
    from gate.store.identifiers import employee_id

    context: AppContext = ctx.obj
    settings = _gate(context.settings, gate_id)
    body = read_secret(settings, reader).sign(settings.camera.gate_id, employee_id(employee))
    if print_only:
        typer.echo(body.decode("utf-8"))
        return
    if settings.card.claims == "http":
        typer.echo(_post(settings, body))
    elif settings.card.claims == "mqtt":
        from gate.door.mqtt_claims import send_claim

        overrides = {"username": username, "password_env": password_env}
        mqtt = settings.mqtt.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        send_claim(mqtt, settings.camera.gate_id, body, SEND_TIMEOUT_S)
        typer.echo(f"claim of {employee_id(employee)} published to the broker {mqtt.host}:{mqtt.port}")
    else:
        raise FaceGateError(f"card.claims = {settings.card.claims!r}: nothing to send to (--print prints the claim)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(card_app, name="card")
