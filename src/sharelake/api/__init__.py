"""HTTP layer only: parse, authorise, call a service, map errors, serialise."""
