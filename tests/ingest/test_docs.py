"""The record examples in docs/integrations/ are what sharelake really stores: each page's `data` parses to
its `uplink` (gateways may be fewer: pages show a record after duplicates merged theirs in)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sharelake import ingest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations"


def records(page: Path) -> list[dict[str, Any]]:
    found = []
    for block in page.read_text().split("```json")[1:]:
        text = block.split("```", 1)[0]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            continue  # fragments, shown for their shape only
        if isinstance(value, dict) and "data" in value and "uplink" in value:
            found.append(value)
    return found


PAGES = sorted(p for p in DOCS.glob("*.md") if p.name != "README.md")


def test_every_network_page_is_listed_and_shows_a_record() -> None:
    readme = (DOCS / "README.md").read_text()
    assert len(PAGES) == 8
    for page in PAGES:
        assert f"({page.name})" in readme, page.name
        assert records(page), page.name


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_documented_records_are_what_the_parser_gives(page: Path) -> None:
    for record in records(page):
        query = {"event": "up"} if page.stem == "chirpstack" else {}
        up = ingest.parse(record["data"], query)
        assert up is not None
        got = up.to_json()
        shown = dict(record["uplink"])
        shown_gateways = shown.pop("gateways")
        got_gateways = got.pop("gateways")
        assert got == shown
        assert all(g in shown_gateways for g in got_gateways)
