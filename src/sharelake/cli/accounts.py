"""`sharelake user …`, `sharelake app …`, `sharelake token …`: accounts without the web."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import Row

from sharelake.cli.common import friendly, open_lake
from sharelake.domain import scopes
from sharelake.services.lake import Lake


@click.group()
def user() -> None:
    """Manage accounts."""


@user.command("create")
@click.option("--email", required=True, help="The account's e-mail (its username).")
@click.option("--password", required=True, help="The account's password.")
@click.option("--org", default=None, help="Reverse-DNS org (default: from the e-mail domain).")
@friendly
def user_create(email: str, password: str, org: str | None) -> None:
    """Create an active (already verified) account."""
    lake = open_lake()
    try:
        row = lake.accounts.create_user(email, password, org)
    finally:
        lake.close()
    click.echo(f"created {row.email} (org {row.org})")


@click.group()
def app() -> None:
    """Manage API keys."""


def _user(lake: Lake, email: str) -> Row[Any]:
    row = lake.accounts.get_by_email(email)
    if row is None:
        raise click.ClickException(f"no account {email}; create it with `sharelake user create`")
    return row


@app.command("create")
@click.option("--email", required=True, help="The account that owns the key.")
@click.option("--name", required=True, help="What the key is for.")
@friendly
def app_create(email: str, name: str) -> None:
    """Create an API key; prints the key (client_id) as the last line."""
    lake = open_lake()
    try:
        owner = _user(lake, email)
        row = lake.apps.create(owner.id, name)
    finally:
        lake.close()
    click.echo(f"API key for {email} ({row.name}):")
    click.echo(row.id)


@click.group()
def token() -> None:
    """Issue tokens without the HTTP API."""


@token.command("create")
@click.option("--email", required=True, help="The account the token acts for.")
@click.option("--app", "app_id", required=True, help="The API key (client_id) it is issued to.")
@click.option("--kind", type=click.Choice(["pipe", "bearer"]), default="pipe", show_default=True)
@click.option("--scope", default="ALL:ALL", show_default=True, help="Scopes of a bearer token.")
@friendly
def token_create(email: str, app_id: str, kind: str, scope: str) -> None:
    """Issue a token; prints the secret as the last line (it is shown only once)."""
    lake = open_lake()
    try:
        owner = _user(lake, email)
        app_row = next((a for a in lake.apps.list_for(owner.id) if a.id == app_id.upper()), None)
        if app_row is None:
            raise click.ClickException(f"{email} has no API key {app_id}")
        answer = lake.tokens.issue_for(owner, app_row.id, kind, scopes.parse(scope))
    finally:
        lake.close()
    click.echo(f"{answer['token_type']} token, scope {answer['scope']}:")
    click.echo(answer["access_token"])
