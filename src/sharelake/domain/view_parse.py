"""Views: Microshare's stored aggregation pipelines parsed into `domain.views`' typed tree, and checked.

Pure: `${var}` placeholders are filled here, on the parsed JSON and as typed values (never by pasting
text into SQL); every stage, operator and field name is checked, and what is not supported is named.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from sharelake.domain.clock import parse_instant
from sharelake.domain.errors import Invalid
from sharelake.domain.views import (
    ACCUMULATORS,
    DATE_PARTS,
    EXPRESSIONS,
    LOGICAL,
    MATCH_OPERATORS,
    MAX_DEPTH,
    MAX_IN,
    MAX_QUERY_CHARS,
    MAX_STAGES,
    MAX_VARIABLE_CHARS,
    STAGES,
    UNITS,
    WEEKDAYS,
    Accumulator,
    Bound,
    Compare,
    Cond,
    Count,
    DatePart,
    DateTrunc,
    Doc,
    Exists,
    Expr,
    Field,
    Group,
    In,
    Instant,
    Limit,
    Literal,
    Logic,
    Match,
    Pipeline,
    Project,
    Skip,
    Sort,
    Stage,
    ToDate,
    Unbound,
)

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]{0,63})\}")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_JSON_INT = re.compile(r"-?(?:0|[1-9]\d*)")
_KEY = re.compile(r"[^.$\"\\\x00-\x1f][^.\"\\\x00-\x1f]{0,127}")
_SAFE_INT = 2**53


# -- loading and placeholders -------------------------------------------------------------------
def _bad(message: str, code: str = "invalid_view") -> Invalid:
    return Invalid(message, code=code)


def quote_bare_placeholders(text: str) -> str:
    """`{"$limit": ${n}}` → `{"$limit": "${n}"}`: a placeholder outside a JSON string becomes a whole-string
    placeholder (filled with a typed value later), so Microshare's textual form still parses as JSON."""
    out: list[str] = []
    i, in_string, n = 0, False, len(text)
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == "$" and (found := _PLACEHOLDER.match(text, i)):
            out.append(f'"{found.group(0)}"')
            i = found.end() - 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def load(query: Any) -> list[Any]:
    """`data.query`: a JSON array of stages, or a string holding that JSON (as Microshare stores it)."""
    if isinstance(query, str):
        if len(query) > MAX_QUERY_CHARS:
            raise _bad(f"data.query is longer than {MAX_QUERY_CHARS} characters")
        try:
            query = orjson.loads(quote_bare_placeholders(query))
        except orjson.JSONDecodeError as exc:
            raise _bad(f"data.query is not a valid JSON pipeline: {exc}") from None
    if isinstance(query, dict):
        query = [query]
    if not isinstance(query, list):
        raise _bad('data.query must be a pipeline: a JSON array of stages, e.g. [{"$match": {…}}]')
    if len(query) > MAX_STAGES:
        raise _bad(f"a pipeline has at most {MAX_STAGES} stages")
    return query


def typed(text: str) -> Any:
    """A variable's value as a whole JSON value: a number when it is written as a JSON number, else a string."""
    if _JSON_INT.fullmatch(text):
        value = int(text)
        return value if -_SAFE_INT < value < _SAFE_INT else Bound(text)
    if _JSON_NUMBER.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else Bound(text)
    return Bound(text)


def substitute(tree: Any, variables: Mapping[str, str] | None) -> Any:
    """Fill `${name}` in string values (keys never): a whole `"${x}"` becomes `typed(x)`; inside a longer
    string, the text. `variables=None` (checking at save time) leaves whole placeholders as `Unbound`."""

    def value_of(name: str) -> str:
        if variables is None:
            return "0"
        if name not in variables:
            raise Invalid(
                f"the view needs the query parameter {name!r} (it uses ${{{name}}})", code="missing_variable"
            )
        text = variables[name]
        if len(text) > MAX_VARIABLE_CHARS or "\x00" in text:
            raise Invalid(
                f"the parameter {name!r} is too long or holds a NUL character", code="invalid_parameter"
            )
        return text

    def walk(node: Any, depth: int = 0) -> Any:
        if depth > 4 * MAX_DEPTH:
            raise _bad("data.query is nested too deeply")
        if isinstance(node, int) and not isinstance(node, bool) and not -(2**63) <= node < 2**63:
            return float(node)  # as the databases hold it: beyond 64 bits a number is a double
        if isinstance(node, str):
            if "\x00" in node:
                raise _bad("a pipeline's strings cannot hold NUL characters")
            whole = _PLACEHOLDER.fullmatch(node)
            if whole:
                return Unbound(node) if variables is None else typed(value_of(whole.group(1)))
            if "${" in node:
                return _PLACEHOLDER.sub(lambda m: value_of(m.group(1)), node)
            return node
        if isinstance(node, dict):
            return {key: walk(value, depth + 1) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, depth + 1) for item in node]
        return node

    return walk(tree)


