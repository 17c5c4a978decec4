"""Network-server formats: pure functions from a raw JSON body to a normalised `Uplink`.

Importing a format module registers its parser; the import order below is the detection order.
"""

from sharelake.ingest.registry import formats, parse, register
from sharelake.ingest.uplink import Gateway, Uplink

# Detection order: formats recognised by a wrapper key that no other format uses come first (ThingPark's
# `DevEUI_uplink`, The Things Stack's `end_device_ids`, ChirpStack v4's `deviceInfo`, Kerlink's
# `endDevice`); flat formats whose names others share (`EUI`, `devEui`, `port`, `data`) come last and
# need two of their keys to match. Each parser rejects a foreign body with a key lookup or two.
# isort: off
from sharelake.ingest import thingpark  # noqa: F401
from sharelake.ingest import tts  # noqa: F401
from sharelake.ingest import chirpstack  # noqa: F401
from sharelake.ingest import kerlink  # noqa: F401
from sharelake.ingest import ttn_v2  # noqa: F401
from sharelake.ingest import helium  # noqa: F401
from sharelake.ingest import loriot  # noqa: F401
from sharelake.ingest import senet  # noqa: F401
# isort: on

__all__ = ["Gateway", "Uplink", "formats", "parse", "register"]
