"""The `sharelake` command: one module per command group."""
