"""Random secrets and how they are kept: shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
import uuid


def new_secret() -> str:
    """256 random bits as 64 hex characters (the form of Microshare's tokens)."""
    return secrets.token_hex(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_uuid() -> str:
    return str(uuid.uuid4())
