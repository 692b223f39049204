"""Where each template came from: a photo, a capture at the gate's camera, or a door event an admin confirmed
(with that event's id, so the confirmation can be undone); and a recent unmatched face an admin dismissed from the
unknown visitors no longer shows there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TEMPLATE_ORIGIN_CHECK = "origin IN ('photo', 'capture', 'event')"


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        # every template written before this revision came from a photo (or a capture, audited as such)
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="photo"))
        batch.add_column(sa.Column("event_id", sa.Integer(), nullable=True))
        batch.create_check_constraint("ck_templates_origin", TEMPLATE_ORIGIN_CHECK)
        batch.create_index("ix_templates_event_id", ["event_id"])
    with op.batch_alter_table("access_events") as batch:
        batch.add_column(sa.Column("dismissed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_events") as batch:
        batch.drop_column("dismissed_at")
    with op.batch_alter_table("templates") as batch:
        batch.drop_index("ix_templates_event_id")
        batch.drop_constraint("ck_templates_origin", type_="check")
        batch.drop_column("event_id")
        batch.drop_column("origin")
