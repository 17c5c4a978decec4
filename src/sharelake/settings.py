"""One typed settings object, read from `SHARELAKE_*` environment variables; zero configuration needed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sharelake.outbound.guard import Allow


class Settings(BaseSettings):
    """Every field is documented in docs/configuration.md (a test keeps the two in step)."""

    model_config = SettingsConfigDict(env_prefix="SHARELAKE_", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses to start on insecure settings (no secret key, plain-HTTP public URL).",
    )
    database_url: str = Field(
        "sqlite:///./sharelake.db",
        description="SQLAlchemy URL: `sqlite:///path.db` (created and migrated on start) or `postgresql://…`.",
    )
    secret_key: str | None = Field(
        None,
        description="Signs the console's CSRF tokens. When unset, one is generated and kept in the database.",
    )
    public_url: str | None = Field(
        None,
        description="Base URL used in e-mailed links (e.g. https://lake.example.com); else the request's own.",
    )
    smtp_url: str | None = Field(
        None,
        description="`smtp://[user:password@]host[:port]` (STARTTLS when offered) or `smtps://…`; "
        "unset: mail goes to the log and to `mail_outbox`.",
    )
    mail_from: str = Field("sharelake <no-reply@localhost>", description="From: address of outgoing mail.")
    mail_outbox: str = Field(
        "./sharelake-outbox.mbox",
        description="mbox file that receives mail when no SMTP server is configured.",
    )
    max_body: int = Field(
        1024 * 1024, ge=1024, description="Largest accepted request body in bytes (413 above)."
    )
    request_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a client has to send a whole request, headers and body (408 after).",
    )
    bearer_ttl: int = Field(48 * 3600, ge=60, description="Lifetime of a password-grant token, in seconds.")
    refresh_ttl: int = Field(30 * 24 * 3600, ge=60, description="Lifetime of a refresh token, in seconds.")
    verify_ttl: int = Field(
        24 * 3600, ge=60, description="Lifetime of an e-mailed verification link, in seconds."
    )
    password_min_length: int = Field(8, ge=1, description="Shortest password accepted.")
    argon2_time_cost: int = Field(3, ge=1, description="Argon2id iterations.")
    argon2_memory_cost: int = Field(65536, ge=8, description="Argon2id memory in KiB.")
    login_max_failures_account: int = Field(
        10, ge=1, description="Failed logins per account within `login_window` before 429."
    )
    login_max_failures_ip: int = Field(
        100, ge=1, description="Failed logins per client IP within `login_window` before 429."
    )
    login_window: int = Field(15 * 60, ge=1, description="Window of the failed-login limits, in seconds.")
    signup_max_per_email: int = Field(
        5,
        ge=1,
        description="Sign-up (and invitation) mails to one address within `signup_window` before 429.",
    )
    signup_max_per_ip: int = Field(
        30, ge=1, description="Sign-up requests from one client IP within `signup_window`."
    )
    signup_window: int = Field(3600, ge=1, description="Window of the sign-up limits, in seconds.")
    token_cache_ttl: float = Field(
        30.0,
        ge=0,
        description="Seconds a token lookup is cached in memory (revocation still applies at once).",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL",
        description="SQLite `synchronous` pragma: FULL survives power loss, NORMAL only process crashes.",
    )
    writer: Literal["auto", "inline", "thread"] = Field(
        "auto",
        description="Where group commits run: a writer `thread` (auto), or `inline` in the event loop "
        "(SQLite only; its fsync then blocks the loop).",
    )
    write_batch: int = Field(512, ge=1, description="Most records committed in one group-commit transaction.")
    writer_threads: int = Field(
        3,
        ge=1,
        le=32,
        description="PostgreSQL only: writer threads (each with its own connection) committing batches "
        "side by side, so one batch's writes overlap the previous one's commit.",
    )
    dedup_window: int = Field(
        300, ge=0, description="Seconds within which a repeated uplink frame is merged into the first record."
    )
    trusted_proxies: str = Field(
        "", description="Comma-separated proxy IPs whose X-Forwarded-For/-Proto headers are believed."
    )
    metrics_token: str | None = Field(
        None, description="When set, GET /metrics needs `Authorization: Bearer <this>`; unset, it is open."
    )
    ingest_rate_limit: float = Field(
        0, ge=0, description="Records per second one token may write (bursts of twice that); 0: no limit."
    )
    access_log: bool = Field(True, description="Log one JSON line per request (token id, never the secret).")
    worker: bool = Field(True, description="Run the background worker inside `sharelake serve`.")
    robot_http_allow: str = Field(
        "",
        description="Comma-separated hosts, `host:port` or CIDRs that connections made for users (robots' "
        "`lib.get/post/put/delete`) may reach although private, loopback or link-local; all others are refused.",
    )
    robot_http_timeout: float = Field(
        5.0, gt=0, le=60, description="Seconds one robot HTTP request may take, redirects included."
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("database_url must be sqlite:///… or postgresql://…")
        return value

    @field_validator("robot_http_allow")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        Allow.parse(value)  # a ValueError names the bad item
        return value

    def problems_for_production(self) -> list[str]:
        """What makes these settings unsafe to serve the Internet with."""
        problems = []
        if not self.secret_key or len(self.secret_key) < 32:
            problems.append("SHARELAKE_SECRET_KEY must be set (at least 32 characters)")
        if not self.public_url or not self.public_url.startswith("https://"):
            problems.append("SHARELAKE_PUBLIC_URL must be an https:// URL")
        return problems
