"""Device clusters' health: decode counts, the last error, and the pause after repeated limit hits.

One row per cluster, made on its first save or first decode; existing clusters start at zero.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    zero = sa.text("0")
    op.create_table(
        "cluster_health",
        sa.Column("cluster_id", sa.String(24), primary_key=True),
        sa.Column("decoded", sa.BigInteger, nullable=False, server_default=zero),
        sa.Column("errored", sa.BigInteger, nullable=False, server_default=zero),
        sa.Column("timed_out", sa.BigInteger, nullable=False, server_default=zero),
        sa.Column("streak", sa.Integer, nullable=False, server_default=zero),
        sa.Column("streak_limit", sa.String(100)),
        sa.Column("since", sa.BigInteger, nullable=False, server_default=zero),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("paused_reason", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("last_payload_hex", sa.Text),
        sa.Column("last_error_at", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("cluster_health")
