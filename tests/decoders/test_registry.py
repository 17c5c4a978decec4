"""The decoder registry: built-ins and third parties register by name; unknown names are domain errors."""

from __future__ import annotations

import pytest

from sharelake.decoders import (
    JAVASCRIPT,
    CodecCache,
    DecodeResult,
    JavaScriptCodec,
    decoder_for,
    get,
    names,
    register,
)
from sharelake.decoders.registry import UnknownDecoder
from sharelake.domain.errors import Invalid
from sharelake.sandbox import JsHost
from tests.decoders.support import RECV_TIME


def test_builtins_are_registered() -> None:
    assert {"cayenne-lpp", "dragino-lht65", "elsys", "milesight-am307", "browan-tbhv100"} <= set(names())


def test_a_third_party_registers_through_the_same_door() -> None:
    @register("test-echo")
    def echo(payload: bytes, f_port: int, recv_time: object) -> DecodeResult:
        return DecodeResult(data={"hex": payload.hex(), "port": f_port})

    assert get("test-echo")(b"\x01", 7, RECV_TIME).data == {"hex": "01", "port": 7}
    assert "test-echo" in names()


def test_a_name_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("cayenne-lpp")(lambda p, f, t: DecodeResult())


def test_an_unknown_name_is_a_clear_domain_error() -> None:
    with pytest.raises(UnknownDecoder, match=r"no decoder named 'nope'.*cayenne-lpp") as caught:
        get("nope")
    assert isinstance(caught.value, Invalid)
    assert caught.value.code == "unknown_decoder"


def test_result_serialises_to_the_device_repository_shape() -> None:
    result = DecodeResult(data={"a": 1}, warnings=["w"])
    assert result.ok
    assert result.to_json() == {"data": {"a": 1}, "warnings": ["w"], "errors": []}
    assert DecodeResult(normalized={"x": 1}).to_json()["normalized"] == {"x": 1}
    failed = DecodeResult.failed("bad")
    assert not failed.ok
    assert failed.to_json() == {"data": {}, "warnings": [], "errors": ["bad"]}


def test_decoder_for_picks_a_registered_name_or_a_javascript_codec(host: JsHost) -> None:
    assert decoder_for("cayenne-lpp") is get("cayenne-lpp")
    with pytest.raises(UnknownDecoder, match=r"meta\.codec"):
        decoder_for(JAVASCRIPT)
    cache = CodecCache(host=host)
    codec = decoder_for(JAVASCRIPT, "function decodeUplink(i) { return {data: {n: i.fPort}}; }", cache=cache)
    assert isinstance(codec, JavaScriptCodec)
    assert codec(b"", 3, RECV_TIME).data == {"n": 3}
    cache.close()
