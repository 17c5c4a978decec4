"""Account rules: e-mail normalisation, reverse-DNS orgs, password policy."""

from __future__ import annotations

import re

from sharelake.domain.errors import Invalid

_EMAIL = re.compile(
    r"[^@\s\x00-\x1f\x7f]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_ORG = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
MAX_PASSWORD = 1024


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise Invalid(f"{email!r} is not an e-mail address", code="invalid_email")
    return email


def default_org(email: str) -> str:
    """`me@acme.com` → `com.acme`: the e-mail domain, reversed."""
    domain = email.rpartition("@")[2]
    return ".".join(reversed(domain.split(".")))


def normalize_org(org: str) -> str:
    org = org.strip().lower()
    if len(org) > 255 or not _ORG.fullmatch(org):
        raise Invalid(
            f"org {org!r} is not a reverse-DNS name such as com.acme (labels of a-z, 0-9 and -)",
            code="invalid_org",
        )
    return org


def check_password(password: str, *, min_length: int) -> None:
    if len(password) < min_length:
        raise Invalid(f"password is too short: use at least {min_length} characters", code="weak_password")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"password is too long: at most {MAX_PASSWORD} characters", code="weak_password")
