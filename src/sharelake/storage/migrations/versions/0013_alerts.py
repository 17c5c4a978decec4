"""Alerts: what each alert knows of each device, its incidents, and the notifications it queued.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_devices",
        sa.Column("alert_id", sa.String(24), nullable=False),
        sa.Column("dev_eui", sa.String(32), nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("pending_since", sa.BigInteger),
        sa.Column("pending_last", sa.Text),
        sa.Column("incident_id", sa.String(24)),
        sa.PrimaryKeyConstraint("alert_id", "dev_eui", name="pk_alert_devices"),
    )
    op.create_index("ix_alert_devices_dev_eui", "alert_devices", ["dev_eui"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("alert_id", sa.String(24), nullable=False),
        sa.Column("owner_user", sa.String(254), nullable=False),
        sa.Column("dev_eui", sa.String(32)),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("opened_at", sa.BigInteger, nullable=False),
        sa.Column("resolved_at", sa.BigInteger),
        sa.Column("count", sa.BigInteger, nullable=False, server_default=sa.text("1")),
        sa.Column("last", sa.Text, nullable=False),
        sa.Column("notified_at", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_owner_user_id", "incidents", ["owner_user", "id"])
    op.create_index("ix_incidents_alert_id_id", "incidents", ["alert_id", "id"])
    op.create_table(
        "alert_notices",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False, autoincrement=True
        ),
        sa.Column("alert_id", sa.String(24), nullable=False),
        sa.Column("incident_id", sa.String(24), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("available_at", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("id", name="pk_alert_notices"),
    )
    op.create_index("ix_alert_notices_available_at", "alert_notices", ["available_at"])
    op.create_index("ix_alert_notices_alert_id", "alert_notices", ["alert_id"])
    op.create_table(
        "alert_state",
        sa.Column("alert_id", sa.String(24), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("sent", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("failed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("dropped", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.BigInteger),
        sa.Column("last_sent_at", sa.BigInteger),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alert_state"),
    )


def downgrade() -> None:
    op.drop_table("alert_state")
    op.drop_index("ix_alert_notices_alert_id", table_name="alert_notices")
    op.drop_index("ix_alert_notices_available_at", table_name="alert_notices")
    op.drop_table("alert_notices")
    op.drop_index("ix_incidents_alert_id_id", table_name="incidents")
    op.drop_index("ix_incidents_owner_user_id", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_alert_devices_dev_eui", table_name="alert_devices")
    op.drop_table("alert_devices")
