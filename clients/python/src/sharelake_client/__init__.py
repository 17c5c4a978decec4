"""A small typed client for sharelake's share API, which is Microshare's: the same code reads both."""

from sharelake_client._client import Client, Record, SharelakeError, When

__all__ = ["Client", "Record", "SharelakeError", "When"]
__version__ = "0.1.0"
