"""JSON values and instants in SQL, per database, for views: SQLite's `json_extract`/`json_type` and
`strftime`; PostgreSQL's `json` operators (`#>`, `#>>`, `json_typeof`) and date functions.

A JSON value is addressed as (base, keys): `base` is JSON text (or `json` on PostgreSQL), `keys` the
path inside it; a numeric key indexes an array. Paths and values are always bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Numeric,
    Text,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    not_,
    null,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, aggregate_order_by

from sharelake.domain.clock import MAX_MS, MIN_MS
from sharelake.domain.views import WEEKDAYS

Keys = tuple[str, ...]

UNIT_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 604_800_000}
_Y2K = 946_684_800_000  # 2000-01-01T00:00Z, a Saturday: MongoDB aligns bins of binSize > 1 on it
_DAY = 86_400_000
_STRFTIME = {"$year": "%Y", "$month": "%m", "$dayOfMonth": "%d", "$hour": "%H", "$minute": "%M",
             "$second": "%S", "$dayOfWeek": "%w", "$dayOfYear": "%j"}  # fmt: skip
_EXTRACT = {"$year": "year", "$month": "month", "$dayOfMonth": "day", "$hour": "hour", "$minute": "minute",
            "$second": "second", "$dayOfWeek": "dow", "$dayOfYear": "doy"}  # fmt: skip
# MongoDB's order of types, as each database names them: null/missing 0, numbers, strings, objects, arrays, booleans.
_RANK_PG = {"number": 1, "string": 2, "object": 3, "array": 4, "boolean": 5}
_RANK_SQLITE = {"integer": 1, "real": 1, "text": 2, "object": 3, "array": 4, "true": 5, "false": 5}
# Records keep number literals as sent, and PostgreSQL's numeric refuses some that a double reads (an
# exponent beyond ±1000, more than 16,383 digits after the point), failing the whole query. An exponent
# of four digits leaves a double only 0 (ingest refuses numbers past a double's range), and digits past
# the 10,000th change no double the exponent can bring back into range, so both are dropped first.
_HUGE_EXPONENT = r"[eE][-+]?0*[1-9][0-9]{3}"
_MANTISSA_CHARS = 10_000
_PLAIN_CHARS = 400  # at most this long and no huge exponent: numeric reads it as it is
_MONTHS_BEFORE_YEAR_1 = (1 - 2000) * 12  # month indexes count from 2000-01


def mod(x: ColumnElement[Any], m: ColumnElement[Any]) -> ColumnElement[Any]:
    """x mod m, never negative (SQL's % keeps the dividend's sign)."""
    return (x % m + m) % m


class JsonSql:
    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self._aliases = 0

    # -- JSON -----------------------------------------------------------------------------------
    def path(self, keys: Sequence[str]) -> ColumnElement[Any]:
        if self.pg:
            return literal(list(keys), ARRAY(Text))
        return literal("$" + "".join(f"[{k}]" if k.isdigit() else f'."{k}"' for k in keys))

    def _at(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        doc = cast(base, JSON)
        return doc.op("#>", return_type=JSON)(self.path(keys)) if keys else doc

    def _scalar_text(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        """PostgreSQL: a scalar's text (a string without its quotes)."""
        where = self.path(keys) if keys else literal_column("'{}'::text[]")
        return cast(base, JSON).op("#>>", return_type=Text)(where)

    def jtype(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        """The database's name of the value's JSON type; NULL when missing."""
        if self.pg:
            return func.json_typeof(self._at(base, keys))
        return func.json_type(base, self.path(keys))

    def _extract(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        return func.json_extract(base, self.path(keys))

    def num(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        """The value if it is a number, else NULL."""
        if self.pg:
            t = self._scalar_text(base, keys)
            short = func.length(t) <= _PLAIN_CHARS
            mantissa = func.left(func.substring(t, "^[^eE]*"), _MANTISSA_CHARS)
            read = case(
                (and_(short, func.strpos(func.lower(t), "e") == 0), cast(t, Numeric)),  # most numbers
                (t.regexp_match(_HUGE_EXPONENT), literal(0, Numeric)),
                (short, cast(t, Numeric)),
                else_=cast(func.concat(mantissa, func.substring(t, "[eE].*$")), Numeric),
            )
            return case((self.jtype(base, keys) == "number", read))
        return case((self.jtype(base, keys).in_(["integer", "real"]), self._extract(base, keys)))

    def number(self, value: int | float) -> ColumnElement[Any]:
        """A number from the pipeline, to compare with numbers read from JSON. PostgreSQL would compare a
        numeric with a double as doubles, and fail on a numeric no double holds (`1e-400`)."""
        return cast(literal(value), Numeric) if self.pg and isinstance(value, float) else literal(value)

    def text(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        """The value if it is a string, else NULL."""
        if self.pg:
            return case((self.jtype(base, keys) == "string", self._scalar_text(base, keys)))
        return case((self.jtype(base, keys) == "text", self._extract(base, keys)))

    def json_text(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        """The value as JSON text; NULL when missing."""
        if self.pg:
            return cast(self._at(base, keys), Text)
        if not keys:
            return base
        t = self.jtype(base, keys)
        return case(
            (t.is_(None), null()),
            (t == "true", "true"),
            (t == "false", "false"),
            else_=func.json_quote(self._extract(base, keys)),
        )

    def quote(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        """An SQL string as JSON text."""
        return cast(func.to_json(text), Text) if self.pg else func.json_quote(text)

    def exists(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[bool]:
        return func.coalesce(self.jtype(base, keys), "missing") != "missing"

    def null_or_missing(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[bool]:
        return func.coalesce(self.jtype(base, keys), "null") == "null"

    def is_bool(self, base: ColumnElement[Any], keys: Keys, value: bool) -> ColumnElement[bool]:
        word = "true" if value else "false"
        kind = func.coalesce(self.jtype(base, keys), "missing")
        if self.pg:
            return and_(kind == "boolean", func.coalesce(self._scalar_text(base, keys), "") == word)
        return kind == word

    def rank(self, base: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        t = self.jtype(base, keys)
        names = _RANK_PG if self.pg else _RANK_SQLITE
        return case(*[(t == name, rank) for name, rank in names.items()], else_=0)

    def remove(self, text: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        """JSON text without the value at `keys`."""
        if self.pg:
            return cast(self._without(cast(text, JSON), keys), Text)
        return func.json_remove(text, self.path(keys))

    def _alias(self, prefix: str) -> str:
        """A name no other FROM item of the query has (removals nest inside each other's arguments)."""
        self._aliases += 1
        return f"j{prefix}{self._aliases}"

    def _without(self, doc: ColumnElement[Any], keys: Keys) -> ColumnElement[Any]:
        """PostgreSQL: `doc` (json) rebuilt without the value at `keys`, level by level with json_each and
        json_array_elements. Not through jsonb's `#-`: jsonb refuses what json keeps (a NUL escape in a
        string, numbers numeric cannot hold), which failed the whole query, and it reorders keys."""
        key, rest = keys[0], keys[1:]
        kind = func.json_typeof(doc)
        member = (
            func.json_each(doc)
            .table_valued("key", "value", with_ordinality="n")
            .render_derived(self._alias("m"))
        )
        value = member.c.value if not rest else case(
            (member.c.key == key, self._without(member.c.value, rest)), else_=member.c.value
        )  # fmt: skip
        keep = member.c.key != key if not rest else true()
        pairs = func.json_object_agg(member.c.key, aggregate_order_by(value, member.c.n))
        obj = select(func.coalesce(pairs, literal_column("'{}'::json"))).select_from(member).where(keep)
        branches = [(kind == "object", obj.scalar_subquery())]
        if key.isdigit():  # a numeric key also indexes an array (from 0)
            item = (
                func.json_array_elements(doc)
                .table_valued("value", with_ordinality="n")
                .render_derived(self._alias("a"))
            )
            at = item.c.n == int(key) + 1
            value = item.c.value if not rest else case(
                (at, self._without(item.c.value, rest)), else_=item.c.value
            )  # fmt: skip
            items = func.json_agg(aggregate_order_by(value, item.c.n))
            arr = select(func.coalesce(items, literal_column("'[]'::json"))).select_from(item)
            branches.append((kind == "array", (arr if rest else arr.where(not_(at))).scalar_subquery()))
        return case(*branches, else_=doc)

    def text_order(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        """Strings in byte order, as MongoDB (and SQLite) compare them."""
        return expr.collate("C") if self.pg else expr

    # -- instants (epoch milliseconds, UTC) -----------------------------------------------------
    def whole(self, number: ColumnElement[Any]) -> ColumnElement[Any]:
        """A number as a whole number, truncated toward zero on both databases."""
        return cast(func.trunc(number) if self.pg else number, BigInteger)

    def instant(self, number: ColumnElement[Any], integral: bool = False) -> ColumnElement[Any]:
        """A number of epoch milliseconds, or NULL outside the years 1 to 9999 (a huge number would
        overflow bigint or the timestamp on PostgreSQL and give nonsense dates on SQLite). The test
        comes before the conversion, so that nothing out of range is ever cast."""
        in_range = and_(number > literal(MIN_MS - 1, BigInteger), number < literal(MAX_MS + 1, BigInteger))
        return case((in_range, number if integral else self.whole(number)), else_=null())

    def part(self, t: ColumnElement[Any], part: str) -> ColumnElement[Any]:
        """$year, $month, $dayOfMonth, $hour, $minute, $second, $dayOfWeek (1 = Sunday), $dayOfYear."""
        # Whole seconds rounded down: SQL's division rounds toward zero, the next second before 1970.
        seconds = (t - mod(t, literal(1000, BigInteger))) // 1000
        if self.pg:
            moment = func.timezone("UTC", func.to_timestamp(seconds))
            value = cast(func.floor(extract(_EXTRACT[part], moment)), Integer)
        else:
            value = cast(func.strftime(_STRFTIME[part], seconds, "unixepoch"), Integer)
        return value + 1 if part == "$dayOfWeek" else value

    def bucket(
        self, t: ColumnElement[Any], unit: str, bin_size: int, start_of_week: str
    ) -> ColumnElement[Any]:
        """The start of `t`'s bin, as MongoDB's $dateTrunc: fixed units by arithmetic, months by the calendar.
        A bin that would start before year 1 is NULL, as an instant out of range is."""
        if unit in UNIT_MS:
            ref = _Y2K + (1 + WEEKDAYS.index(start_of_week)) * _DAY if unit == "week" else _Y2K
            begin = t - mod(t - literal(ref, BigInteger), literal(UNIT_MS[unit] * bin_size, BigInteger))
            return case((begin >= literal(MIN_MS, BigInteger), begin), else_=null())
        months = literal(bin_size * (12 if unit == "year" else 1), Integer)
        index = (self.part(t, "$year") - 2000) * 12 + self.part(t, "$month") - 1  # months since 2000-01
        start = index - mod(index, months)
        month = mod(start, literal(12, Integer))
        year = cast(literal(2000, Integer) + (start - month) // 12, Integer)
        if self.pg:
            stamp = func.make_timestamp(year, cast(month + 1, Integer), 1, 0, 0, literal(0.0))
            begin = cast(extract("epoch", stamp), BigInteger) * 1000
        else:
            day = func.printf("%04d-%02d-01", year, month + 1)
            begin = cast(func.strftime("%s", day), BigInteger) * 1000
        # Tested before make_timestamp runs: PostgreSQL refuses year 0.
        return case((start >= literal(_MONTHS_BEFORE_YEAR_1, Integer), begin), else_=null())
