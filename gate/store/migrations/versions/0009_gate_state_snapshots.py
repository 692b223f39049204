"""A gate's heartbeat says whether it stopped cleanly ("running" or "stopped"; a running gate gone silent reads as
lost) and what its camera is doing; gate_snapshots keeps each gate's latest annotated frame when [snapshot] is on
(one row per gate, overwritten, sealed like templates when a key is configured).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GATE_STATE_CHECK = "state IN ('running', 'stopped')"


def upgrade() -> None:
    with op.batch_alter_table("gate_status") as batch:
        # a heartbeat written before this revision came from a running gate: stale, it reads as lost
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="running"))
        batch.add_column(sa.Column("camera", sa.String(16), nullable=True))
        batch.create_check_constraint("ck_gate_status_state", GATE_STATE_CHECK)
    op.create_table(
        "gate_snapshots",
        sa.Column("gate_id", sa.String(100), primary_key=True),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gate_snapshots")
    with op.batch_alter_table("gate_status") as batch:
        batch.drop_constraint("ck_gate_status_state", type_="check")
        batch.drop_column("camera")
        batch.drop_column("state")
