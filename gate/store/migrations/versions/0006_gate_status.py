"""Each gate's heartbeat: when it was last seen, how fast it runs, its last decision (a gate not seen for a while
is offline).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_status",
        sa.Column("gate_id", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("frames", sa.BigInteger(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("last_decision", sa.String(16), nullable=True),
        sa.Column("last_decision_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("gate_status")