# -- parsing ------------------------------------------------------------------------------------
def parse(query: Any, variables: Mapping[str, str] | None = None) -> Pipeline:
    """The checked pipeline. `variables=None` checks a view being saved (placeholders stay unfilled)."""
    stages: list[Stage] = []
    has_limit = False
    for index, raw in enumerate(substitute(load(query), variables)):
        if not isinstance(raw, dict) or len(raw) != 1:
            raise _bad(f'stage {index + 1} must be an object with one stage name, e.g. {{"$match": {{…}}}}')
        ((name, arg),) = raw.items()
        if name not in STAGES:
            raise Invalid(
                f"the pipeline stage {name[:64]} is not supported (stage {index + 1}); "
                f"supported stages: {', '.join(STAGES)}",
                code="unsupported_stage",
            )
        has_limit = has_limit or name == "$limit"
        stages.append(_STAGE_PARSERS[name](arg))
    return Pipeline(tuple(stages), has_limit)


def _unsupported_operator(op: str, where: str, supported: tuple[str, ...]) -> Invalid:
    return Invalid(
        f"the operator {op[:64]} is not supported in {where}; supported: {', '.join(supported)}",
        code="unsupported_operator",
    )


def path(text: Any, where: str) -> Field:
    if isinstance(text, Bound | Unbound) or not isinstance(text, str):
        raise _bad(f"{where}: a field name must be a string")
    parts = tuple(text.split("."))
    if len(parts) > 16 or not all(_KEY.fullmatch(p) for p in parts):
        raise _bad(f"{where}: {text[:80]!r} is not a field path (names joined by dots, no $ at the start)")
    return Field(parts)


def _name(text: Any, where: str) -> str:
    field = path(text, where)
    if len(field.path) != 1:
        raise _bad(f"{where}: {text!r} must be a plain name, without dots")
    return field.path[0]


def _integer(value: Any, where: str, low: int) -> int:
    if isinstance(value, Unbound):
        return max(low, 1)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < low:
        raise _bad(f"{where} must be a whole number of at least {low}")
    return min(int(value), 10**12)


def _match(arg: Any) -> Match:
    return Match(_cond(arg, "$match", 0))


def _cond(doc: Any, where: str, depth: int) -> Cond:
    if depth > MAX_DEPTH:
        raise _bad(f"{where} is nested too deeply")
    if not isinstance(doc, dict):
        raise _bad(f'{where} takes an object of conditions, e.g. {{"data.temp": {{"$gt": 20}}}}')
    conds: list[Cond] = []
    for key, value in doc.items():
        if key.startswith("$"):
            if key not in LOGICAL:
                raise _unsupported_operator(key, "$match", LOGICAL + MATCH_OPERATORS)
            if not isinstance(value, list) or not value:
                raise _bad(f"{key} takes a non-empty array of conditions")
            conds.append(Logic(key, tuple(_cond(item, key, depth + 1) for item in value)))
        else:
            conds.append(_field_cond(path(key, "$match"), value, depth))
    return conds[0] if len(conds) == 1 else Logic("$and", tuple(conds))


