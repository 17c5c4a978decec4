"""sharelake: a self-hosted IoT data lake with a Microshare-compatible share API."""

__version__ = "0.1.0"
