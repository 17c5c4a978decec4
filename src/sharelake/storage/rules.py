"""The rules index: each rule's matchers as columns (kept beside its document by the rules service)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from sharelake.domain.rules import Rule
from sharelake.storage.tables import documents, rules, users
from sharelake.storage.types import AnyRow


def put(conn: Connection, rule: Rule) -> None:
    """Insert or replace the index row of one rule."""
    conn.execute(delete(rules).where(rules.c.id == rule.id))
    conn.execute(
        insert(rules).values(
            id=rule.id,
            author=rule.author,
            author_org=rule.author_org,
            rec_type=rule.rec_type,
            resource_id=rule.resource_id,
            operations="," + ",".join(sorted(rule.operations)) + ",",
            owner_user=rule.owner_user,
            owner_org=rule.owner_org,
            owner_app=rule.owner_app,
            calling_user=rule.calling_user,
            calling_org=rule.calling_org,
            calling_app=rule.calling_app,
            calling_role=rule.calling_role,
            active=rule.active,
        )
    )


def delete_(conn: Connection, rule_id: str) -> None:
    conn.execute(delete(rules).where(rules.c.id == rule_id))


def active_with_author_roles(conn: Connection) -> list[AnyRow]:
    """Every active rule, with its author's API key (from the rule document) and role."""
    query = (
        select(rules, users.c.role.label("author_role"), documents.c.owner_app.label("author_app"))
        .join(users, users.c.email == rules.c.author)
        .join(documents, documents.c.id == rules.c.id)
        .where(rules.c.active.is_(True))
    )
    return list(conn.execute(query))