def _is_operator_doc(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def _field_cond(field: Field, value: Any, depth: int) -> Cond:
    if not _is_operator_doc(value) or set(value) == {"$date"}:
        return Compare(field, "$eq", _scalar(value, field.name))
    conds: list[Cond] = []
    for op, arg in value.items():
        if op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
            conds.append(Compare(field, op, _scalar(arg, f"{field.name} {op}")))
        elif op in ("$in", "$nin"):
            if not isinstance(arg, list) or len(arg) > MAX_IN:
                raise _bad(f"{op} takes an array of at most {MAX_IN} values")
            conds.append(In(field, tuple(_scalar(v, f"{field.name} {op}") for v in arg), op == "$nin"))
        elif op == "$exists":
            if isinstance(arg, Unbound):
                arg = True
            if not isinstance(arg, bool | int):
                raise _bad("$exists takes true or false")
            conds.append(Exists(field, bool(arg)))
        elif op == "$not":
            if not _is_operator_doc(arg) or depth > MAX_DEPTH:
                raise _bad('$not takes an object of operators, e.g. {"$not": {"$gt": 5}}')
            conds.append(Logic("$not", (_field_cond(field, arg, depth + 1),)))
        else:
            raise _unsupported_operator(op, "$match", MATCH_OPERATORS)
    return conds[0] if len(conds) == 1 else Logic("$and", tuple(conds))


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, dict) and set(value) == {"$date"}:
        inner = value["$date"]
        if isinstance(inner, Unbound):
            return Instant(0)
        if isinstance(inner, int) and not isinstance(inner, bool):
            return Instant(inner)
        if isinstance(inner, str):
            return Instant(parse_instant(inner, name="$date"))
        raise _bad(f"{where}: $date takes ISO-8601 or epoch milliseconds")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise _bad(f"{where}: matching a whole object or array is not supported; match its fields instead")


def _sort(arg: Any) -> Sort:
    if not isinstance(arg, dict) or not arg:
        raise _bad('$sort takes an object of fields, e.g. {"tstamp": -1}')
    keys = []
    for key, direction in arg.items():
        if isinstance(direction, Unbound):
            direction = 1
        if direction not in (1, -1) or isinstance(direction, bool):
            raise _bad(f"$sort: {key!r} must be 1 (ascending) or -1 (descending)")
        keys.append((path(key, "$sort"), direction == -1))
    return Sort(tuple(keys))


def _limit(arg: Any) -> Limit:
    return Limit(_integer(arg, "$limit", 1))


def _skip(arg: Any) -> Skip:
    return Skip(_integer(arg, "$skip", 0))


def expr(value: Any, where: str, depth: int = 0) -> Expr:
    """An aggregation expression: "$field", a literal, an operator ({"$dateTrunc": …}) or a sub-document."""
    if depth > MAX_DEPTH:
        raise _bad(f"{where} is nested too deeply")
    if isinstance(value, Bound | Unbound):
        return Literal(str(value))
    if isinstance(value, str) and value.startswith("$"):
        if value.startswith("$$"):
            raise _bad(f"{where}: variables such as {value[:40]} are not supported")
        return path(value[1:], where)
    if isinstance(value, list):
        raise _bad(f"{where}: arrays are not supported in expressions")
    if not isinstance(value, dict):
        return Literal(value)
    if len(value) == 1 and next(iter(value)).startswith("$"):
        ((op, arg),) = value.items()
        return _operator(op, arg, where, depth)
    fields = []
    for key, item in value.items():
        fields.append((_name(key, where), expr(item, where, depth + 1)))
    if not fields:
        raise _bad(f"{where}: an empty object is not an expression")
    return Doc(tuple(fields))


def _operator(op: str, arg: Any, where: str, depth: int) -> Expr:
    if op == "$literal":
        return Literal(arg)
    if op == "$toDate":
        return ToDate(expr(arg, where, depth + 1))
    if op in DATE_PARTS:
        date = arg
        if isinstance(arg, dict) and not _is_operator_doc(arg):
            if "date" not in arg or set(arg) - {"date", "timezone"}:
                raise _bad(f'{op} takes a date, or {{"date": …, "timezone": "UTC"}}')
            _utc_only(arg, op)
            date = arg["date"]
        return DatePart(op, expr(date, where, depth + 1))
    if op == "$dateTrunc":
        if not isinstance(arg, dict) or "date" not in arg or "unit" not in arg:
            raise _bad('$dateTrunc takes {"date": "$tstamp", "unit": "hour", "binSize": 1}')
        extra = set(arg) - {"date", "unit", "binSize", "startOfWeek", "timezone"}
        if extra:
            raise _bad(f"$dateTrunc does not take {sorted(extra)[0]!r}")
        _utc_only(arg, op)
        unit = arg["unit"]
        if isinstance(unit, Unbound):
            unit = "hour"
        if unit not in UNITS:
            raise _bad(f"$dateTrunc unit must be one of {', '.join(UNITS)}")
        week_start = arg.get("startOfWeek", "sunday")
        week_start = "sunday" if isinstance(week_start, Unbound) else str(week_start).lower()
        day = next((d for d in WEEKDAYS if week_start in (d, d[:3])), None)
        if day is None:
            raise _bad(f"$dateTrunc startOfWeek must be a day of the week ({', '.join(WEEKDAYS)})")
        bin_size = _integer(arg.get("binSize", 1), "$dateTrunc binSize", 1)
        return DateTrunc(expr(arg["date"], where, depth + 1), unit, min(bin_size, 100_000), day)
    raise _unsupported_operator(op, where, EXPRESSIONS)


