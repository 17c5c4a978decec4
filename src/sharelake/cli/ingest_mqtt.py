"""`sharelake ingest mqtt`: subscribe to a network server's MQTT broker and store every message in the lake."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal

import click

from sharelake.cli.common import friendly, open_lake, setup_logging
from sharelake.domain import records as wire
from sharelake.domain.errors import Invalid, Unauthenticated
from sharelake.sources.mqtt import Counts, MqttIngest
from sharelake.sources.mqtt_client import Broker, Options, Refused, Subscriber

log = logging.getLogger("sharelake.ingest.mqtt")


@click.group()
def ingest() -> None:
    """Take records in by other ways than HTTP."""


@ingest.command("mqtt")
@click.option(
    "--broker", "broker_url", required=True, help="mqtt://HOST[:1883], or mqtts://HOST[:8883] for TLS."
)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    required=True,
    help="Topic filter, repeatable: e.g. 'v3/+/devices/+/up' (The Things Stack), "
    "'application/+/device/+/event/up' (ChirpStack v4).",
)
@click.option("--rec-type", required=True, help="The recType the records go to.")
@click.option(
    "--token",
    envvar="SHARELAKE_PIPE_TOKEN",
    required=True,
    help="A pipe token of the account the records belong to (or SHARELAKE_PIPE_TOKEN).",
)
@click.option("--username", default=None, help="Broker username.")
@click.option(
    "--password",
    envvar="SHARELAKE_MQTT_PASSWORD",
    default=None,
    help="Broker password (or SHARELAKE_MQTT_PASSWORD).",
)
@click.option(
    "--qos",
    type=click.IntRange(0, 1),
    default=1,
    show_default=True,
    help="1: acknowledged after the record is committed (at least once); 0: nothing is resent.",
)
@click.option(
    "--client-id", default=None, help="MQTT client id (default: one derived from broker, topics and recType)."
)
@click.option(
    "--clean-session",
    is_flag=True,
    help="Start afresh each time; by default the broker keeps the session (and QoS 1 messages) while away.",
)
@click.option("--tag", "tags", multiple=True, help="Tag every record, repeatable.")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CA certificate(s) to trust for mqtts:// (default: the system's).",
)
@click.option(
    "--insecure", is_flag=True, help="mqtts:// without checking the broker's certificate (tests only)."
)
@click.option("--keepalive", type=click.IntRange(5, 3600), default=60, show_default=True, help="Seconds.")
@click.option(
    "--max-inflight",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Messages being stored at once.",
)
@friendly
def mqtt(
    broker_url: str,
    topics: tuple[str, ...],
    rec_type: str,
    token: str,
    username: str | None,
    password: str | None,
    qos: int,
    client_id: str | None,
    clean_session: bool,
    tags: tuple[str, ...],
    ca_file: str | None,
    insecure: bool,
    keepalive: int,
    max_inflight: int,
) -> None:
    """Subscribe to an MQTT broker and store each message as a record of RECTYPE.

    Messages take the same path as `POST /share/{recType}`: network-server detection, de-duplication and
    group commit. Stops on Ctrl-C or SIGTERM after storing the messages in flight.
    """
    setup_logging()
    try:
        broker = Broker.parse(broker_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--broker") from None
    if not broker.tls and (ca_file or insecure):
        raise click.BadParameter("--ca-file and --insecure are for mqtts:// brokers", param_hint="--broker")
    try:
        wire.check_rec_type(rec_type)
        wire.check_tags(tags)
    except Invalid as exc:
        raise click.UsageError(exc.message) from None
    user = username if username is not None else broker.username
    secret = password if password is not None else broker.password
    options = Options(
        client_id=client_id or default_client_id(broker, user, topics, rec_type),
        topics=topics,
        qos=qos,
        clean_session=clean_session,
        keepalive=keepalive,
        ca_file=ca_file,
        insecure=insecure,
    )
    lake = open_lake()
    lake.start_listening()
    ingest = MqttIngest(
        lake,
        Subscriber(broker, options, username=user, password=secret),
        secret=token,
        rec_type=rec_type,
        tags=tags,
        max_inflight=max_inflight,
    )
    try:
        asyncio.run(_run(ingest))
    except Refused as exc:
        raise click.ClickException(f"{broker}: {exc}") from None
    except Unauthenticated as exc:
        raise click.ClickException(
            f"the pipe token was refused ({exc.message}); stopped: what was not stored stays with the broker"
        ) from None
    finally:
        lake.close()
        click.echo(f"mqtt ingest stopped: {ingest.counts.summary()}")


def default_client_id(broker: Broker, username: str | None, topics: tuple[str, ...], rec_type: str) -> str:
    """Stable across restarts, so the broker's session (and what it queued meanwhile) is found again."""
    key = "|".join([broker.host, str(broker.port), username or "", rec_type, *sorted(topics)])
    return "sharelake-" + hashlib.sha256(key.encode()).hexdigest()[:12]


async def _run(ingest: MqttIngest) -> Counts:
    stop = asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            # A second Ctrl-C: stop waiting. What was not acknowledged stays with the broker.
            if main is not None:
                main.cancel()
            return
        log.info("stopping: finishing the messages in flight (Ctrl-C again to quit now)")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    try:
        return await ingest.run(stop)
    except asyncio.CancelledError:
        return ingest.counts
