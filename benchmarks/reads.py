"""Reads: `GET /share/{recType}` over a large data set — first page, a page at depth by `cursor` and by
`page`, with and without `totalCount` — for the owner alone, then for a reader who also sees the data
of 100 owners who share with them by rules.

The data set: the reader owns `records` records of one recType; 100 other owners own a tenth as many
more, interleaved in time (every 11th record). Server time is the service call in this process
(`list_query` + `Shares.list_json`, i.e. parse, visibility, SQL and serialisation — everything but
HTTP); wall time goes through HTTP to a `sharelake serve` process. The owner's figures stand next to
the same page as one raw SQL statement; the shared reader's next to the owner's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from benchmarks.common import Account, Bench, Row, Server, Target, at_most, log, timed
from sharelake.domain.clock import to_iso
from sharelake.domain.records import checksum, encode_cursor
from sharelake.web.params import list_query

SECTION = "reads"
REC_TYPE = "io.bench.reads"
PER_PAGE = 100
SHARERS = 100
BLOCK = 11  # of every 11 records, 10 are the reader's and 1 is a sharer's
STEP_MS = 10
KEYSET_TARGET = at_most(2.0, "ms")
COLUMNS = (
    "id", "rec_type", "owner_user", "owner_org", "owner_app", "owners", "data", "tags", "name", "desc",
    "checksum", "tstamp", "updated", "creator", "updater", "token_id", "remote_ip", "network", "dev_eui",
    "f_port", "f_cnt", "received_at", "frame_key", "uplink",
)  # fmt: skip
_JSON_COLUMNS = {"owners", "data", "tags", "uplink"}
_SEED_CHUNK = 50_000


@dataclass(frozen=True)
class DataSet:
    reader: Account
    sharers: list[Account]
    own: int  # records the reader owns
    t0: int  # tstamp of record 0; record i is at t0 + i * STEP_MS

    @property
    def blocks(self) -> int:
        return self.own // (BLOCK - 1)

    @property
    def total(self) -> int:
        return self.blocks * BLOCK

    @property
    def depth(self) -> int:
        """The deep page starts after this many records (half the reader's own, whole pages)."""
        return self.own // 2 // PER_PAGE * PER_PAGE

    def key(self, i: int) -> tuple[int, str]:
        """(tstamp, id) of record i, in the order every list follows."""
        tstamp = self.t0 + i * STEP_MS
        return tstamp, ((tstamp // 1000).to_bytes(4, "big") + i.to_bytes(8, "big")).hex()

    @staticmethod
    def own_index(k: int) -> int:
        """The record number of the reader's k-th own record."""
        return k // (BLOCK - 1) * BLOCK + k % (BLOCK - 1)

    def owner_of(self, i: int) -> Account:
        return self.sharers[i // BLOCK % SHARERS] if i % BLOCK == BLOCK - 1 else self.reader


def make(bench: Bench) -> DataSet:
    """The accounts and layout of the data set (no records yet: see `seed`)."""
    reader = bench.account("reader@bench.example", "example.bench.reader")
    sharers = [bench.account(f"owner{n:03d}@bench.example", "example.bench.partner") for n in range(SHARERS)]
    own = max(bench.options.records // (BLOCK - 1) * (BLOCK - 1), 2 * PER_PAGE * (BLOCK - 1))
    blocks = own // (BLOCK - 1)
    t0 = int(time.time() * 1000) - (blocks * BLOCK + 1000) * STEP_MS
    return DataSet(reader, sharers, own, t0)


def _rows(data: DataSet, start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    """Records shaped as `Shares.prepare` shapes them; every other one a The Things Stack uplink."""
    for i in range(start, stop):
        tstamp, record_id = data.key(i)
        owner = data.owner_of(i)
        body = f'{{"device":"sensor-{i % 500}","seq":{i},"temp":{20 + i % 100 / 10},"hum":{40 + i % 30}}}'
        uplink = dev_eui = None
        if i % 2:
            dev_eui = f"{0x70B3D57ED0000000 + i % 500:016X}"
            uplink = (
                f'{{"network":"tts","devEui":"{dev_eui}","fPort":2,"fCnt":{i},"payloadHex":"0167FFD7026850",'
                f'"receivedAt":"{to_iso(tstamp)}","gateways":[{{"id":"B827EBFFFE8A1C2D","rssi":-97,"snr":7.2}}]}}'
            )
        yield (
            record_id, REC_TYPE, owner.email, owner.principal.org, owner.app_id, "[]", body, "[]", "", "",
            checksum(body), tstamp, tstamp, owner.email, owner.email, None, "127.0.0.1",
            "tts" if uplink else None, dev_eui, 2 if uplink else None, i if uplink else None,
            tstamp if uplink else None, None, uplink,
        )  # fmt: skip


def seed(bench: Bench, data: DataSet) -> float:
    """Write the data set straight into the records table (COPY on PostgreSQL, executemany on SQLite),
    then rebuild the record counters; returns records/s of the load. PostgreSQL is then vacuumed and analysed, as autovacuum would after such a load;
    SQLite is left as sharelake leaves it (it never runs ANALYZE)."""
    engine = bench.lake.engine
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        if bench.db.kind == "postgresql":
            conn = raw.driver_connection
            assert conn is not None
            with conn.cursor() as cur, cur.copy(f"COPY records ({names}) FROM STDIN") as copy:
                for row in _rows(data, 0, data.total):
                    copy.write_row(row)
            conn.commit()
        else:
            sql = f"INSERT INTO records ({names}) VALUES ({', '.join('?' * len(COLUMNS))})"
            cur = raw.cursor()
            for start in range(0, data.total, _SEED_CHUNK):
                cur.execute("BEGIN")
                cur.executemany(sql, list(_rows(data, start, min(start + _SEED_CHUNK, data.total))))
                cur.execute("COMMIT")
            cur.close()
    finally:
        raw.close()
    rate = data.total / (time.perf_counter() - started)
    # Rows that went around the record door: their counters are recounted as an operator would.
    started = time.perf_counter()
    bench.lake.counts.rebuild()
    log(f"counts rebuilt over {data.total:,} records in {time.perf_counter() - started:.1f} s")
    if bench.db.kind == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE records")
    return rate


# -- the reads ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Read:
    name: str
    params: Mapping[str, str]
    first: int  # record number expected first on the page
    count: bool
    sql: str | None = None  # the owner's raw-SQL baseline
    sql_params: Mapping[str, Any] | None = None


def _select(bench: Bench) -> str:
    pg = bench.db.kind == "postgresql"
    cols = ", ".join(
        f'"{c}"::text' if pg and c in _JSON_COLUMNS else f'"{c}"' for c in COLUMNS if c != "frame_key"
    )
    return f"SELECT {cols} FROM records WHERE owner_user = :o AND rec_type = :r"


def _reads(bench: Bench, data: DataSet, *, shared: bool) -> list[Read]:
    depth = data.depth
    deep_first = depth if shared else data.own_index(depth)
    tstamp, record_id = data.key(deep_first - 1 if shared else data.own_index(depth - 1))
    cursor = encode_cursor(tstamp, record_id)
    page = str(depth // PER_PAGE + 1)
    first_first = 0
    base = {"perPage": str(PER_PAGE)}
    select = _select(bench)
    order = f"ORDER BY tstamp, id LIMIT {PER_PAGE + 1}"
    keyset = f"{select} AND (tstamp > :t OR (tstamp = :t AND id > :i)) {order}"
    owner = {"o": data.reader.email, "r": REC_TYPE}
    at = {**owner, "t": tstamp, "i": record_id}
    reads = []
    for count in (False, True):
        flag = {} if count else {"count": "false"}
        label = " + totalCount" if count else ""
        reads += [
            Read(f"first page{label}", {**base, **flag}, first_first, count, f"{select} {order}", owner),
            Read(f"cursor page at depth {depth:,}{label}", {**base, **flag, "cursor": cursor}, deep_first,
                 count, keyset, at),
            Read(f"page={page} (offset {depth:,}){label}", {**base, **flag, "page": page}, deep_first, count,
                 f"{select} {order} OFFSET {depth}", owner),
        ]  # fmt: skip
    return reads


def _check(body: bytes, data: DataSet, read: Read, visible: int) -> None:
    answer = orjson.loads(body)
    objs = answer["objs"]
    expected = data.key(read.first)[1]
    if len(objs) != PER_PAGE or objs[0]["id"] != expected:
        raise RuntimeError(f"{read.name}: expected {PER_PAGE} records from {expected}, got {body[:300]!r}")
    if read.count and answer["meta"]["totalCount"] != visible:
        raise RuntimeError(f"{read.name}: totalCount {answer['meta']['totalCount']}, expected {visible}")


def _measure(
    bench: Bench, data: DataSet, server: Server, read: Read, visible: int
) -> tuple[float, float, float | None]:
    """(server ms, HTTP ms, raw SQL ms or None) of one read."""
    lake = bench.lake
    principal = data.reader.principal
    budget = bench.options.read_budget

    def service() -> bytes:
        return lake.shares.list_json(principal, list_query(read.params, REC_TYPE, []))

    server_s, body = timed(service, budget)
    _check(body, data, read, visible)
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {data.reader.bearer}"}, timeout=600
    ) as client:

        def over_http() -> bytes:
            response = client.get(f"/share/{REC_TYPE}", params=dict(read.params))
            response.raise_for_status()
            return response.content

        http_s, body = timed(over_http, budget)
        _check(body, data, read, visible)
    raw_s = None
    if read.sql is not None:
        statement = text(read.sql)
        counting = text("SELECT count(*) FROM records WHERE owner_user = :o AND rec_type = :r")

        def raw() -> None:
            with lake.engine.connect() as conn:
                conn.execute(statement, dict(read.sql_params or {})).fetchall()
                if read.count:
                    conn.execute(counting, {"o": data.reader.email, "r": REC_TYPE}).scalar()

        raw_s, _ = timed(raw, budget)
    return server_s * 1000, http_s * 1000, raw_s * 1000 if raw_s is not None else None


def _target(read: Read) -> Target | None:
    # The ≤ 2 ms contract is for keyset pages (first page or cursor) without a count.
    return KEYSET_TARGET if not read.count and "offset" not in read.name else None


def owner_only(bench: Bench, data: DataSet, server: Server) -> tuple[list[Row], dict[str, float]]:
    """The reader's own records only (no rules yet). Returns the rows and server ms by read name."""
    log(f"{bench.db.title}: reads — owner only ({data.own:,} visible of {data.total:,})")
    rows: list[Row] = []
    by_name: dict[str, float] = {}
    for read in _reads(bench, data, shared=False):
        server_ms, http_ms, raw_ms = _measure(bench, data, server, read, data.own)
        by_name[read.name] = server_ms
        rows.append(
            Row(SECTION, f"owner: {read.name}", server_ms, "ms", raw_ms, "raw SQL", _target(read),
                f"server time; HTTP wall {http_ms:.2f} ms")
        )  # fmt: skip
    return rows, by_name


def share(bench: Bench, data: DataSet, server: Server) -> None:
    """Each of the 100 owners grants the reader Read on the recType, through the server's API (so the
    server under test hears of the rules at once); this process's own rule snapshot is dropped."""
    body = {"name": "bench", "desc": "", "data": {"operations": ["Read"], "callingUser": data.reader.email}}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for owner in data.sharers:
            response = client.post(
                f"/rule/{REC_TYPE}", json=body, headers={"Authorization": f"Bearer {owner.bearer}"}
            )
            response.raise_for_status()
    bench.lake.sharing.invalidate()


def shared(bench: Bench, data: DataSet, server: Server, owner_ms: Mapping[str, float]) -> list[Row]:
    """The reader again, now also seeing the 100 owners' records; next to the owner-only figures."""
    log(f"{bench.db.title}: reads — own data + {SHARERS} owners' shared data ({data.total:,} visible)")
    rows = []
    for read, own_read in zip(
        _reads(bench, data, shared=True), _reads(bench, data, shared=False), strict=True
    ):
        server_ms, http_ms, _ = _measure(bench, data, server, read, data.total)
        rows.append(
            Row(SECTION, f"shared: {read.name}", server_ms, "ms", owner_ms[own_read.name], "owner only",
                _target(read), f"server time; HTTP wall {http_ms:.2f} ms")
        )  # fmt: skip
    return rows
