"""What a read of records asks for, in the caller's terms: which records (`Filter`) and which page of them
(`Page`: order, size, offset or keyset). Storage turns them into SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

SortKey = tuple[str, bool]  # (field, descending) — a sortable field (`record_fields.SORTABLE`) or "data.a.b"


@dataclass(slots=True)
class Filter:
    """Which records a read is about, beyond visibility."""

    rec_type: str | None = None
    record_id: str | None = None
    tags: Sequence[str] = ()
    dev_eui: str | None = None
    t_from: int | None = None
    t_to: int | None = None


@dataclass(slots=True)
class Page:
    sort: Sequence[SortKey] = field(default_factory=lambda: [("tstamp", False)])
    limit: int = 999
    offset: int = 0
    after: tuple[int, str] | None = None  # keyset: (tstamp, id) of the last row seen


@dataclass(frozen=True, slots=True)
class Projection:
    """`format=flat`: each record as one flat row, `{key: value}` for each `(key, path)` of `columns`
    (a dotted path into the record, `data.temperature`, under its own name or an alias), in the order
    asked; no columns: the CSV export's."""

    columns: tuple[tuple[str, str], ...] = ()
