"""`sharelake backup`: a consistent copy of an SQLite lake while it serves (SQLite's online backup)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from sharelake.cli.common import friendly, load_settings
from sharelake.storage.engine import normalize_url


@click.command()
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DESTINATION if it exists.")
@friendly
def backup(destination: Path, force: bool) -> None:
    """Copy the SQLite database to DESTINATION while the server keeps running."""
    settings = load_settings()
    url = make_url(normalize_url(settings.database_url))
    if not url.drivername.startswith("sqlite"):
        raise click.ClickException(
            "backup is for SQLite; back PostgreSQL up with pg_dump (or your host's snapshots)"
        )
    source_path = Path(url.database or "")
    if not source_path.exists():
        raise click.ClickException(f"no database at {source_path}")
    if destination.exists() and not force:
        raise click.ClickException(f"{destination} exists; use --force to overwrite it")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(partial)
    try:
        # Small steps let writers in between; the copy is still one consistent snapshot.
        source.backup(target, pages=1024, sleep=0.005)
        check = target.execute("PRAGMA integrity_check").fetchone()
        if not check or check[0] != "ok":
            raise click.ClickException(f"the copy failed its integrity check: {check}")
    finally:
        target.close()
        source.close()
    partial.replace(destination)
    size = destination.stat().st_size / (1024 * 1024)
    click.echo(
        f"backed up {source_path} to {destination} ({size:.1f} MiB in {time.monotonic() - started:.1f} s)"
    )
