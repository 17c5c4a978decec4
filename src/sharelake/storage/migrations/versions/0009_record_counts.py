"""Per (owner, recType) record counters, so `totalCount` needs no scan.

Filled from the records already stored (one pass, at upgrade); from then on every insert and delete
keeps them in its own transaction.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_counts",
        sa.Column("owner_user", sa.String(254), nullable=False),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("owner_user", "rec_type", "shard", name="pk_record_counts"),
    )
    op.execute(
        "INSERT INTO record_counts (owner_user, rec_type, shard, n) "
        "SELECT owner_user, rec_type, 0, COUNT(*) FROM records GROUP BY owner_user, rec_type"
    )


def downgrade() -> None:
    op.drop_table("record_counts")
