"""Who may see which records: the one predicate every record read, count and delete goes through.

A caller sees their own records, records they co-own (written into their recType under a Write grant),
and what the rules' grants open to them (`domain.rules.Grant`, computed by `services.sharing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, exists, false, or_, select

from sharelake.domain.rules import Grant, OrgCondition, rec_type_matches
from sharelake.storage.tables import record_owners, records


@dataclass(frozen=True, slots=True)
class Visibility:
    """What a caller may act on: the predicate, and — when it is exactly "these owners' records of
    this recType" — those owners, so a list can read each owner's index range on its own."""

    predicate: ColumnElement[bool]
    owners: tuple[str, ...] | None = None


def visible(
    email: str, grants: Sequence[Grant] = (), *, co_owned_in: str | None = None, rec_type: str | None = None
) -> Visibility:
    """Records `email` may act on. `co_owned_in`: also records of that recType (or of any, with "*")
    the caller co-owns — pass it only when they have some, so the common case stays one index range.
    `rec_type`: the recType the query is limited to, when it is: grants that cannot reach it drop out,
    and whole-owner grants merge with the caller's own records into one `owner_user IN (…)`, which
    the databases read as one index range per owner instead of an OR of branches."""
    owners = [email]
    clauses: list[ColumnElement[bool]] = []
    for grant in grants:
        if rec_type is not None:
            if not rec_type_matches(grant.rec_type, rec_type):
                continue
            if grant.resource_id == "*" and not grant.org_conditions and grant.owner_app is None:
                owners.extend(o for o in grant.owners if o not in owners)
                continue
        clauses.append(_grant(grant))
    own = records.c.owner_user == email if len(owners) == 1 else records.c.owner_user.in_(owners)
    clauses.insert(0, own)
    if co_owned_in is not None:
        clauses.append(records.c.id.in_(_co_owned(email, None if co_owned_in == "*" else co_owned_in)))
    if len(clauses) == 1:
        return Visibility(own, tuple(owners) if rec_type is not None else None)
    return Visibility(or_(*clauses))


def visible_in(table: Table, email: str, grants: Sequence[Grant]) -> ColumnElement[bool]:
    """Rows of a table kept per owner and recType (`owner_user`, `rec_type`, `owner_org`, `owner_app`:
    the device inventory, the rollups) that `email` may read: their own, and those of the owners and
    recTypes a rule opens to them. A grant of one record (a resource id) opens none of them."""
    c = table.c
    clauses: list[ColumnElement[bool]] = [c.owner_user == email]
    for grant in grants:
        if grant.resource_id != "*":
            continue
        parts: list[ColumnElement[bool]] = [c.owner_user.in_(grant.owners)]
        if grant.rec_type != "*":
            if grant.rec_type.endswith(".*"):
                parts.append(c.rec_type.startswith(grant.rec_type[:-1], autoescape=True))
            else:
                parts.append(c.rec_type == grant.rec_type)
        parts.extend(org_clause(condition, c.owner_org) for condition in grant.org_conditions)
        if grant.owner_app is not None:
            parts.append(c.owner_app == grant.owner_app)
        clauses.append(and_(*parts))
    return or_(*clauses) if len(clauses) > 1 else clauses[0]


def co_owns_any(conn: Connection, email: str, rec_type: str | None) -> bool:
    """Whether `email` co-owns any record (of `rec_type`, when given): what `visible`'s `co_owned_in` asks."""
    return bool(conn.execute(select(exists(_co_owned(email, rec_type)))).scalar())


def _co_owned(email: str, rec_type: str | None) -> Select[tuple[str]]:
    query = select(record_owners.c.record_id).where(record_owners.c.owner_user == email)
    if rec_type is not None:
        query = query.where(record_owners.c.rec_type == rec_type)
    return query


def _grant(grant: Grant) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = [
        records.c.owner_user == grant.owners[0]
        if len(grant.owners) == 1
        else records.c.owner_user.in_(grant.owners)
    ]
    if grant.rec_type != "*":
        if grant.rec_type.endswith(".*"):
            parts.append(records.c.rec_type.startswith(grant.rec_type[:-1], autoescape=True))
        else:
            parts.append(records.c.rec_type == grant.rec_type)
    if grant.resource_id != "*":
        parts.append(records.c.id == grant.resource_id)
    parts.extend(org_clause(c) for c in grant.org_conditions)
    if grant.owner_app is not None:
        parts.append(records.c.owner_app == grant.owner_app)
    return and_(*parts)


def org_clause(
    condition: OrgCondition, owner_org: ColumnElement[str] = records.c.owner_org
) -> ColumnElement[bool]:
    """A grant's condition on the owner's org, over `owner_org` (the records' column unless given)."""
    kind, values = condition
    if not values:
        return false()
    if kind == "in":
        return owner_org.in_(values)
    return or_(
        *[or_(owner_org == root, owner_org.startswith(root + ".", autoescape=True)) for root in values]
    )
