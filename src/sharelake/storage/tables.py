"""The schema. Times are integer epoch milliseconds (UTC); JSON documents are JSON text."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from sharelake.storage.types import JSONText

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

kv = Table(
    "kv",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text),
    Column("org", String(255), nullable=False),
    Column("verified_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("role", String(32), nullable=False, server_default=text("'member'")),
)

apps = Table(
    "apps",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("scope", Text, nullable=False),
    Column("user_id", Integer, nullable=False, index=True),
    Column("app_id", String(36), index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
    Column("last_ip", String(64)),
    Column("label", String(100)),  # the user's name for it, given at creation
    Column("prefix", String(8)),  # the secret's first characters, to tell tokens apart (migration 0007)
)

verifications = Table(
    "verifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("purpose", String(16), nullable=False),
    Column("email", String(254), nullable=False, index=True),
    Column("org", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger),
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_auth_failures_key_at", "key", "at"),
)

records = Table(
    "records",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("rec_type", String(255), nullable=False),
    Column("owner_user", String(254), nullable=False),
    Column("owner_org", String(255), nullable=False),
    Column("owner_app", String(36)),
    Column("owners", JSONText, nullable=False),
    Column("data", JSONText, nullable=False),
    Column("tags", JSONText, nullable=False),
    Column("name", Text, nullable=False),
    Column("desc", Text, nullable=False),
    Column("checksum", String(80), nullable=False),
    Column("tstamp", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("creator", String(254), nullable=False),
    Column("updater", String(254), nullable=False),
    Column("token_id", String(36)),
    Column("remote_ip", String(64)),
    # Normalised uplink, filled at ingest when the body is a known network-server format.
    Column("network", String(32)),
    Column("dev_eui", String(16)),
    Column("f_port", Integer),
    Column("f_cnt", BigInteger),
    Column("received_at", BigInteger),
    Column("frame_key", String(64)),
    Column("uplink", JSONText),
    Index("ix_records_owner_type_time", "owner_user", "rec_type", "tstamp", "id"),
    Index(
        "ix_records_dev_eui_received",
        "dev_eui",
        "received_at",
        sqlite_where=text("dev_eui IS NOT NULL"),
        postgresql_where=text("dev_eui IS NOT NULL"),
    ),
    Index(
        "ix_records_frame_key",  # the key first: a batch's `frame_key IN (…)` is one probe per key
        "frame_key",
        "owner_user",
        "rec_type",
        sqlite_where=text("frame_key IS NOT NULL"),
        postgresql_where=text("frame_key IS NOT NULL"),
    ),
)

record_tags = Table(
    "record_tags",
    metadata,
    Column("record_id", String(24), primary_key=True),
    Column("tag", String(255), primary_key=True),
    Column("rec_type", String(255), nullable=False),
    Index("ix_record_tags_type_tag", "rec_type", "tag", "record_id"),
)

record_owners = Table(
    "record_owners",
    metadata,
    # Co-owners of records written under a rule's Write grant (the recType's owner sees them).
    Column("record_id", String(24), primary_key=True),
    Column("owner_user", String(254), primary_key=True),
    Column("rec_type", String(255), nullable=False),
    Index("ix_record_owners_owner_type", "owner_user", "rec_type", "record_id"),
)

record_counts = Table(
    "record_counts",
    metadata,
    # How many records each owner has of each recType, kept in the writing transaction
    # (`storage.records.counts`). A writer adds to its own `shard` (the process's), so two processes
    # ingesting one recType never wait on each other's counter row; a count is the sum of the shards.
    Column("owner_user", String(254), primary_key=True),
    Column("rec_type", String(255), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False),
)

documents = Table(
    "documents",
    metadata,
    # Microshare's other documents: rules, robots, device clusters, views (`kind`).
    Column("id", String(24), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("rec_type", String(255), nullable=False),
    Column("owner_user", String(254), nullable=False),
    Column("owner_org", String(255), nullable=False),
    Column("owner_app", String(36)),
    Column("name", Text, nullable=False),
    Column("desc", Text, nullable=False),
    Column("data", JSONText, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("creator", String(254), nullable=False),
    Column("updater", String(254), nullable=False),
    Index("ix_documents_kind_owner_type", "kind", "owner_user", "rec_type"),
    Index("ix_documents_kind_type", "kind", "rec_type"),
)

rules = Table(
    "rules",
    metadata,
    # The matchers of each rule document, as columns, so the rules that may concern a caller are
    # found with an index instead of parsing every rule's JSON.
    Column("id", String(24), primary_key=True),
    Column("author", String(254), nullable=False),
    Column("author_org", String(255), nullable=False),
    Column("rec_type", String(255), nullable=False),
    Column("resource_id", String(24), nullable=False),
    Column("operations", String(80), nullable=False),  # ",Read,Query," — delimited for LIKE
    Column("owner_user", String(254), nullable=False),
    Column("owner_org", String(255), nullable=False),
    Column("owner_app", String(64), nullable=False),
    Column("calling_user", String(254), nullable=False),
    Column("calling_org", String(255), nullable=False),
    Column("calling_app", String(64), nullable=False),
    Column("calling_role", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Index("ix_rules_calling_user", "calling_user", "active"),
    Index("ix_rules_author", "author"),
)

outbox = Table(
    "outbox",
    metadata,
    # Work for the worker, written in the same transaction as the record it is about. `consumer`
    # names one cluster or robot (a replay); NULL means every consumer of the recType.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("record_id", String(24), nullable=False),
    Column("rec_type", String(255), nullable=False),
    Column("consumer", String(24)),
    Column("replace", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", BigInteger, nullable=False),
    Column("available_at", BigInteger, nullable=False),
    Column("claimed_until", BigInteger),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("failed_at", BigInteger),
    Index("ix_outbox_available", "available_at", "id"),
)

robot_logs = Table(
    "robot_logs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("robot_id", String(24), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("level", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("record_id", String(24)),
    Index("ix_robot_logs_robot_at", "robot_id", "at"),
)

robot_bindings = Table(
    "robot_bindings",
    metadata,
    # What each robot's last successful run left in its global `bindings` (a JSON object), for the next.
    Column("robot_id", String(24), primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated", BigInteger, nullable=False),
)

stream_queue = Table(
    "stream_queue",
    metadata,
    # What an outbound stream has still to deliver: one row per (stream, record), queued in the record's
    # writing transaction, deleted once the target acknowledged it; `dead_at` parks a record that failed
    # for good (the owner sees and replays it). Delivered in `id` order, one stream by one worker at a time.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("stream_id", String(24), nullable=False),
    Column("record_id", String(24), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("available_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("dead_at", BigInteger),
    Index("ix_stream_queue_stream", "stream_id", "id"),
)

stream_state = Table(
    "stream_state",
    metadata,
    # Each stream's delivery: the lease of the worker delivering it, and what the owner is shown.
    Column("stream_id", String(24), primary_key=True),
    Column("claimed_until", BigInteger),
    Column("delivered", BigInteger, nullable=False, server_default=text("0")),
    Column("failed", BigInteger, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("last_error_at", BigInteger),
    Column("last_delivered_at", BigInteger),
)

devices = Table(
    "devices",
    metadata,
    # The device inventory (`storage.inventory`): what the records of one devEui in one recType of one
    # owner said, moved by the transaction that writes them.
    Column("owner_user", String(254), primary_key=True),
    Column("rec_type", String(255), primary_key=True),
    Column("dev_eui", String(16), primary_key=True),
    Column("owner_org", String(255), nullable=False),
    Column("owner_app", String(36)),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("last_fcnt", BigInteger),
    Column("frames", BigInteger, nullable=False, server_default=text("0")),
    Column("duplicates", BigInteger, nullable=False, server_default=text("0")),
    Column("last_rssi", Float),
    Column("last_snr", Float),
    Column("interval_ms", BigInteger),
    Column("last", Text),  # JSON: the last decoded values
    Column("last_at", BigInteger),
    Column("tags", Text, nullable=False, server_default=text("'[]'")),  # JSON: the last record's tags
    Index("ix_devices_dev_eui", "dev_eui"),
)

device_gateways = Table(
    "device_gateways",
    metadata,
    # Which gateways heard each device of the inventory: when last, how well, how often.
    Column("owner_user", String(254), primary_key=True),
    Column("rec_type", String(255), primary_key=True),
    Column("dev_eui", String(16), primary_key=True),
    Column("gateway", String(255), primary_key=True),
    Column("last_seen", BigInteger, nullable=False),
    Column("rssi", Float),
    Column("snr", Float),
    Column("frames", BigInteger, nullable=False, server_default=text("0")),
)

alert_devices = Table(
    "alert_devices",
    metadata,
    # What an alert knows of one device (devEui, "" for records without one): when it was last heard,
    # since when its condition holds (an alert's `for`), and its open incident. Moved by the worker.
    Column("alert_id", String(24), primary_key=True),
    Column("dev_eui", String(32), primary_key=True),
    Column("last_seen", BigInteger, nullable=False),
    Column("pending_since", BigInteger),
    Column("pending_last", Text),  # JSON: {value, recordId, at} of the last record of the `for` wait
    Column("incident_id", String(24)),
    Index("ix_alert_devices_dev_eui", "dev_eui"),
)

incidents = Table(
    "incidents",
    metadata,
    # An alert's incident on one device: opened by a record (or a silence), bundling the records that
    # trip it while open (`count`), resolved when the condition clears. Kept until the alert is deleted.
    Column("id", String(24), primary_key=True),
    Column("alert_id", String(24), nullable=False),
    Column("owner_user", String(254), nullable=False),
    Column("dev_eui", String(32)),
    Column("rec_type", String(255), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger),
    Column("count", BigInteger, nullable=False, server_default=text("1")),
    Column("last", Text, nullable=False),  # JSON: {value, recordId, at} of the last record that tripped it
    Column("notified_at", BigInteger),  # the last notification queued for it (the throttle)
    Index("ix_incidents_owner_user_id", "owner_user", "id"),
    Index("ix_incidents_alert_id_id", "alert_id", "id"),
)

alert_notices = Table(
    "alert_notices",
    metadata,
    # Notifications to send: one row per (message, channel), queued with the change that caused it,
    # deleted once delivered or given up; `available_at` is its retry time (or a worker's lease).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("alert_id", String(24), nullable=False),
    Column("incident_id", String(24), nullable=False),
    Column("channel", Text, nullable=False),  # JSON: the channel as it was when queued
    Column("body", Text, nullable=False),  # JSON: the message
    Column("created_at", BigInteger, nullable=False),
    Column("available_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Index("ix_alert_notices_available_at", "available_at"),
    Index("ix_alert_notices_alert_id", "alert_id"),
)

alert_state = Table(
    "alert_state",
    metadata,
    # Each alert's delivery counters, shown on the alert, and the spec its device states were kept for.
    Column("alert_id", String(24), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("sent", BigInteger, nullable=False, server_default=text("0")),
    Column("failed", BigInteger, nullable=False, server_default=text("0")),
    Column("dropped", BigInteger, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("last_error_at", BigInteger),
    Column("last_sent_at", BigInteger),
)

rollup_queue = Table(
    "rollup_queue",
    metadata,
    # New records the worker has yet to fold into the rollups (`storage.rollups`).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("record_id", String(24), nullable=False),
)

rollups = Table(
    "rollups",
    metadata,
    # Per owner, recType, numeric field of `data`, interval (hour | day), bucket start and devEui ("" for
    # records without one): the bucket's count, sum, min, max, and its first and last values in time.
    Column("owner_user", String(254), primary_key=True),
    Column("rec_type", String(255), primary_key=True),
    Column("field", String(255), primary_key=True),
    Column("interval", String(8), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("dev_eui", String(16), primary_key=True),
    Column("owner_org", String(255), nullable=False),
    Column("owner_app", String(36)),
    Column("count", BigInteger, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("first_at", BigInteger, nullable=False),
    Column("first", Float, nullable=False),
    Column("last_at", BigInteger, nullable=False),
    Column("last", Float, nullable=False),
)

robot_schedule = Table(
    "robot_schedule",
    metadata,
    # When each active scheduled robot runs next; claimed with a lease like the outbox.
    Column("robot_id", String(24), primary_key=True),
    Column("next_run_at", BigInteger, nullable=False),
    Column("claimed_until", BigInteger),
    Column("delay_ms", BigInteger, nullable=False),
    Column("interval_ms", BigInteger, nullable=False),
    Index("ix_robot_schedule_next_run_at", "next_run_at"),
)

audit = Table(
    "audit",
    metadata,
    # Who did what to an account, readable by that account only.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account", String(254), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(254)),
    Column("action", String(40), nullable=False),
    Column("target", String(255)),
    Column("detail", JSONText),
    Column("ip", String(64)),
    Index("ix_audit_account_id", "account", "id"),
)

retention = Table(
    "retention",
    metadata,
    Column("owner_user", String(254), primary_key=True),
    Column("rec_type", String(255), primary_key=True),
    Column("days", Integer, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("rollup_days", Integer),  # None: the recType's rollups are kept for ever
)

cluster_health = Table(
    "cluster_health",
    metadata,
    # One row per device cluster: what its decodes came to (DESIGN §11 `health`), updated in the
    # transaction that writes each unpacked record. `streak`: decodes in a row that hit a limit, counted
    # only for the cluster's version `since` its last save (older decodes still in flight do not re-pause it).
    Column("cluster_id", String(24), primary_key=True),
    Column("decoded", BigInteger, nullable=False, server_default=text("0")),
    Column("errored", BigInteger, nullable=False, server_default=text("0")),
    Column("timed_out", BigInteger, nullable=False, server_default=text("0")),
    Column("streak", Integer, nullable=False, server_default=text("0")),
    Column("streak_limit", String(100)),  # which limit the streak hit: "time limit (100 ms)"
    Column("since", BigInteger, nullable=False, server_default=text("0")),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("paused_reason", Text),
    Column("last_error", Text),
    Column("last_payload_hex", Text),
    Column("last_error_at", BigInteger),
)
