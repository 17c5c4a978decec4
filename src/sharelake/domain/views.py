"""Views: the typed tree a stored aggregation pipeline parses into, and the subset it supports.

`domain.view_parse` builds the tree from Microshare's JSON (filling `${var}` placeholders as typed
values); `storage.views` compiles it to one SQL query. docs/views.md is the user's guide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

DEFAULT_LIMIT = 999  # as Microshare, when the pipeline has no $limit
MAX_LIMIT = 10_000  # hard cap on the documents one run answers
MAX_STAGES = 50
MAX_IN = 1000
MAX_DEPTH = 12
MAX_QUERY_CHARS = 100_000
MAX_VARIABLE_CHARS = 4096

STAGES = (
    "$match",
    "$sort",
    "$limit",
    "$skip",
    "$project",
    "$addFields",
    "$set",
    "$unset",
    "$group",
    "$count",
)
MATCH_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$not")
LOGICAL = ("$and", "$or", "$nor")
ACCUMULATORS = ("$sum", "$avg", "$min", "$max", "$first", "$last", "$count")
DATE_PARTS = ("$year", "$month", "$dayOfMonth", "$hour", "$minute", "$second", "$dayOfWeek", "$dayOfYear")
EXPRESSIONS = ("$literal", "$dateTrunc", "$toDate", *DATE_PARTS)
UNITS = ("second", "minute", "hour", "day", "week", "month", "year")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


class Bound(str):
    """A string a whole `"${var}"` placeholder was filled with: always a value, never a field reference."""


class Unbound(str):
    """A placeholder left unfilled (a view checked at save time, before anyone gives variables)."""


# -- the tree ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Instant:
    """`{"$date": …}` in a $match: epoch milliseconds."""

    ms: int


@dataclass(frozen=True, slots=True)
class Field:
    path: tuple[str, ...]

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class DateTrunc:
    date: Expr
    unit: str
    bin_size: int = 1
    start_of_week: str = "sunday"


@dataclass(frozen=True, slots=True)
class DatePart:
    part: str  # one of DATE_PARTS
    date: Expr


@dataclass(frozen=True, slots=True)
class ToDate:
    value: Expr


@dataclass(frozen=True, slots=True)
class Doc:
    """A sub-document of expressions (a compound `_id`, a nested $project)."""

    fields: tuple[tuple[str, Expr], ...]


Expr: TypeAlias = Field | Literal | DateTrunc | DatePart | ToDate | Doc


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: str  # $eq $ne $gt $gte $lt $lte
    value: Any  # str | int | float | bool | None | Instant


@dataclass(frozen=True, slots=True)
class In:
    field: Field
    values: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True, slots=True)
class Exists:
    field: Field
    present: bool


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # $and $or $nor $not
    conds: tuple[Cond, ...]


Cond: TypeAlias = Compare | In | Exists | Logic


@dataclass(frozen=True, slots=True)
class Match:
    cond: Cond


@dataclass(frozen=True, slots=True)
class Sort:
    keys: tuple[tuple[Field, bool], ...]  # (field, descending)


@dataclass(frozen=True, slots=True)
class Limit:
    n: int


@dataclass(frozen=True, slots=True)
class Skip:
    n: int


@dataclass(frozen=True, slots=True)
class Project:
    """`keep`: everything the document had (exclusion, $addFields, $unset); `fields`: what to add or keep;
    `drop`: paths to remove."""

    keep: bool
    fields: tuple[tuple[str, Expr | bool], ...]  # True: include as is
    drop: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Accumulator:
    name: str
    op: str  # one of ACCUMULATORS
    arg: Expr


@dataclass(frozen=True, slots=True)
class Group:
    key: Expr  # Literal (one group), Field, an operator, or Doc
    accumulators: tuple[Accumulator, ...]


@dataclass(frozen=True, slots=True)
class Count:
    name: str


Stage: TypeAlias = Match | Sort | Limit | Skip | Project | Group | Count


@dataclass(frozen=True, slots=True)
class Pipeline:
    stages: tuple[Stage, ...]
    has_limit: bool
