"""The device inventory: per owner, recType and devEui what its records said, kept at write time.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("owner_user", sa.String(254), nullable=False),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("dev_eui", sa.String(16), nullable=False),
        sa.Column("owner_org", sa.String(255), nullable=False),
        sa.Column("owner_app", sa.String(36)),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("last_fcnt", sa.BigInteger),
        sa.Column("frames", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("duplicates", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("last_rssi", sa.Float),
        sa.Column("last_snr", sa.Float),
        sa.Column("interval_ms", sa.BigInteger),
        sa.Column("last", sa.Text),
        sa.Column("last_at", sa.BigInteger),
        sa.Column("tags", sa.Text, nullable=False, server_default=sa.text("'[]'")),
        sa.PrimaryKeyConstraint("owner_user", "rec_type", "dev_eui", name="pk_devices"),
    )
    op.create_index("ix_devices_dev_eui", "devices", ["dev_eui"])
    op.create_table(
        "device_gateways",
        sa.Column("owner_user", sa.String(254), nullable=False),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("dev_eui", sa.String(16), nullable=False),
        sa.Column("gateway", sa.String(255), nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("rssi", sa.Float),
        sa.Column("snr", sa.Float),
        sa.Column("frames", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("owner_user", "rec_type", "dev_eui", "gateway", name="pk_device_gateways"),
    )


def downgrade() -> None:
    op.drop_table("device_gateways")
    op.drop_index("ix_devices_dev_eui", table_name="devices")
    op.drop_table("devices")
