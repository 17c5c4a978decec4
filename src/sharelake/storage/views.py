"""Views compiled to SQL: a parsed pipeline becomes one SELECT over the records a caller may Query.

Stages are folded onto a `Frame` (a FROM, its WHERE, order and limit, and what each document field is
in SQL); a stage that must see the rows an earlier one produced (a $match after a $limit, anything after
a $group) wraps the frame in a subquery, carrying its order along as hidden columns. JSON is read with
each database's own functions (`storage.json_sql`) and compared type by type, as MongoDB does.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    FromClause,
    Numeric,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)

from sharelake.domain import records as wire
from sharelake.domain import views as v
from sharelake.domain.clock import MAX_MS, MIN_MS, parse_instant, to_iso
from sharelake.domain.errors import Invalid
from sharelake.storage.json_sql import JsonSql
from sharelake.storage.records import COLUMNS
from sharelake.storage.tables import record_tags, records

_MISSING = object()
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "$eq": operator.eq,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


# -- what a document field is in SQL ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Col:
    """A typed SQL value. kind: text, num, ms (epoch ms shown as a number), date (epoch ms shown as ISO)."""

    expr: ColumnElement[Any]
    kind: str
    nullable: bool = True
    null_is_value: bool = False  # SQL NULL is shown as null (group results), not left out


@dataclass(frozen=True, slots=True)
class Json:
    """The JSON value at `keys` inside `base` (JSON text, or `json` on PostgreSQL)."""

    base: ColumnElement[Any]
    keys: tuple[str, ...] = ()
    null_is_value: bool = False


@dataclass(frozen=True, slots=True)
class Tags:
    """A record's tags: matched through the `record_tags` index."""

    tags: ColumnElement[Any]
    id: ColumnElement[Any]


@dataclass(frozen=True, slots=True)
class Const:
    value: Any


Slot = Col | Json | Tags | Const
Resolved = Slot | dict[str, Slot]  # a dict: a sub-document (dotted sub-path → slot)
OrderKey = tuple[ColumnElement[Any], bool, bool]  # (expr, descending, may be NULL)


@dataclass
class Frame:
    source: FromClause
    fields: dict[str, Slot]  # dotted output path → slot, in output order
    record: Any  # the record columns while documents are still whole records, else None
    where: list[ColumnElement[bool]] = field(default_factory=list)
    order: list[OrderKey] = field(default_factory=list)
    tiebreak: list[OrderKey] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Result:
    docs: list[Any]  # output documents (whole records as `domain.records.full`)
    truncated: bool  # more documents existed than the default or hard limit let through
    limit: int


def _record_fields(c: Any) -> dict[str, Slot]:
    return {
        "_id": Col(c.id, "text", False),
        "id": Col(c.id, "text", False),
        "recType": Col(c.rec_type, "text", False),
        "data": Json(c.data),
        "tags": Tags(c.tags, c.id),
        "name": Col(c.name, "text", False),
        "desc": Col(c.desc, "text", False),
        "createDate": Col(c.tstamp, "date", False),
        "updateDate": Col(c.updated, "date", False),
        "creatorId": Col(c.creator, "text", False),
        "updaterId": Col(c.updater, "text", False),
        "tstamp": Col(c.tstamp, "ms", False),
        "checksum": Col(c.checksum, "text", False),
        "owner.appid": Col(c.owner_app, "text"),
        "owner.org": Col(c.owner_org, "text", False),
        "owner.user": Col(c.owner_user, "text", False),
        "uplink": Json(c.uplink),
    }


