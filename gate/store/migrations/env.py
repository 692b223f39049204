"""Alembic environment: migrate the connection gate.store.database hands over, or the URL of alembic.ini / -x url=;
the target is gate.store.schema's one metadata (every table)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from gate.store.schema import Base

config = context.config


def run(connection: Connection) -> None:
    # Batch mode lets later revisions alter SQLite tables (it recreates them under the hood).
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as own_connection:
        run(own_connection)
        own_connection.commit()


run_online()
