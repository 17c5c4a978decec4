"""Connections sharelake makes for its users (robots' HTTP; outbound streams' webhook, MQTT and NATS
targets; alerts' webhook and MQTT channels), held to one rule: never to a private, loopback,
link-local or metadata address unless the operator allows it."""
