"""What a token shows of itself in lists, so a user can tell tokens apart before revoking one: the
label given at creation and the first characters of its secret."""

from __future__ import annotations

import unicodedata

from sharelake.domain.errors import Invalid

MAX_LABEL = 100
# 8 hex characters are 32 of the secret's 256 random bits: enough to recognise a token in a
# network server's settings, far too few to help anyone guess the rest.
PREFIX_LENGTH = 8
# Bidirectional overrides and isolates could reorder what a row shows next to the label.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def label(text: str | None) -> str | None:
    """The label as stored (trimmed; None when empty), or Invalid for one too long or holding
    control characters."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if len(text) > MAX_LABEL:
        raise Invalid(f"label is at most {MAX_LABEL} characters (got {len(text)})", code="invalid_parameter")
    if any(c in _BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        raise Invalid(
            "label must not hold control characters (NUL, newlines, tabs, direction overrides)",
            code="invalid_parameter",
        )
    return text


def prefix(secret: str) -> str:
    return secret[:PREFIX_LENGTH]
