"""Tokens carry a label and the first characters of their secret.

So a user can tell which token a network server uses before revoking it. Both are nullable:
tokens issued before this revision have neither, and their secrets are not kept to derive one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("label", sa.String(100)))
        batch.add_column(sa.Column("prefix", sa.String(8)))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("prefix")
        batch.drop_column("label")
