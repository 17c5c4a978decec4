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
