"""Rollups: hourly and daily count, sum, min, max, first and last per owner, recType, device and
numeric field, the queue of new records the worker folds into them, and how long retention keeps them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_queue",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False, autoincrement=True
        ),
        sa.Column("record_id", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_queue"),
    )
    op.create_table(
        "rollups",
        sa.Column("owner_user", sa.String(254), nullable=False),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("field", sa.String(255), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("dev_eui", sa.String(16), nullable=False),
        sa.Column("owner_org", sa.String(255), nullable=False),
        sa.Column("owner_app", sa.String(36)),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sa.Column("first_at", sa.BigInteger, nullable=False),
        sa.Column("first", sa.Float, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("last", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "owner_user", "rec_type", "field", "interval", "bucket", "dev_eui", name="pk_rollups"
        ),
    )

    # Retention may keep a recType's rollups for a time of their own (by default, for ever).
    op.add_column("retention", sa.Column("rollup_days", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("retention") as batch:
        batch.drop_column("rollup_days")
    op.drop_table("rollups")
    op.drop_table("rollup_queue")