class Compiler:
    def __init__(self, dialect: str, source_rec_type: str | None) -> None:
        self.sql = JsonSql(dialect)
        self.source_rec_type = source_rec_type
        self._names = 0

    # -- fields ---------------------------------------------------------------------------------
    def resolve(self, frame: Frame, ref: v.Field) -> Resolved:
        name = ref.name
        inner = {k[len(name) + 1 :]: s for k, s in frame.fields.items() if k.startswith(name + ".")}
        if name in frame.fields:  # with fields added inside it ($addFields "data.x"), both: "" is itself
            return {"": frame.fields[name], **inner} if inner else frame.fields[name]
        for key, slot in frame.fields.items():
            if name.startswith(key + "."):
                rest = tuple(name[len(key) + 1 :].split("."))
                if isinstance(slot, Json):
                    return Json(slot.base, slot.keys + rest, slot.null_is_value)
                if isinstance(slot, Const):
                    value = slot.value
                    for part in rest:
                        value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
                    return Const(value)
                raise Invalid(f"{key} has no fields: {name!r} cannot be read", code="invalid_view")
        if inner:
            return inner
        known = ", ".join(dict.fromkeys(k.split(".")[0] for k in frame.fields))
        raise Invalid(
            f"no field {name!r} in the documents at this stage (they have: {known}; record payloads are "
            "under data., uplinks under uplink.)",
            code="unknown_field",
        )

    def expr(self, frame: Frame, e: v.Expr) -> Resolved:
        if isinstance(e, v.Field):
            return self.resolve(frame, e)
        if isinstance(e, v.Literal):
            return Const(e.value)
        if isinstance(e, v.Doc):
            out: dict[str, Slot] = {}
            for key, sub in e.fields:
                got = self.expr(frame, sub)
                if isinstance(got, dict):
                    out.update({_join(key, k): s for k, s in got.items()})
                else:
                    out[key] = got
            return out
        # A date operator over no date (out of range, not a number, missing) is null, shown as null.
        if isinstance(e, v.ToDate):
            return Col(self._instant(frame, e.value), "date", null_is_value=True)
        if isinstance(e, v.DatePart):
            return Col(self.sql.part(self._instant(frame, e.date), e.part), "num", null_is_value=True)
        bucket = self.sql.bucket(self._instant(frame, e.date), e.unit, e.bin_size, e.start_of_week)
        return Col(bucket, "date", null_is_value=True)

    def _slot(self, frame: Frame, e: v.Expr, where: str) -> Slot:
        got = self.expr(frame, e)
        if isinstance(got, dict):
            raise Invalid(f"{where}: a sub-document cannot be used here", code="invalid_view")
        return got

    def _instant(self, frame: Frame, e: v.Expr) -> ColumnElement[Any]:
        """Epoch milliseconds as a bigint, NULL for anything that is not an instant of the years 1 to 9999."""
        slot = self._slot(frame, e, "a date")
        if isinstance(slot, Col) and slot.kind in ("ms", "date"):
            return self.sql.instant(slot.expr, integral=True)
        if isinstance(slot, Col) and slot.kind == "num":
            return self.sql.instant(slot.expr)
        if isinstance(slot, Json):
            return self.sql.instant(self.sql.num(slot.base, slot.keys))
        if isinstance(slot, Const) and (slot.value is None or slot.value is _MISSING):
            return cast(null(), BigInteger)
        if (
            isinstance(slot, Const)
            and isinstance(slot.value, int | float)
            and not isinstance(slot.value, bool)
        ):
            # Decided here, not in SQL: PostgreSQL may compute a constant before the CASE guarding it.
            if MIN_MS - 1 < slot.value < MAX_MS + 1:
                return literal(int(slot.value), BigInteger)
            return cast(null(), BigInteger)
        raise Invalid(
            "dates are $tstamp, $createDate, $updateDate or a field holding epoch milliseconds",
            code="invalid_view",
        )

    def numeric(self, slot: Slot) -> ColumnElement[Any]:
        if isinstance(slot, Col):
            return slot.expr if slot.kind != "text" else null()
        if isinstance(slot, Json):
            return self.sql.num(slot.base, slot.keys)
        if (
            isinstance(slot, Const)
            and isinstance(slot.value, int | float)
            and not isinstance(slot.value, bool)
        ):
            return self.sql.number(slot.value)
        return cast(null(), Numeric)  # typed: PostgreSQL has no avg() of an unknown type

    def materialize(self, slot: Slot) -> tuple[ColumnElement[Any], Callable[[Any], Slot]]:
        """The slot's SQL value, and how to rebuild the slot from a column holding it."""
        if isinstance(slot, Col):
            return slot.expr, lambda c: replace(slot, expr=c)
        if isinstance(slot, Json):
            return self.sql.json_text(slot.base, slot.keys), lambda c: Json(c, (), slot.null_is_value)
        if isinstance(slot, Tags):
            return self.sql.json_text(slot.tags, ()), lambda c: Json(c)
        return literal(orjson.dumps(slot.value).decode()), lambda c: Json(c)

    def sort_keys(self, slot: Resolved, descending: bool) -> list[OrderKey]:
        if isinstance(slot, dict):
            return [k for s in slot.values() for k in self.sort_keys(s, descending)]
        if isinstance(slot, Col):
            expr = self.sql.text_order(slot.expr) if slot.kind == "text" else slot.expr
            return [(expr, descending, slot.nullable)]
        if isinstance(slot, Json):
            rank = self.sql.rank(slot.base, slot.keys)
            text = self.sql.text_order(self.sql.text(slot.base, slot.keys))
            return [(e, descending, False) for e in (rank, self.sql.num(slot.base, slot.keys), text)]
        if isinstance(slot, Tags):
            return [(self.sql.text_order(self.sql.json_text(slot.tags, ())), descending, False)]
        return []

    # -- $match ---------------------------------------------------------------------------------
    def cond(self, frame: Frame, c: v.Cond) -> ColumnElement[bool]:
        if isinstance(c, v.Logic):
            parts = [self.cond(frame, sub) for sub in c.conds]
            if c.op == "$and":
                return and_(*parts) if parts else true()
            either = or_(*parts)
            return either if c.op == "$or" else not_(either)  # $nor, $not
        slot = self.resolve(frame, c.field)
        if isinstance(c, v.Exists):
            present = self._exists(slot)
            return present if c.present else not_(present)
        if isinstance(c, v.In):
            anyof = self._in(slot, c.values, c.field.name)
            return not_(anyof) if c.negate else anyof
        if c.op == "$ne":
            return not_(self.compare(slot, "$eq", c.value, c.field.name))
        return self.compare(slot, c.op, c.value, c.field.name)

    def _exists(self, slot: Resolved) -> ColumnElement[bool]:
        if isinstance(slot, Json):
            return self.sql.exists(slot.base, slot.keys)
        if isinstance(slot, Col):
            return slot.expr.is_not(None) if slot.nullable else true()
        if isinstance(slot, Const):
            return true() if slot.value is not _MISSING else false()
        return true()

    def _in(self, slot: Resolved, values: Sequence[Any], name: str) -> ColumnElement[bool]:
        if isinstance(slot, Tags) and all(isinstance(x, str) for x in values):
            return self._tagged(slot, list(values)) if values else false()
        if (
            isinstance(slot, Col)
            and slot.kind == "text"
            and values
            and all(isinstance(x, str) for x in values)
        ):
            return and_(slot.expr.is_not(None), slot.expr.in_(list(values)))
        parts = [self.compare(slot, "$eq", x, name) for x in values]
        return or_(*parts) if parts else false()

    def _tagged(self, slot: Tags, tags: list[str]) -> ColumnElement[bool]:
        tagged = select(record_tags.c.record_id).where(
            record_tags.c.tag == tags[0] if len(tags) == 1 else record_tags.c.tag.in_(tags)
        )
        if self.source_rec_type is not None:
            tagged = tagged.where(record_tags.c.rec_type == self.source_rec_type)
        return slot.id.in_(tagged)

    def compare(self, slot: Resolved, op: str, value: Any, name: str) -> ColumnElement[bool]:
        """`slot op value`, two-valued (never NULL, so NOT is safe), matching only values of the same type."""
        if isinstance(slot, dict):
            raise Invalid(f"{name!r} is a sub-document: compare its fields", code="invalid_view")
        fn = _OPS[op]
        if isinstance(value, bool | None):
            return self._compare_special(slot, op, value, name)
        if isinstance(slot, Const):
            same = slot.value is not _MISSING and _same_type(slot.value, value)
            return true() if same and fn(slot.value, value) else false()
        if isinstance(slot, Tags):
            if op != "$eq" or not isinstance(value, str):
                raise Invalid("tags take equality, $ne, $in, $nin and $exists", code="invalid_view")
            return self._tagged(slot, [value])
        if isinstance(slot, Col):
            return self._compare_col(slot, fn, value)
        if isinstance(value, v.Instant):
            value = value.ms
        if isinstance(value, int | float):
            sql = self.sql.num(slot.base, slot.keys)
            return and_(sql.is_not(None), fn(sql, self.sql.number(value)))
        sql = self.sql.text_order(self.sql.text(slot.base, slot.keys))
        return and_(sql.is_not(None), fn(sql, value))

    def _compare_col(self, slot: Col, fn: Callable[[Any, Any], Any], value: Any) -> ColumnElement[bool]:
        if slot.kind in ("ms", "date"):
            if isinstance(value, v.Instant):
                value = value.ms
            elif isinstance(value, v.Unbound):
                value = 0
            elif isinstance(value, str):
                value = parse_instant(value, name="a date in $match")
        elif isinstance(value, v.Instant):
            return false()
        numeric = isinstance(value, int | float)
        if numeric != (slot.kind != "text"):
            return false()  # MongoDB matches a value only against values of its own type
        test = fn(slot.expr, self.sql.number(value)) if numeric else fn(self.sql.text_order(slot.expr), value)
        return and_(slot.expr.is_not(None), test) if slot.nullable else test

    def _compare_special(self, slot: Slot, op: str, value: bool | None, name: str) -> ColumnElement[bool]:
        if value is None:  # null matches null and missing; only equality (and $gte/$lte) make sense
            if op in ("$gt", "$lt"):
                return false()
            if isinstance(slot, Json):
                return self.sql.null_or_missing(slot.base, slot.keys)
            if isinstance(slot, Col):
                return slot.expr.is_(None) if slot.nullable else false()
            if isinstance(slot, Const):
                return true() if slot.value is None or slot.value is _MISSING else false()
            return false()
        wanted = [b for b in (False, True) if _OPS[op](b, value)]  # booleans order false < true
        if isinstance(slot, Json):
            parts = [self.sql.is_bool(slot.base, slot.keys, b) for b in wanted]
            return or_(*parts) if parts else false()
        if isinstance(slot, Const):
            return true() if isinstance(slot.value, bool) and slot.value in wanted else false()
        return false()

    # -- stages ---------------------------------------------------------------------------------
    def _name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def _order_by(self, keys: Sequence[OrderKey]) -> list[ColumnElement[Any]]:
        out: list[ColumnElement[Any]] = []
        for expr, descending, nullable in keys:
            ordered: ColumnElement[Any] = expr.desc() if descending else expr.asc()
            if nullable and self.sql.pg:  # MongoDB (and SQLite) put nulls first ascending, last descending
                ordered = ordered.nulls_last() if descending else ordered.nulls_first()
            out.append(ordered)
        return out

    def seal(self, frame: Frame) -> Frame:
        """The frame as a subquery: later stages see the rows it produced, in its order."""
        rebuild: dict[str, Callable[[Any], Slot]] = {}
        consts: dict[str, Slot] = {}
        cols: list[ColumnElement[Any]] = []
        if frame.record is not None:
            cols = [frame.record[c.name] for c in COLUMNS]
        else:
            for i, (key, slot) in enumerate(frame.fields.items()):
                if isinstance(slot, Const):
                    consts[key] = slot
                    continue
                if isinstance(slot, Tags):  # keep the record id along, for matching tags by the index
                    cols += [slot.tags.label(f"f{i}"), slot.id.label(f"f{i}id")]
                    continue
                sql, rebuild[key] = self.materialize(slot)
                cols.append(sql.label(f"f{i}"))
        keys = frame.order + frame.tiebreak
        cols += [expr.label(f"o{j}") for j, (expr, _, _) in enumerate(keys)]
        query = select(*cols, literal(1).label("one")).select_from(frame.source).where(*frame.where)
        if frame.limit is not None or frame.offset:
            query = query.order_by(*self._order_by(keys)).limit(frame.limit).offset(frame.offset or None)
        sub = query.subquery(self._name("s"))
        carried: list[OrderKey] = [(sub.c[f"o{j}"], d, n) for j, (_, d, n) in enumerate(keys)]
        if frame.record is not None:
            fields = _record_fields(sub.c)
        else:
            fields = {}
            for i, (key, slot) in enumerate(frame.fields.items()):
                if isinstance(slot, Tags):
                    fields[key] = Tags(sub.c[f"f{i}"], sub.c[f"f{i}id"])
                else:
                    fields[key] = consts[key] if key in consts else rebuild[key](sub.c[f"f{i}"])
        return Frame(
            sub, fields, sub.c if frame.record is not None else None,
            order=carried[: len(frame.order)], tiebreak=carried[len(frame.order) :],
        )  # fmt: skip

    def stage(self, frame: Frame, st: v.Stage) -> Frame:
        if isinstance(st, v.Limit):
            frame.limit = st.n if frame.limit is None else min(frame.limit, st.n)
            return frame
        if isinstance(st, v.Skip):
            frame.offset += st.n
            if frame.limit is not None:
                frame.limit = max(frame.limit - st.n, 0)
            return frame
        if isinstance(st, v.Project):
            return self._project(frame, st)
        if frame.limit is not None or frame.offset:
            frame = self.seal(frame)
        if isinstance(st, v.Match):
            frame.where.append(self.cond(frame, st.cond))
            return frame
        if isinstance(st, v.Sort):
            frame.tiebreak = frame.tiebreak or frame.order  # a group's key order still breaks ties
            frame.order = [k for f, d in st.keys for k in self.sort_keys(self.resolve(frame, f), d)]
            return frame
        if isinstance(st, v.Group):
            return self._group(frame, st)
        return self._count(frame, st)

    def _project(self, frame: Frame, p: v.Project) -> Frame:
        fields: dict[str, Slot] = dict(frame.fields) if p.keep else {}
        named = {name for name, _ in p.fields}
        if not p.keep and "_id" not in p.drop and "_id" not in named:  # MongoDB keeps _id unless told
            fields.update({k: s for k, s in frame.fields.items() if k == "_id" or k.startswith("_id.")})
        for name, spec in p.fields:
            if spec is True:
                got = self.resolve(frame, v.Field(tuple(name.split("."))))
            else:
                assert not isinstance(spec, bool)
                got = self.expr(frame, spec)
            _drop_exact(fields, name)
            if isinstance(got, dict):
                fields.update({_join(name, k): s for k, s in got.items()})
            else:
                fields[name] = got
        for name in p.drop:
            self._drop(fields, name)
        frame.fields, frame.record = fields, None
        return frame

    def _drop(self, fields: dict[str, Slot], name: str) -> None:
        _drop_exact(fields, name)
        for key, slot in list(fields.items()):
            if name.startswith(key + ".") and isinstance(slot, Json):
                text = self.sql.json_text(slot.base, slot.keys)
                fields[key] = Json(self.sql.remove(text, tuple(name[len(key) + 1 :].split("."))))

    def _group(self, frame: Frame, g: v.Group) -> Frame:
        key = self.expr(frame, g.key)
        key_slots = {_join("_id", k): s for k, s in key.items()} if isinstance(key, dict) else {"_id": key}
        inner: list[ColumnElement[Any]] = []
        partition: list[ColumnElement[Any]] = []
        rebuild: dict[str, Callable[[Any], Slot]] = {}
        for i, (name, slot) in enumerate(key_slots.items()):
            if not isinstance(slot, Const):
                sql, rebuild[name] = self.materialize(slot)
                inner.append(sql.label(f"k{i}"))
                partition.append(sql)
        window_order = self._order_by(frame.order + frame.tiebreak)
        aggregates: list[tuple[str, Callable[[Any], Any], Callable[[Any], Slot]]] = []
        for j, acc in enumerate(g.accumulators):
            aggregates.append(self._accumulate(frame, acc, j, inner, partition, window_order))
        sub_in = select(*inner, literal(1).label("one")).select_from(frame.source).where(*frame.where)
        src = sub_in.subquery(self._name("g"))
        group_cols = [src.c[f"k{i}"] for i, name in enumerate(key_slots) if name in rebuild]
        outer = [*group_cols, func.count().label("n")]
        outer += [agg(src.c).label(f"a{j}") for j, (_, agg, _) in enumerate(aggregates)]
        grouped = select(*outer).select_from(src).group_by(*group_cols).subquery(self._name("r"))
        fields: dict[str, Slot] = {}
        for i, (name, slot) in enumerate(key_slots.items()):
            fields[name] = rebuild[name](grouped.c[f"k{i}"]) if name in rebuild else slot
        fields = {k: _as_value(s) for k, s in fields.items()}
        for j, (name, _, make) in enumerate(aggregates):
            fields[name] = make(grouped.c[f"a{j}"])
        order = [k for name in rebuild for k in self.sort_keys(fields[name], False)]
        where = [] if group_cols else [grouped.c.n > 0]  # MongoDB: no input, no group
        return Frame(grouped, fields, None, where=where, order=order)

    def _accumulate(
        self,
        frame: Frame,
        acc: v.Accumulator,
        j: int,
        inner: list[ColumnElement[Any]],
        partition: list[ColumnElement[Any]],
        window_order: list[ColumnElement[Any]],
    ) -> tuple[str, Callable[[Any], Any], Callable[[Any], Slot]]:
        """Adds the per-row input column(s) to `inner`; returns (name, aggregate over them, result slot)."""
        slot = self._slot(frame, acc.arg, f"$group {acc.name}")
        label = f"v{j}"
        num_col = lambda c: Col(c, "num", null_is_value=True)  # noqa: E731
        if acc.op == "$count" or (acc.op == "$sum" and isinstance(slot, Const)):
            times = slot.value if isinstance(slot, Const) and acc.op == "$sum" else 1
            if isinstance(times, bool) or not isinstance(times, int | float):
                times = 0
            elif abs(times) >= 2**31:  # as a double: rows × a huge whole number would overflow bigint
                times = float(times)
            return acc.name, lambda c: func.count() * self.sql.number(times), num_col
        if acc.op in ("$sum", "$avg"):
            inner.append(self.numeric(slot).label(label))
            if acc.op == "$sum" and not self.sql.pg:  # SQLite's sum() fails on an integer overflow
                return acc.name, lambda c: func.total(c[label]), num_col
            if acc.op == "$sum":
                return acc.name, lambda c: func.coalesce(func.sum(c[label]), 0), num_col
            return acc.name, lambda c: func.avg(c[label]), num_col
        if isinstance(slot, Const):
            return acc.name, lambda c: literal(orjson.dumps(slot.value).decode()), lambda c: Json(c, (), True)
        if acc.op in ("$first", "$last"):
            sql, make = self.materialize(slot)
            window = (func.first_value if acc.op == "$first" else func.last_value)(sql).over(
                partition_by=partition or None, order_by=window_order or None, rows=(None, None)
            )
            inner.append(window.label(label))
            return acc.name, lambda c: func.min(c[label]), lambda c: _as_value(make(c))
        pick = func.min if acc.op == "$min" else func.max
        if isinstance(slot, Col | Tags):
            sql, make = self.materialize(slot)
            inner.append(sql.label(label))
            return acc.name, lambda c: pick(c[label]), lambda c: _as_value(make(c))
        # Any JSON: numbers sort before strings, so $min prefers a number and $max a string.
        inner += [
            self.sql.num(slot.base, slot.keys).label(label),
            self.sql.text(slot.base, slot.keys).label(label + "t"),
        ]

        def combined(c: Any) -> Any:
            n, t = pick(c[label]), pick(c[label + "t"])
            if acc.op == "$min":
                return case((n.is_not(None), cast(n, Text)), else_=self.sql.quote(t))
            return case((t.is_not(None), self.sql.quote(t)), else_=cast(n, Text))

        return acc.name, combined, lambda c: Json(c, (), True)

    def _count(self, frame: Frame, st: v.Count) -> Frame:
        counted = select(func.count().label("n")).select_from(frame.source).where(*frame.where)
        sub = counted.subquery(self._name("c"))
        return Frame(sub, {st.name: Col(sub.c.n, "num", False)}, None, where=[sub.c.n > 0])

    # -- the whole pipeline ---------------------------------------------------------------------
    def compile(self, pipeline: v.Pipeline, visible: ColumnElement[bool]) -> tuple[Any, Frame, int, bool]:
        where = [visible]
        if self.source_rec_type is not None:
            where.append(records.c.rec_type == self.source_rec_type)
        frame = Frame(
            records, _record_fields(records.c), records.c, where=where,
            order=[(records.c.tstamp, False, False)], tiebreak=[(records.c.id, False, False)],
        )  # fmt: skip
        for st in pipeline.stages:
            frame = self.stage(frame, st)
        if frame.limit is not None:
            limit, ours = min(frame.limit, v.MAX_LIMIT), frame.limit > v.MAX_LIMIT
        else:
            limit, ours = (v.MAX_LIMIT if pipeline.has_limit else v.DEFAULT_LIMIT), True
        if frame.record is not None:
            cols = [frame.record[c.name] for c in COLUMNS]
        else:
            cols = [
                self.materialize(s)[0].label(f"f{i}")
                for i, s in enumerate(frame.fields.values())
                if not isinstance(s, Const)
            ]
        query = (
            select(*cols, literal(1).label("one"))  # "one": a column even when every field is a constant
            .select_from(frame.source)
            .where(*frame.where)
            .order_by(*self._order_by(frame.order + frame.tiebreak))
            .limit(limit + 1 if ours else limit)
            .offset(frame.offset or None)
        )
        return query, frame, limit, ours


