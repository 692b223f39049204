"""The `facegate` command: thin subcommands over the functions of gate/, enrollment/, training/, evaluation/ and
service/."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from facegate.commands import (
    admin,
    backup,
    cameras,
    card,
    doctor,
    enroll,
    evaluate,
    evaluate_gate,
    evaluate_liveness,
    events,
    gate,
    gates,
    init,
    keys,
    model,
    serve,
    study,
    train,
)
from facegate.context import AppContext
from gate.config import CONFIG_NAME, config_path, read_settings
from gate.errors import FaceGateError

# Help is plain text, not Rich markup: Rich would take `[service]`, `[[cameras]]` or `[default: ...]` in a help
# string for a style tag and print nothing in its place. The sub-apps (enroll, model, ...) inherit this.
app = typer.Typer(
    help="FaceGate: a face-recognition access gate. MTCNN finds and aligns each face, an embedding network "
    "(by default dlib's face-recognition ResNet, run in PyTorch) describes it, FAISS finds the enrolled person, "
    "and the door opens when several frames agree on them above a threshold calibrated on people never seen.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file. Without it: $FACEGATE_CONFIG, else the first that exists of ./config.toml, the "
            "user's config folder (~/.config/facegate/config.toml on Linux) and /etc/facegate/config.toml. "
            "Commands that keep site data in its database (run, serve, enroll, admin, events, ...) refuse to start "
            "without one: `facegate init DIR` writes one.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log everything at DEBUG, libraries too.")] = False,
) -> None:
    if ctx.invoked_subcommand == "init":  # it makes the config: none need exist, nor the one named be readable
        return
    path = config_path(config)
    context = AppContext(read_settings(path), path or Path(CONFIG_NAME), config_found=path is not None)
    context.configure_logging(verbose)
    ctx.obj = context


for module in (
    enroll,
    gate,
    cameras,
    gates,
    events,
    evaluate,
    evaluate_gate,
    evaluate_liveness,
    model,
    init,
    keys,
    admin,
    card,
    serve,
    study,
    train,
    doctor,
    backup,
):
    module.register(app)


PRIVATE_UMASK = 0o077  # what a command creates (database, index, crops, videos, reports) only its owner can read


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2. Everything the command
    creates is owner-only: it holds face data (embeddings, crops, frames) or decisions about people."""
    os.umask(PRIVATE_UMASK)
    try:
        app(standalone_mode=True)
    except FaceGateError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
