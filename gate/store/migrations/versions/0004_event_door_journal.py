"""Access events carry a unique id (journal replays are idempotent), what the door reported and, with card +
face, the claimed identity.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_events") as batch:
        batch.add_column(sa.Column("event_uid", sa.String(32), nullable=True))
        batch.add_column(sa.Column("door", sa.String(16), nullable=True))
        batch.add_column(sa.Column("claimed_id", sa.String(64), nullable=True))
        batch.create_index("ix_access_events_event_uid", ["event_uid"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("access_events") as batch:
        batch.drop_index("ix_access_events_event_uid")
        batch.drop_column("claimed_id")
        batch.drop_column("door")
        batch.drop_column("event_uid")