def _utc_only(arg: Any, op: str) -> None:
    zone = arg.get("timezone") if isinstance(arg, dict) else None
    if (
        zone is not None
        and not isinstance(zone, Unbound)
        and str(zone).upper() not in ("UTC", "Z", "+00:00", "GMT")
    ):
        raise _bad(f"{op}: only UTC is supported as a timezone")


def _project(arg: Any) -> Project:
    if not isinstance(arg, dict) or not arg:
        raise _bad('$project takes an object, e.g. {"temp": "$data.temp", "_id": 0}')
    included: list[tuple[str, Expr | bool]] = []
    excluded: list[str] = []
    for key, value in arg.items():
        name = path(key, "$project").name
        if isinstance(value, bool) or (isinstance(value, int | float) and not isinstance(value, Unbound)):
            if value:
                included.append((name, True))
            else:
                excluded.append(name)
        else:
            included.append((name, expr(value, f"$project {name}")))
    if excluded and included and excluded != ["_id"]:
        raise _bad(
            "$project either includes fields or excludes them (only _id may be excluded with inclusions)"
        )
    if included:
        return Project(keep=False, fields=tuple(included), drop=tuple(excluded))
    return Project(keep=True, fields=(), drop=tuple(excluded))


def _add_fields(arg: Any) -> Project:
    if not isinstance(arg, dict) or not arg:
        raise _bad('$addFields takes an object, e.g. {"celsius": "$data.temp"}')
    fields = tuple((path(k, "$addFields").name, expr(v, f"$addFields {k}")) for k, v in arg.items())
    return Project(keep=True, fields=fields, drop=())


def _unset(arg: Any) -> Project:
    names = [arg] if isinstance(arg, str) else arg
    if not isinstance(names, list) or not names:
        raise _bad('$unset takes a field name or an array of them, e.g. ["uplink", "data.raw"]')
    return Project(keep=True, fields=(), drop=tuple(path(n, "$unset").name for n in names))


def _group(arg: Any) -> Group:
    if not isinstance(arg, dict) or "_id" not in arg:
        raise _bad(
            '$group needs an _id (null for one group), e.g. {"_id": "$uplink.devEui", "n": {"$sum": 1}}'
        )
    key = expr(arg["_id"], "$group _id")
    accumulators = []
    for name, spec in arg.items():
        if name == "_id":
            continue
        _name(name, "$group")
        if not isinstance(spec, dict) or len(spec) != 1:
            raise _bad(f'$group {name}: give one accumulator, e.g. {{"$avg": "$data.temp"}}')
        ((op, value),) = spec.items()
        if op not in ACCUMULATORS:
            raise _unsupported_operator(op, "$group", ACCUMULATORS)
        if op == "$count":
            if value != {}:
                raise _bad(f"$group {name}: $count takes {{}}")
            accumulators.append(Accumulator(name, op, Literal(1)))
        else:
            accumulators.append(Accumulator(name, op, expr(value, f"$group {name}")))
    return Group(key, tuple(accumulators))


def _count(arg: Any) -> Count:
    return Count(_name(arg, "$count"))


_STAGE_PARSERS: dict[str, Any] = {
    "$match": _match,
    "$sort": _sort,
    "$limit": _limit,
    "$skip": _skip,
    "$project": _project,
    "$addFields": _add_fields,
    "$set": _add_fields,
    "$unset": _unset,
    "$group": _group,
    "$count": _count,
}
