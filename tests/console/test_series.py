"""The numbers a chart shows, from each kind of record (pure functions)."""

from __future__ import annotations

from sharelake.console import series


def test_numbers_from_data_nested_with_dots() -> None:
    record = {"data": {"t": 1.5, "ok": True, "name": "x", "acc": {"x": 1, "y": -2}, "list": [1, 2]}}
    assert series.numbers(record) == {"t": 1.5, "acc.x": 1, "acc.y": -2}


def test_numbers_from_a_known_uplink_are_its_decoded_payload_and_radio() -> None:
    record = {
        "data": {"uplink_message": {"f_cnt": 9}, "port": 2},
        "uplink": {"decoded": {"temperature": 21.5}, "gateways": [{"id": "g", "rssi": -90, "snr": 7.5}]},
    }
    assert series.numbers(record) == {"temperature": 21.5, "gateway.rssi": -90, "gateway.snr": 7.5}


def test_unpacked_records_leave_out_their_meta() -> None:
    record = {"data": {"temperature_1": -4.1, "meta": {"iot": {"fCnt": 3}, "source": {"id": "x"}}}}
    assert series.numbers(record) == {"temperature_1": -4.1}
    assert series.numbers({"data": {"meta": {"level": 3}}}) == {"meta.level": 3}


def test_depth_is_bounded() -> None:
    deep: dict[str, object] = {"v": 1}
    for _ in range(10):
        deep = {"d": deep}
    assert series.numbers({"data": deep}) == {}


def test_chart_aligns_series_on_time_oldest_first() -> None:
    records = [
        {"id": "b", "tstamp": 2000, "data": {"a": 2, "b": 5}},
        {"id": "a", "tstamp": 1000, "data": {"a": 1}},
    ]
    assert series.chart(records) == {
        "x": [1.0, 2.0],
        "axis": "stored time",
        "series": [{"label": "a", "values": [1, 2]}, {"label": "b", "values": [None, 5]}],
    }
    assert series.chart([{"id": "a", "tstamp": 1, "data": {"s": "text"}}]) is None


def test_the_most_common_fields_are_charted_first_and_capped() -> None:
    records = [{"id": str(i), "tstamp": i, "data": {f"f{j}": j for j in range(i + 1)}} for i in range(20)]
    chart = series.chart(records)
    assert chart is not None
    labels = [s["label"] for s in chart["series"]]
    assert len(labels) == series.MAX_CHARTED
    assert labels[:3] == ["f0", "f1", "f2"]


def test_uplinks_are_charted_at_their_device_time() -> None:
    # Forwarded late and out of order: the record stored first was heard last.
    late = {
        "id": "a",
        "tstamp": 5_000_000,
        "uplink": {"receivedAt": "1970-01-01T00:00:03.000Z", "decoded": {"t": 3}},
    }
    early = {
        "id": "b",
        "tstamp": 6_000_000,
        "uplink": {"receivedAt": "1970-01-01T00:00:02.500Z", "decoded": {"t": 2}},
    }
    assert series.chart([late, early]) == {
        "x": [2.5, 3.0],
        "axis": "device time (uplink receivedAt)",
        "series": [{"label": "t", "values": [2, 3]}],
    }


def test_records_without_a_device_time_fall_back_to_stored_time() -> None:
    records = [
        {"id": "a", "tstamp": 4000, "uplink": {"receivedAt": "1970-01-01T00:00:01Z", "decoded": {"t": 1}}},
        {"id": "b", "tstamp": 2000, "data": {"t": 2}},
        {"id": "c", "tstamp": 3000, "uplink": {"receivedAt": "not a time", "decoded": {"t": 3}}},
    ]
    chart = series.chart(records)
    assert chart is not None
    assert chart["x"] == [1.0, 2.0, 3.0]
    assert chart["series"][0]["values"] == [1, 2, 3]
    assert chart["axis"] == "device time (uplink receivedAt) where known, else stored time"
