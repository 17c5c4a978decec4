"""The worker: an outbox written with the records, and robot logs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.String(24), nullable=False),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("consumer", sa.String(24)),
        sa.Column("replace", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("available_at", sa.BigInteger, nullable=False),
        sa.Column("claimed_until", sa.BigInteger),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("failed_at", sa.BigInteger),
    )
    op.create_index("ix_outbox_available", "outbox", ["available_at", "id"])
    op.create_table(
        "robot_logs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("robot_id", sa.String(24), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("record_id", sa.String(24)),
    )
    op.create_index("ix_robot_logs_robot_at", "robot_logs", ["robot_id", "at"])


def downgrade() -> None:
    op.drop_table("robot_logs")
    op.drop_table("outbox")
