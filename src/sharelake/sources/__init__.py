"""The ways records come in, each a thin adapter onto the one insert door (`services.writes`): the HTTP
ingest door (`http`), the MQTT subscriber (`mqtt`, over `mqtt_client`) and the simulator (`simulate`,
which speaks to a server over HTTP like any network server)."""
