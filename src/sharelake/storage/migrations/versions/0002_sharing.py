"""Sharing: rules and the other Microshare documents, co-owners, user roles.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sharelake.storage.types import JSONText

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("role", sa.String(32), nullable=False, server_default=sa.text("'member'")))
    op.create_table(
        "record_owners",
        sa.Column("record_id", sa.String(24), primary_key=True),
        sa.Column("owner_user", sa.String(254), primary_key=True),
        sa.Column("rec_type", sa.String(255), nullable=False),
    )
    op.create_index("ix_record_owners_owner_type", "record_owners", ["owner_user", "rec_type", "record_id"])
    op.create_table(
        "documents",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("owner_user", sa.String(254), nullable=False),
        sa.Column("owner_org", sa.String(255), nullable=False),
        sa.Column("owner_app", sa.String(36)),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("desc", sa.Text, nullable=False),
        sa.Column("data", JSONText, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("creator", sa.String(254), nullable=False),
        sa.Column("updater", sa.String(254), nullable=False),
    )
    op.create_index("ix_documents_kind_owner_type", "documents", ["kind", "owner_user", "rec_type"])
    op.create_index("ix_documents_kind_type", "documents", ["kind", "rec_type"])
    op.create_table(
        "rules",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("author", sa.String(254), nullable=False),
        sa.Column("author_org", sa.String(255), nullable=False),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("resource_id", sa.String(24), nullable=False),
        sa.Column("operations", sa.String(80), nullable=False),
        sa.Column("owner_user", sa.String(254), nullable=False),
        sa.Column("owner_org", sa.String(255), nullable=False),
        sa.Column("owner_app", sa.String(64), nullable=False),
        sa.Column("calling_user", sa.String(254), nullable=False),
        sa.Column("calling_org", sa.String(255), nullable=False),
        sa.Column("calling_app", sa.String(64), nullable=False),
        sa.Column("calling_role", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_index("ix_rules_calling_user", "rules", ["calling_user", "active"])
    op.create_index("ix_rules_author", "rules", ["author"])


def downgrade() -> None:
    for table in ("rules", "documents", "record_owners"):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("role")
