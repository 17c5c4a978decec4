"""The audit log and per-recType retention.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sharelake.storage.types import JSONText

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("account", sa.String(254), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(254)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("detail", JSONText),
        sa.Column("ip", sa.String(64)),
    )
    op.create_index("ix_audit_account_id", "audit", ["account", "id"])
    op.create_table(
        "retention",
        sa.Column("owner_user", sa.String(254), primary_key=True),
        sa.Column("rec_type", sa.String(255), primary_key=True),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retention")
    op.drop_table("audit")
