"""Entry point: `sharelake <command>`."""

from __future__ import annotations

import click

from sharelake import __version__
from sharelake.cli.accounts import app, token, user
from sharelake.cli.backup import backup
from sharelake.cli.counts import counts
from sharelake.cli.data import export, tail
from sharelake.cli.ingest_mqtt import ingest
from sharelake.cli.serve import serve, worker
from sharelake.cli.simulate import simulate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sharelake")
def cli() -> None:
    """sharelake: a self-hosted IoT data lake with a Microshare-compatible API.

    Settings come from SHARELAKE_* environment variables (see docs/configuration.md).
    """


for command in (serve, worker, user, app, token, ingest, simulate, tail, export, backup, counts):
    cli.add_command(command)


def main() -> None:
    cli()
