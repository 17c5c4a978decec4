"""Accounts, API keys, tokens, records and their tags.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sharelake.storage.types import JSONText

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kv",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text),
        sa.Column("org", sa.String(255), nullable=False),
        sa.Column("verified_at", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.create_table(
        "apps",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False, index=True),
        sa.Column("app_id", sa.String(36), index=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("revoked_at", sa.BigInteger),
        sa.Column("last_used_at", sa.BigInteger),
        sa.Column("last_ip", sa.String(64)),
    )
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("email", sa.String(254), nullable=False, index=True),
        sa.Column("org", sa.String(255)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger),
    )
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_auth_failures_key_at", "auth_failures", ["key", "at"])
    op.create_table(
        "records",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("rec_type", sa.String(255), nullable=False),
        sa.Column("owner_user", sa.String(254), nullable=False),
        sa.Column("owner_org", sa.String(255), nullable=False),
        sa.Column("owner_app", sa.String(36)),
        sa.Column("owners", JSONText, nullable=False),
        sa.Column("data", JSONText, nullable=False),
        sa.Column("tags", JSONText, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("desc", sa.Text, nullable=False),
        sa.Column("checksum", sa.String(80), nullable=False),
        sa.Column("tstamp", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("creator", sa.String(254), nullable=False),
        sa.Column("updater", sa.String(254), nullable=False),
        sa.Column("token_id", sa.String(36)),
        sa.Column("remote_ip", sa.String(64)),
        sa.Column("network", sa.String(32)),
        sa.Column("dev_eui", sa.String(16)),
        sa.Column("f_port", sa.Integer),
        sa.Column("f_cnt", sa.BigInteger),
        sa.Column("received_at", sa.BigInteger),
        sa.Column("frame_key", sa.String(64)),
        sa.Column("uplink", JSONText),
    )
    op.create_index("ix_records_owner_type_time", "records", ["owner_user", "rec_type", "tstamp", "id"])
    op.create_index(
        "ix_records_dev_eui_received",
        "records",
        ["dev_eui", "received_at"],
        sqlite_where=sa.text("dev_eui IS NOT NULL"),
        postgresql_where=sa.text("dev_eui IS NOT NULL"),
    )
    op.create_index(
        "ix_records_frame",
        "records",
        ["owner_user", "rec_type", "frame_key"],
        sqlite_where=sa.text("frame_key IS NOT NULL"),
        postgresql_where=sa.text("frame_key IS NOT NULL"),
    )
    op.create_table(
        "record_tags",
        sa.Column("record_id", sa.String(24), primary_key=True),
        sa.Column("tag", sa.String(255), primary_key=True),
        sa.Column("rec_type", sa.String(255), nullable=False),
    )
    op.create_index("ix_record_tags_type_tag", "record_tags", ["rec_type", "tag", "record_id"])


def downgrade() -> None:
    for table in (
        "record_tags",
        "records",
        "auth_failures",
        "verifications",
        "tokens",
        "apps",
        "users",
        "kv",
    ):
        op.drop_table(table)
