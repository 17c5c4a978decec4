"""Robots: when each scheduled robot runs next.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "robot_schedule",
        sa.Column("robot_id", sa.String(24), primary_key=True),
        sa.Column("next_run_at", sa.BigInteger, nullable=False),
        sa.Column("claimed_until", sa.BigInteger),
        sa.Column("delay_ms", sa.BigInteger, nullable=False),
        sa.Column("interval_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_robot_schedule_next_run_at", "robot_schedule", ["next_run_at"])


def downgrade() -> None:
    op.drop_table("robot_schedule")
