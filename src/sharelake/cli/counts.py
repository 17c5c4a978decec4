"""`sharelake counts rebuild [--check]`: the record counters behind `totalCount`, verified or recounted."""

from __future__ import annotations

import click

from sharelake.cli.common import friendly, open_lake


@click.group()
def counts() -> None:
    """The per-(owner, recType) record counters that answer totalCount."""


@counts.command()
@click.option("--check", is_flag=True, help="Only compare the counters with the records; change nothing.")
@friendly
def rebuild(check: bool) -> None:
    """Recount the counters from the records (safe while ingest runs), or with --check verify them.

    Prints each counter that was wrong; with --check, exits 1 when any is."""
    lake = open_lake()
    try:
        drifts = lake.counts.check() if check else lake.counts.rebuild()
    finally:
        lake.close()
    for d in drifts:
        click.echo(f"{d.owner_user}\t{d.rec_type}\tcounted {d.counted}\tactual {d.actual}")
    if check:
        if drifts:
            raise click.ClickException(
                f"{len(drifts)} counter(s) disagree with the records; run `sharelake counts rebuild`"
            )
        click.echo("counters agree with the records")
    else:
        click.echo(f"counters rebuilt ({len(drifts)} were wrong)")
