"""Views over hostile values, on both databases: every operator the parser accepts runs through the HTTP
API over records holding huge, tiny, non-numeric, long and deeply nested values, and answers 200 or a
400 in the JSON error shape, never a 5xx. Date operators are checked against answers computed here:
null outside the years 1 to 9999, so SQLite and PostgreSQL agree. One set of records per backend."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.domain.clock import MAX_MS, MIN_MS, to_iso
from sharelake.domain.views import (
    ACCUMULATORS,
    DATE_PARTS,
    EXPRESSIONS,
    LOGICAL,
    MATCH_OPERATORS,
    STAGES,
    UNITS,
    WEEKDAYS,
)
from sharelake.settings import Settings
from sharelake.storage.engine import open_engine
from sharelake.storage.tables import documents
from tests.helpers import PASSWORD
from tests.live import account, live_server, sharelake_env

SOURCE = "io.fuzz.values"
VIEWS = "io.fuzz.views"
Y2K = 946_684_800_000
DAY = 86_400_000
UNIT_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": DAY, "week": 7 * DAY}

# Values as JSON literals, posted as written (records keep number literals as sent).
NUMBERS = [
    "1e300", "-1e20", "9223372036854775808", "-9223372036854775809", "9223372036854775807",
    "1.7976931348623157e308", "-1.7976931348623157e308", "5e-324", "1e-400", "1e-5000", "-0", "0",
    "12345678901234567890123", "0." + "1" * 20_000, "1" * 300 + "e-290", "-1", "-0.5", "1.5", "-1000.5",
    str(MIN_MS), str(MAX_MS), str(MIN_MS - 1), str(MAX_MS + 1), "-62135596800000.5", "253402300799999.9",
    "1767225600000", "1767225599999",
]  # fmt: skip
OTHERS = [
    '"NaN"', '"Infinity"', '"-Infinity"', '"1e300"', '""', json.dumps("x" * 100_000), '"2026-01-01T00:00:00Z"',
    '"\\u0000"', '"\\ud800"', "true", "false", "null", "{}", "[]", '{"a": {"b": 1e300}}', "[1e300, -1e20]",
    '{"a": ' * 300 + "1" + "}" * 300, "[" * 900 + "]" * 900, '{"a": ' * 5000 + "1" + "}" * 5000,
]  # fmt: skip
# Pipeline operands: numbers as Python reads them, and the rest.
OPERANDS: list[Any] = [
    1e300, -1e20, 9223372036854775808, -9223372036854775809, 9223372036854775807, 1.7976931348623157e308,
    5e-324, 0, -1, MIN_MS - 1, MAX_MS + 1, "NaN", "", "x" * 5000, True, False, None, [], [1e300],
    {"a": 1e300}, {"$date": 1e300}, {"$date": 9223372036854775807}, {"$date": "NaN"}, {"$date": MAX_MS + 1},
]  # fmt: skip
VARIABLES = [
    "1e300", "9223372036854775808", "-9223372036854775809", "1.7976931348623157e308", "1e999", "-1e20",
    "NaN", "Infinity", "", "-0", "0x10", "1e-400", "x" * 4096, "x" * 5000, "253402300800000", "true", "null",
]  # fmt: skip


@dataclass
class Lab:
    """A tenant's client (server errors come back as answers, to be counted, not raised) and its records."""

    client: TestClient
    headers: dict[str, str]
    values: dict[int, str] = field(default_factory=dict)  # record i → the literal its data.v holds
    problems: list[str] = field(default_factory=list)
    operators: set[str] = field(default_factory=set)

    def save(self, query: Any) -> str | None:
        _operators(query, self.operators)
        answer = self.client.post(f"/view/{VIEWS}", json={"name": "fuzz", "data": {"query": query}},
                                  headers=self.headers)  # fmt: skip
        if answer.status_code == 200:
            view_id: str = answer.json()["objs"][0]["id"]
            return view_id
        self._refused(f"save {_short(query)}", answer)
        return None

    def run(self, query: Any, **params: str) -> list[Any] | None:
        """The output documents, or None when the view was refused (as a 400 in the JSON error shape)."""
        view_id = self.save(query)
        if view_id is None:
            return None
        answer = self.client.get(f"/view/{VIEWS}/{view_id}/run", params={"recType": SOURCE, **params},
                                 headers=self.headers)  # fmt: skip
        if answer.status_code == 200:
            return [o["data"] for o in answer.json()["objs"]]
        self._refused(f"run {_short(query)} {_short(params)}", answer)
        return None

    def expect(self, label: str, got: Any, wanted: Any) -> None:
        if got != wanted:
            self.problems.append(f"{label}: got {_short(got)}, expected {_short(wanted)}")

    def _refused(self, label: str, answer: Any) -> None:
        if answer.status_code != 400:
            self.problems.append(f"{label}: {answer.status_code} {answer.text[:300]}")
            return
        error = answer.json().get("error", {})
        if not (isinstance(error.get("code"), str) and isinstance(error.get("message"), str)):
            self.problems.append(f"{label}: a 400 without the JSON error shape: {answer.text[:300]}")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 240 else text[:240] + "…"


