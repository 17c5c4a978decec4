"""Rules as documents: checked, indexed beside their document, and felt by the next request."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection

from sharelake.domain import rules as rule_rules
from sharelake.domain.principal import Principal
from sharelake.services.documents import Kind
from sharelake.services.sharing import Sharing
from sharelake.storage import rules as rule_store


def rule_kind(sharing: Sharing) -> Kind:
    def normalize(data: Any, _principal: Principal) -> dict[str, Any]:
        return rule_rules.normalize_rule_data(data)

    def on_save(conn: Connection, principal: Principal, _kind: Kind, values: dict[str, Any]) -> None:
        rule = rule_rules.from_data(
            values["id"],
            values["rec_type"],
            orjson.loads(values["data"]),
            author=values["owner_user"],
            author_org=values["owner_org"],
            author_app=values["owner_app"],
        )
        sharing.check_author(principal, rule)
        rule_store.put(conn, rule)
        sharing.announce(conn)

    def on_delete(conn: Connection, _kind: Kind, rule_id: str) -> None:
        rule_store.delete_(conn, rule_id)
        sharing.announce(conn)

    return Kind(
        name="rule",
        resource="RULE",
        title="rule",
        normalize=normalize,
        check_rec_type=rule_rules.check_rule_rec_type,
        on_save=on_save,
        on_delete=on_delete,
        after_change=sharing.invalidate,
    )
