"""Payload decoders: a registry of named decoders, Cayenne LPP, native device codecs and sandboxed JavaScript.

Importing the package registers the built-ins; `decoder_for` picks a device cluster's decoder (DESIGN §6).
"""

from __future__ import annotations

from sharelake.decoders.registry import Decoder, DecodeResult, UnknownDecoder, get, names, register

# isort: off
from sharelake.decoders import cayenne_lpp  # noqa: F401
from sharelake.decoders import browan_tbhv100  # noqa: F401
from sharelake.decoders import dragino_lht65  # noqa: F401
from sharelake.decoders import elsys  # noqa: F401
from sharelake.decoders import milesight_am307  # noqa: F401

# isort: on
from sharelake.decoders.js import CodecCache, CodecError, JavaScriptCodec

JAVASCRIPT = "javascript"


def decoder_for(
    unpacker: str, codec: str | None = None, *, cache: CodecCache | None = None, key: str | None = None
) -> Decoder:
    """A cluster's decoder from its `meta.unpacker` (and `meta.codec` when the unpacker is `javascript`).

    `key` is the cluster's identity in `cache`: a JavaScript codec is never shared between two clusters, even
    with the same source. Raises UnknownDecoder for a name nobody registered, or for `javascript` without a codec.
    """
    if unpacker == JAVASCRIPT:
        if not codec:
            raise UnknownDecoder("the javascript unpacker needs the codec's source in meta.codec")
        return cache.get(codec, key) if cache is not None else JavaScriptCodec(codec)
    return get(unpacker)


__all__ = [
    "JAVASCRIPT",
    "CodecCache",
    "CodecError",
    "DecodeResult",
    "Decoder",
    "JavaScriptCodec",
    "UnknownDecoder",
    "decoder_for",
    "get",
    "names",
    "register",
]
