"""`facegate admin` and `facegate token`: who may use `facegate serve` (accounts for people, tokens for machines)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from facegate.context import AppContext
from gate.errors import FaceGateError

if TYPE_CHECKING:
    from gate.store.database import Database
    from service.accounts import CredentialInfo

admin_app = typer.Typer(help="Accounts that sign in to facegate serve: add, list, disable.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for machines: add, list, revoke.", no_args_is_help=True)

RoleOption = Annotated[str, typer.Option("--role", help="admin (may enrol and remove) or viewer (reads only).")]


def _echo_credentials(rows: Sequence[CredentialInfo], what: str) -> None:
    if not rows:
        typer.echo(f"no {what} yet")
        return
    typer.echo(f"{'NAME':<24} {'ROLE':<7} {'STATE':<9} {'CREATED (UTC)':<17} LAST USED")
    for row in rows:
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "-"
        typer.echo(f"{row.name:<24} {row.role:<7} {row.state:<9} {row.created_at:%Y-%m-%d %H:%M} {used}")


def read_password(from_stdin: bool) -> str:
    """The new account's password: the first line of standard input (checked by add_account), or asked for with
    its rule said first; one too short, or not repeated the same, is asked for again."""
    from service.accounts import MIN_PASSWORD_LENGTH

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise FaceGateError("--password-stdin: no password on standard input")
        return password
    typer.echo(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    while True:
        password = typer.prompt("password", hide_input=True)
        if len(password) < MIN_PASSWORD_LENGTH:
            typer.echo(f"too short ({len(password)} characters): at least {MIN_PASSWORD_LENGTH}; try again")
        elif typer.prompt("the same again", hide_input=True) != password:
            typer.echo("the two differ; try again")
        else:
            return password


def add_admin(database: Database, name: str, role: str, password: str) -> str:
    """Create account `name` with `password` (read by read_password): the line that says so. The one way both
    `facegate admin add` and `facegate init` (the first admin) make an account."""
    from service.accounts import add_account

    add_account(database, name, password, role)
    return f"account {name} added ({role})"


@admin_app.command("add")
def admin_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The account's sign-in name.")],
    role: RoleOption = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
    ] = False,
) -> None:
    """Create an account that signs in to the page.

    The password (at least 10 characters) is asked twice, or read from stdin, and stored as an argon2 hash."""
    context: AppContext = ctx.obj
    database = context.database  # a missing config refused before the password is asked for
    typer.echo(add_admin(database, name, role, read_password(password_stdin)))


@admin_app.command("list")
def admin_list(ctx: typer.Context) -> None:
    """Every account, its role and whether it is disabled."""
    from service.accounts import list_accounts

    _echo_credentials(list_accounts(ctx.obj.database), "accounts (facegate admin add NAME)")


@admin_app.command("disable")
def admin_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The account's name.")]) -> None:
    """Stop an account: it cannot sign in, and its sessions end."""
    from service.accounts import disable_account

    disable_account(ctx.obj.database, name)
    typer.echo(f"account {name} disabled")


@token_app.command("add")
def token_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. the machine using it.")],
    role: RoleOption = "viewer",
) -> None:
    """Create an API token and print it, once.

    Only its hash is stored: the token cannot be shown again."""
    from service.accounts import add_token

    token = add_token(ctx.obj.database, name, role)
    typer.echo(f"token {name} ({role}); shown only now, keep it secret:")
    typer.echo(token)


@token_app.command("list")
def token_list(ctx: typer.Context) -> None:
    """Every token, never the token itself.

    With its role, whether it is revoked and when it was last used."""
    from service.accounts import list_tokens

    _echo_credentials(list_tokens(ctx.obj.database), "tokens (facegate token add NAME)")


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    from service.accounts import revoke_token

    revoke_token(ctx.obj.database, name)
    typer.echo(f"token {name} revoked")


def register(app: typer.Typer) -> None:
    """Add `facegate admin` and `facegate token` to the main app."""
    app.add_typer(admin_app, name="admin")
    app.add_typer(token_app, name="token")
