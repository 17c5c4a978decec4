"""Robots' `bindings`: what a robot's last successful run left for its next run.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "robot_bindings",
        sa.Column("robot_id", sa.String(24), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("robot_id", name="pk_robot_bindings"),
    )


def downgrade() -> None:
    op.drop_table("robot_bindings")
