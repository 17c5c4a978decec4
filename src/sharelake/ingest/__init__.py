"""Network-server formats: pure functions from a raw JSON body to a normalised `Uplink`."""

from sharelake.ingest.registry import formats, parse, register
from sharelake.ingest.uplink import Gateway, Uplink

__all__ = ["Gateway", "Uplink", "formats", "parse", "register"]
