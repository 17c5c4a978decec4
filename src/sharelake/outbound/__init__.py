"""Connections sharelake makes for its users (robots' HTTP; alert and stream targets to come), held to
one rule: never to a private, loopback, link-local or metadata address unless the operator allows it."""