def _join(name: str, sub: str) -> str:
    return f"{name}.{sub}" if sub else name


def _drop_exact(fields: dict[str, Slot], name: str) -> None:
    for key in [k for k in fields if k == name or k.startswith(name + ".")]:
        del fields[key]


def _as_value(slot: Slot) -> Slot:
    """After a $group a missing value is shown as null (MongoDB's $first, $min… of nothing)."""
    if isinstance(slot, Col | Json):
        return replace(slot, null_is_value=True)
    return slot


def _same_type(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


def _number(value: Any) -> Any:
    """Numbers the same on both databases: whole ones as integers (PostgreSQL answers Decimals); a
    result beyond a double (a $sum of huge numbers) is null, as JSON has no infinity."""
    if isinstance(value, Decimal | float):
        number = float(value)
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return value


def _output(slot: Slot, value: Any) -> Any:
    if value is None:
        return None if getattr(slot, "null_is_value", False) else _MISSING
    if isinstance(slot, Col):
        if slot.kind == "date":
            return to_iso(int(value))
        return value if slot.kind == "text" else _number(value)
    return _Raw(value)


class _Raw(str):
    """JSON text from the database, served as it is unless a later field must be put inside it."""


def _finish(node: Any) -> Any:
    if isinstance(node, _Raw):
        return orjson.Fragment(str(node))
    if isinstance(node, dict):
        return {k: _finish(x) for k, x in node.items()}
    return node


def _put(doc: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        child = doc.get(part)
        if isinstance(child, _Raw):
            child = orjson.loads(str(child))
        if not isinstance(child, dict):
            child = {}
        doc[part] = child
        doc = child
    doc[last] = value


def run(
    conn: Connection, pipeline: v.Pipeline, visible: ColumnElement[bool], source_rec_type: str | None
) -> Result:
    """Run a pipeline over the records `visible` admits (of `source_rec_type`, when given)."""
    compiler = Compiler(conn.dialect.name, source_rec_type)
    query, frame, limit, ours = compiler.compile(pipeline, visible)
    rows = list(conn.execute(query))
    truncated = ours and len(rows) > limit
    rows = rows[:limit]
    if frame.record is not None:
        return Result([wire.full(row) for row in rows], truncated, limit)
    docs = []
    for row in rows:
        doc: dict[str, Any] = {}
        position = 0
        for key, slot in frame.fields.items():
            if isinstance(slot, Const):
                value = slot.value
            else:
                value = _output(slot, row[position])
                position += 1
            if value is not _MISSING:
                _put(doc, key, value)
        docs.append(_finish(doc))
    return Result(docs, truncated, limit)
