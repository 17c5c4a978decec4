"""`sharelake tail` and `sharelake export`: a running sharelake's data, from a shell, over HTTP."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import httpx
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

URL = click.option("--url", envvar="SHARELAKE_URL", default="http://127.0.0.1:8000", show_default=True,
                   help="The sharelake server (env SHARELAKE_URL).")  # fmt: skip
TOKEN = click.option("--token", envvar="SHARELAKE_TOKEN", required=True,
                     help="A token with SHARE:READ (env SHARELAKE_TOKEN).")  # fmt: skip


def _fail(response: httpx.Response) -> click.ClickException:
    try:
        error = response.json()["error"]
        return click.ClickException(f"{response.status_code} {error['code']}: {error['message']}")
    except (ValueError, KeyError, TypeError):
        return click.ClickException(f"{response.status_code}: {response.text[:200]}")


@click.command()
@click.argument("rec_type")
@URL
@TOKEN
@click.option("--json", "as_json", is_flag=True, help="Print each record's full JSON on one line.")
def tail(rec_type: str, url: str, token: str, as_json: bool) -> None:
    """Show new records of REC_TYPE as they arrive (the live stream); reconnects without gaps."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    last_id: str | None = None
    backoff = 1.0
    with httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=60)) as client:
        while True:
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with client.stream("GET", f"/share/{rec_type}/stream", headers=headers) as response:
                    if response.status_code != 200:
                        response.read()
                        raise _fail(response)
                    backoff = 1.0
                    event_id = data = None
                    for line in response.iter_lines():
                        if line.startswith("id: "):
                            event_id = line[4:]
                        elif line.startswith("data: "):
                            data = line[6:]
                        elif line == "" and data is not None:
                            if event_id:
                                last_id = event_id
                            _show(data, as_json)
                            event_id = data = None
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                click.echo(
                    f"connection lost ({exc.__class__.__name__}); reconnecting in {backoff:.0f}s", err=True
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, 30)
            except KeyboardInterrupt:
                return


def _show(data: str, as_json: bool) -> None:
    if as_json:
        click.echo(data)
        return
    record = orjson.loads(data)
    if "error" in record:
        raise click.ClickException(record["error"]["message"])
    uplink = record.get("uplink") or {}
    device = f" {uplink['devEui']} fCnt={uplink.get('fCnt')}" if uplink.get("devEui") else ""
    click.echo(f"{record['createDate']} {record['id']}{device} {orjson.dumps(record['data']).decode()}")


@click.command()
@click.argument("rec_type")
@URL
@TOKEN
@click.option("--format", "fmt", type=click.Choice(["csv", "ndjson"]), default="csv", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@click.option("--from", "t_from", help="Only records at or after this time (ISO-8601 or epoch ms).")
@click.option("--to", "t_to", help="Only records at or before this time.")
@click.option("--dev-eui", help="Only uplinks of this device.")
def export(rec_type: str, url: str, token: str, fmt: str, output: Path | None,
           t_from: str | None, t_to: str | None, dev_eui: str | None) -> None:  # fmt: skip
    """Download every record of REC_TYPE you may see, as CSV or NDJSON, with a progress bar."""
    params = {k: v for k, v in {"from": t_from, "to": t_to, "devEui": dev_eui}.items() if v}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(30, read=300)) as client:
        count = client.get(f"/share/{rec_type}", params={**params, "perPage": 1, "details": "false"})
        if count.status_code != 200:
            raise _fail(count)
        total = count.json()["meta"]["totalCount"]
        sink = output.open("wb") if output else sys.stdout.buffer
        written = 0
        try:
            with (
                client.stream(
                    "GET", f"/share/{rec_type}/export", params={**params, "format": fmt}
                ) as response,
                Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    disable=output is None,
                    transient=False,
                ) as progress,  # fmt: skip
            ):
                if response.status_code != 200:
                    response.read()
                    raise _fail(response)
                task = progress.add_task(f"{rec_type} → {output}", total=total)
                header_pending = fmt == "csv"
                for chunk in response.iter_bytes():
                    sink.write(chunk)
                    lines = chunk.count(b"\n")
                    if header_pending and lines:
                        lines -= 1
                        header_pending = False
                    written += lines
                    progress.update(task, completed=min(written, total))
        finally:
            if output:
                sink.close()
    if output:
        click.echo(f"{written} records written to {output}", err=True)