def _operators(node: Any, into: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("$"):
                into.add(key)
            if isinstance(value, str) and value in (*EXPRESSIONS, *ACCUMULATORS):
                into.add(value)
            _operators(value, into)
    elif isinstance(node, list):
        for item in node:
            _operators(item, into)


@pytest.fixture
def lab(settings: Settings) -> Iterator[Lab]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        lake = client.app.state.lake  # type: ignore[attr-defined]
        user = lake.accounts.create_user("fuzz@acme.com", PASSWORD, None)
        app = lake.apps.create(user.id, "tests")
        answer = client.post("/oauth2/token", params={"username": user.email, "password": PASSWORD,
                                                      "client_id": app.id, "grant_type": "password"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        lab = Lab(client, {"Authorization": f"Bearer {answer.json()['access_token']}"})
        for i, literal in enumerate([*NUMBERS, *OTHERS]):
            posted = client.post(f"/share/{SOURCE}", content=f'{{"i": {i}, "v": {literal}}}',
                                 headers={**lab.headers, "Content-Type": "application/json"})  # fmt: skip
            if posted.status_code == 200:
                lab.values[i] = literal
            else:
                lab._refused(f"ingest {literal[:60]}", posted)
        missing = client.post(f"/share/{SOURCE}", json={"i": -1}, headers=lab.headers)
        assert missing.status_code == 200, missing.text
        lab.values[-1] = ""  # a record without data.v
        assert all(i in lab.values for i in range(len(NUMBERS))), "every hostile number must be stored"
        yield lab


# -- what the date operators must answer, computed here -----------------------------------------
def instant(literal: str) -> int | None:
    """The epoch milliseconds a JSON value stands for: a number of the years 1 to 9999, truncated."""
    if not literal:
        return None
    try:
        value = json.loads(literal, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, Decimal) and MIN_MS - 1 < value < MAX_MS + 1:
        return int(value)
    return None


def moment(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def part(op: str, ms: int | None) -> int | None:
    if ms is None:
        return None
    t = moment(ms)
    return {
        "$year": t.year, "$month": t.month, "$dayOfMonth": t.day, "$hour": t.hour, "$minute": t.minute,
        "$second": t.second, "$dayOfWeek": t.isoweekday() % 7 + 1, "$dayOfYear": t.timetuple().tm_yday,
    }[op]  # fmt: skip


def truncated(ms: int | None, unit: str, bin_size: int, start_of_week: str = "sunday") -> str | None:
    """MongoDB's $dateTrunc (bins aligned on 2000-01-01), null when the bin would start before year 1."""
    if ms is None:
        return None
    if unit in UNIT_MS:
        ref = Y2K + (1 + WEEKDAYS.index(start_of_week)) * DAY if unit == "week" else Y2K
        begin = ms - (ms - ref) % (UNIT_MS[unit] * bin_size)
        return to_iso(begin) if begin >= MIN_MS else None
    t = moment(ms)
    months = bin_size * (12 if unit == "year" else 1)
    index = (t.year - 2000) * 12 + t.month - 1
    start = index - index % months
    if start < (1 - 2000) * 12:
        return None
    first = datetime(2000 + start // 12, start % 12 + 1, 1, tzinfo=UTC)
    return to_iso(int((first - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1)))


def date_cases() -> list[tuple[str, Any, Any]]:
    """(label, expression over "$data.v", the answer for an instant)."""
    cases: list[tuple[str, Any, Any]] = [
        ("$toDate", {"$toDate": "$data.v"}, lambda ms: None if ms is None else to_iso(ms))
    ]
    for op in DATE_PARTS:
        cases.append((op, {op: "$data.v"}, lambda ms, op=op: part(op, ms)))
        cases.append(
            (f"{op} UTC", {op: {"date": "$data.v", "timezone": "UTC"}}, lambda ms, op=op: part(op, ms))
        )
        cases.append((f"{op} of $toDate", {op: {"$toDate": "$data.v"}}, lambda ms, op=op: part(op, ms)))
    for unit in UNITS:
        for bin_size in (1, 5, 100_000):
            spec = {"date": "$data.v", "unit": unit, "binSize": bin_size}
            cases.append((f"$dateTrunc {unit} {bin_size}", {"$dateTrunc": spec},
                          lambda ms, u=unit, b=bin_size: truncated(ms, u, b)))  # fmt: skip
    monday = {"date": "$data.v", "unit": "week", "startOfWeek": "mon", "timezone": "UTC"}
    cases.append(("$dateTrunc monday", {"$dateTrunc": monday}, lambda ms: truncated(ms, "week", 1, "monday")))
    return cases


def test_date_operators_are_null_outside_the_years_1_to_9999(lab: Lab) -> None:
    instants = {i: instant(literal) for i, literal in lab.values.items()}
    for label, expression, answer in date_cases():
        query = [{"$project": {"_id": 0, "i": "$data.i", "r": expression}}, {"$sort": {"i": 1}}]
        got = lab.run(query)
        wanted = [{"i": i, "r": answer(instants[i])} for i in sorted(lab.values)]
        lab.expect(label, got, wanted)
    # Grouped by a date part: out-of-range and non-numbers fall in the null group.
    years = lab.run([{"$group": {"_id": {"$year": "$data.v"}, "n": {"$sum": 1}}}])
    counted = Counter(part("$year", ms) for ms in instants.values())
    lab.expect("$group by $year", sorted((d["_id"] or 0, d["n"]) for d in years or []),
               sorted((y or 0, n) for y, n in counted.items()))  # fmt: skip
    # Constants in the pipeline follow the same rule.
    for literal in ["1e300", "-1e20", "9223372036854775808", str(MIN_MS), str(MAX_MS), str(MAX_MS + 1), "-1"]:
        value = json.loads(literal)
        ms = instant(literal)
        for op in ("$toDate", "$year", "$dayOfWeek"):
            got = lab.run([{"$limit": 1}, {"$project": {"_id": 0, "r": {op: {"$literal": value}}}}])
            wanted = None if ms is None else (to_iso(ms) if op == "$toDate" else part(op, ms))
            lab.expect(f"{op} of the constant {literal}", got, [{"r": wanted}])
        spec = {"date": value, "unit": "week", "binSize": 3}
        got = lab.run([{"$limit": 1}, {"$project": {"_id": 0, "r": {"$dateTrunc": spec}}}])
        lab.expect(f"$dateTrunc of the constant {literal}", got, [{"r": truncated(ms, "week", 3)}])
    assert not lab.problems, "\n".join(lab.problems)


def test_every_operator_over_hostile_values_answers_200_or_400(lab: Lab) -> None:
    fields = ["data.v", "data.v.a", "createDate", "tstamp", "data"]
    # $match: every operator against every hostile operand; the numbers in one view per field (they
    # are all valid), the others one by one (some are refused, which must not hide the rest).
    numbers = [x for x in OPERANDS if isinstance(x, int | float) and not isinstance(x, bool)]
    others = [x for x in OPERANDS if x not in numbers]
    for op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
        for name in fields[:4]:
            lab.run([{"$match": {"$or": [{name: {op: x}} for x in numbers]}}, {"$count": "n"}])
        lab.run([{"$match": {"$nor": [{"data.v": {"$not": {op: x}}} for x in numbers]}}, {"$count": "n"}])
        for operand in others:
            for name in ("data.v", "createDate"):
                lab.run([{"$match": {name: {op: operand}}}, {"$count": "n"}])
    for op in ("$in", "$nin"):
        lab.run([{"$match": {"data.v": {op: OPERANDS}}}, {"$count": "n"}])
        lab.run([{"$match": {"tags": {op: ["", "x" * 5000]}}}, {"$count": "n"}])
        lab.run([{"$match": {"createDate": {op: [1e300, {"$date": MAX_MS}]}}}, {"$count": "n"}])
    for operand in (True, False, 1e300, "x", None, 9223372036854775808):
        lab.run([{"$match": {"data.v": {"$exists": operand}}}, {"$count": "n"}])
    for op in LOGICAL:
        lab.run([{"$match": {op: [{"data.v": {"$gt": 1e300}}, {"data.v": -1e20}]}}, {"$count": "n"}])
        lab.run([{"$match": {op: [{"data.v": {"$lt": OPERANDS[0]}}] * 50}}, {"$count": "n"}])
    lab.run([{"$match": {"data.v": 1e300}}])  # whole records out, every hostile value served
    # Accumulators, over the hostile field and over hostile constants.
    for op in ACCUMULATORS:
        arg: Any = {} if op == "$count" else "$data.v"
        for key in (None, "$data.v", {"$dateTrunc": {"date": "$data.v", "unit": "year", "binSize": 1000}}):
            lab.run([{"$group": {"_id": key, "a": {op: arg}}}, {"$sort": {"a": 1}}])
        for constant in (9223372036854775807, -9223372036854775809, 1.7976931348623157e308, 1e300, "x", None):
            lab.run([{"$group": {"_id": None, "a": {op: {} if op == "$count" else constant}}}])
        lab.run([{"$group": {"_id": "$data.i", "a": {op: arg}}}, {"$match": {"a": {"$gt": 1e300}}}])
    # A sum past a double's range is null (JSON has no infinity), not an error.
    too_big = [{"$group": {"_id": None, "s": {"$sum": 1.7976931348623157e308}}}, {"$project": {"_id": 0}}]
    lab.expect("a $sum beyond a double", lab.run(too_big), [{"s": None}])
    # Expressions in every place they go; $literal of every hostile operand.
    for operand in OPERANDS:
        lab.run([{"$project": {"_id": 0, "x": {"$literal": operand}, "v": "$data.v"}}])
        lab.run(
            [{"$addFields": {"x": {"$literal": operand}}}, {"$group": {"_id": "$x", "n": {"$count": {}}}}]
        )
        lab.run([{"$project": {"_id": 0, "r": {"$toDate": operand}}}])
        lab.run(
            [
                {
                    "$project": {
                        "_id": 0,
                        "r": {"$dateTrunc": {"date": "$data.v", "unit": "day", "binSize": operand}},
                    }
                }
            ]
        )
    for op in (*DATE_PARTS, "$toDate"):
        lab.run([{"$set": {"d": {op: "$tstamp"}}}, {"$match": {"d": {"$gt": 1e300}}}, {"$unset": "d"}])
        lab.run([{"$group": {"_id": {op: "$data.v"}, "n": {"$sum": 1}}}, {"$sort": {"_id": -1}}])
        lab.run([{"$project": {"_id": 0, "r": {op: {"$toDate": {"$year": "$data.v"}}}}}])
    # Stages with hostile arguments.
    for value in (1e300, 9223372036854775808, -1, 0, 1.5, "x", None, True, {}, []):
        lab.run([{"$limit": value}])
        lab.run([{"$skip": value}, {"$limit": 1}])
        lab.run([{"$sort": {"data.v": value}}])
        lab.run([{"$count": value}])
        lab.run([{"$unset": value}])
        lab.run([{"$project": {"data.v": value}}])
    for name in fields:
        for direction in (1, -1):
            lab.run(
                [
                    {"$sort": {name: direction}},
                    {"$skip": 1},
                    {"$limit": 1000},
                    {"$project": {"v": f"${name}"}},
                ]
            )
    lab.run([{"$skip": 10**12}, {"$skip": 10**12}, {"$limit": 10**12}])
    lab.run([{"$addFields": {"data.v.x": 1}}, {"$unset": ["data.v.a.b", "data.v"]}, {"$count": "n"}])
    # Variables filled with hostile text, in every kind of place.
    with_variables: list[Any] = [
        [{"$match": {"data.v": {"$gt": "${x}"}}}, {"$count": "n"}],
        [{"$match": {"createDate": {"$gte": "${x}"}}}, {"$count": "n"}],
        [{"$match": {"createDate": {"$lt": {"$date": "${x}"}}}}, {"$count": "n"}],
        '[{"$limit": ${x}}, {"$skip": ${x}}]',
        [{"$project": {"_id": 0, "r": {"$toDate": "${x}"}, "y": {"$year": "${x}"}}}, {"$limit": 1}],
        [{"$project": {"r": {"$dateTrunc": {"date": "$data.v", "unit": "${x}", "binSize": "${x}"}}}}],
        [{"$project": {"r": {"$dateTrunc": {"date": "$tstamp", "unit": "week", "startOfWeek": "${x}"}}}}],
        [{"$group": {"_id": "${x}", "s": {"$sum": "${x}"}, "m": {"$max": "${x}"}}}],
        [{"$project": {"_id": 0, "r": {"$literal": "${x}"}, "t": "a${x}"}}, {"$limit": 1}],
    ]
    for query in with_variables:
        view_id = lab.save(query)
        for text in VARIABLES:
            if view_id is not None:
                answer = lab.client.get(f"/view/{VIEWS}/{view_id}/run", params={"recType": SOURCE, "x": text},
                                        headers=lab.headers)  # fmt: skip
                if answer.status_code != 200:
                    lab._refused(f"run {_short(query)} x={text[:40]}", answer)
    supported = {*STAGES, *MATCH_OPERATORS, *LOGICAL, *ACCUMULATORS, *EXPRESSIONS}
    assert supported <= lab.operators | {"$date"}, f"not fuzzed: {sorted(supported - lab.operators)}"
    assert not lab.problems, "\n".join(lab.problems)


def test_a_server_error_closes_the_connection_and_the_server_answers_on(
    database_url: str, tmp_path: Path
) -> None:
    """A 500 says `Connection: close` (the server drops the connection after it), and the next request,
    on a new connection, is answered. The 500 comes from a view stored behind the API's back, its data not an object."""
    env = sharelake_env(database_url, tmp_path)
    _key, token = account(env, "broken@acme.com", PASSWORD)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with live_server(env, tmp_path / "serve.log", "--no-worker") as server:
        address = urlparse(server.url)
        conn = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
        body = json.dumps({"name": "v", "data": {"query": [{"$count": "n"}]}})
        conn.request("POST", f"/view/{VIEWS}", body=body, headers=headers)
        saved = conn.getresponse()
        view_id = json.loads(saved.read())["objs"][0]["id"]
        engine = open_engine(database_url)
        try:
            with engine.begin() as db:
                db.execute(update(documents).where(documents.c.id == view_id).values(data="[]"))
        finally:
            engine.dispose()
        conn.request("GET", f"/view/{VIEWS}/{view_id}/run", headers=headers)  # the same kept-alive connection
        failed = conn.getresponse()
        assert failed.status == 500
        assert failed.getheader("Connection") == "close"
        assert json.loads(failed.read())["error"]["code"] == "internal_error"
        conn.close()
        again = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
        again.request("GET", f"/share/{SOURCE}", headers=headers)
        listed = again.getresponse()
        assert listed.status == 200
        assert json.loads(listed.read())["objs"] == []
        again.close()
