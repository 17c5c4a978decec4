"""Outbound streams: each stream's queue of records to deliver, and its delivery state.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_queue",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False, autoincrement=True
        ),
        sa.Column("stream_id", sa.String(24), nullable=False),
        sa.Column("record_id", sa.String(24), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("available_at", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("dead_at", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_stream_queue"),
    )
    op.create_index("ix_stream_queue_stream", "stream_queue", ["stream_id", "id"])
    op.create_table(
        "stream_state",
        sa.Column("stream_id", sa.String(24), nullable=False),
        sa.Column("claimed_until", sa.BigInteger),
        sa.Column("delivered", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("failed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.BigInteger),
        sa.Column("last_delivered_at", sa.BigInteger),
        sa.PrimaryKeyConstraint("stream_id", name="pk_stream_state"),
    )


def downgrade() -> None:
    op.drop_table("stream_state")
    op.drop_index("ix_stream_queue_stream", table_name="stream_queue")
    op.drop_table("stream_queue")
