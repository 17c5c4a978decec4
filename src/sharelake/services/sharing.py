"""Sharing: which rules concern a caller, the SQL predicate of what they may see, and the simulator.

Rules are few next to records, so every active rule is held in memory (a snapshot, reloaded after any
rule change here, on a NOTIFY from another process on PostgreSQL, and at the latest after `ttl`
seconds) and a caller's grants are computed from it in Python; the records side stays in SQL.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine

from sharelake.domain.accounts import default_org, normalize_email
from sharelake.domain.errors import Forbidden, Invalid
from sharelake.domain.principal import Principal
from sharelake.domain.records import check_rec_type
from sharelake.domain.rules import (
    OPERATIONS,
    Grant,
    Party,
    Rule,
    covers_owner,
    grant_for,
    grants_caller,
    org_condition_holds,
    rec_type_matches,
)
from sharelake.storage import notify, users
from sharelake.storage import rules as rule_store
from sharelake.storage.visibility import Visibility, co_owns_any, visible

NOTIFY_CHANNEL = "sharelake_rules"


def party(principal: Principal) -> Party:
    return Party(user=principal.email, org=principal.org, app=principal.app_id, role=principal.role)


def pattern_covers(outer: str, inner: str) -> bool:
    """Whether rule recType pattern `outer` takes in everything `inner` does."""
    if outer == "*" or outer == inner:
        return True
    return outer.endswith(".*") and inner != "*" and inner.startswith(outer[:-1])


@dataclass
class _Snapshot:
    rules: list[tuple[Rule, str]] = field(default_factory=list)  # (rule, author role)
    orgs: dict[str, str] = field(default_factory=dict)  # author → org
    by_author: dict[str, list[Rule]] = field(default_factory=lambda: defaultdict(list))
    loaded: float = 0.0


class Sharing:
    def __init__(self, engine: Engine, *, ttl: float = 30.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._memo: dict[tuple[Party, str], list[Grant]] = {}
        self._co_owners: dict[tuple[str, str, str | None, str, str], tuple[str, ...]] = {}

    # -- the snapshot -------------------------------------------------------------------------
    def invalidate(self, _payload: str = "") -> None:
        with self._lock:
            self._snapshot = None
            self._memo = {}
            self._co_owners = {}

    def announce(self, conn: Connection) -> None:
        """Tell the other processes (PostgreSQL) that rules changed; sent when `conn` commits."""
        notify.announce(conn, NOTIFY_CHANNEL)

    def _rules(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.loaded < self._ttl:
            return snapshot
        with self._engine.connect() as conn:
            rows = rule_store.active_with_author_roles(conn)
        fresh = _Snapshot(loaded=time.monotonic())
        for row in rows:
            rule = Rule(
                id=row.id,
                author=row.author,
                author_org=row.author_org,
                author_app=row.author_app,
                rec_type=row.rec_type,
                resource_id=row.resource_id,
                operations=frozenset(op for op in row.operations.split(",") if op),
                owner_user=row.owner_user,
                owner_org=row.owner_org,
                owner_app=row.owner_app,
                calling_user=row.calling_user,
                calling_org=row.calling_org,
                calling_app=row.calling_app,
                calling_role=row.calling_role,
                active=True,
            )
            fresh.rules.append((rule, row.author_role))
            fresh.orgs[rule.author] = rule.author_org
            fresh.by_author[rule.author].append(rule)
        with self._lock:
            self._snapshot = fresh
            self._memo = {}
            self._co_owners = {}
        return fresh

    # -- delegation (Policy) ------------------------------------------------------------------
    def _held(self, snap: _Snapshot, holder: Party, owner: str, pattern: str) -> frozenset[str]:
        """Operations `owner`'s rules give `holder` over everything `pattern` covers."""
        owner_party = Party(user=owner, org=snap.orgs.get(owner, default_org(owner)))
        ops: set[str] = set()
        for rule in snap.by_author.get(owner, ()):
            if (
                pattern_covers(rule.rec_type, pattern)
                and rule.resource_id == "*"
                and covers_owner(rule, owner_party)
                and grants_caller(rule, holder, owner_party)
            ):
                ops |= rule.operations
        return frozenset(ops)

    def _delegators(self, snap: _Snapshot, holder: Party, pattern: str) -> dict[str, frozenset[str]]:
        """Owners who gave `holder` Policy over `pattern`, with the operations `holder` holds from each."""
        out = {}
        for owner in snap.by_author:
            if owner != holder.user:
                held = self._held(snap, holder, owner, pattern)
                if "Policy" in held:
                    out[owner] = held
        return out

    # -- grants and visibility ----------------------------------------------------------------
    def grants(self, caller: Party, operation: str) -> list[Grant]:
        snap = self._rules()
        key = (caller, operation)
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        found: list[Grant] = []
        for rule, author_role in snap.rules:
            if operation not in rule.operations:
                continue
            owners = [rule.author]
            if rule.owner_user != "=":
                author = Party(user=rule.author, org=rule.author_org, app=rule.author_app, role=author_role)
                for owner, held in self._delegators(snap, author, rule.rec_type).items():
                    if operation in held:  # a rule never grants more than its author holds
                        owners.append(owner)
            grant = grant_for(rule, caller, tuple(owners), author_role)
            if grant is not None:
                found.append(grant)
        self._memo[key] = found
        return found

    def visible(
        self, conn: Connection, principal: Principal, operation: str, rec_type: str | None
    ) -> ColumnElement[bool]:
        """The SQL predicate of the records `principal` may act on with `operation`."""
        return self.visibility(conn, principal, operation, rec_type).predicate

    def visibility(
        self, conn: Connection, principal: Principal, operation: str, rec_type: str | None
    ) -> Visibility:
        """The records `principal` may act on with `operation`: the predicate, and the owners when
        that is all it says (`storage.visibility.Visibility`)."""
        return visible(
            principal.email,
            self.grants(party(principal), operation),
            co_owned_in=(rec_type or "*") if co_owns_any(conn, principal.email, rec_type) else None,
            rec_type=rec_type,
        )

    def co_owners(self, principal: Principal, rec_type: str) -> tuple[str, ...]:
        """Owners whose rules grant `principal` Write on `rec_type`: they co-own what it writes there.
        Asked on every write, so remembered until the rules change."""
        snap = self._rules()
        key = (principal.email, principal.org, principal.app_id, principal.role, rec_type)
        known = self._co_owners.get(key)
        if known is not None:
            return known
        writer = party(principal)
        owners: list[str] = []
        for grant in self.grants(writer, "Write"):
            if grant.resource_id != "*" or not rec_type_matches(grant.rec_type, rec_type):
                continue
            for owner in grant.owners:
                org = snap.orgs.get(owner, default_org(owner))
                if (
                    owner != principal.email
                    and owner not in owners
                    and all(org_condition_holds(c, org) for c in grant.org_conditions)
                ):
                    owners.append(owner)
        found = tuple(owners)
        if len(self._co_owners) > 100_000:
            self._co_owners.clear()
        self._co_owners[key] = found
        return found

    # -- authoring ------------------------------------------------------------------------------
    def check_author(self, principal: Principal, rule: Rule) -> None:
        """Only an owner, or someone an owner gave Policy, writes rules over the owner's records."""
        if rule.owner_user in ("=", "*", principal.email):
            return
        snap = self._rules()
        if rule.owner_user not in self._delegators(snap, party(principal), rule.rec_type):
            raise Forbidden(
                f"you may write rules only over your own records, or over records of an owner who gave you "
                f"Policy on {rule.rec_type}; {rule.owner_user} has not",
                code="not_rule_owner",
            )

    # -- the simulator ------------------------------------------------------------------------
    def simulate(self, principal: Principal, rec_type: str, user: str, operation: str) -> dict[str, Any]:
        """Would `user` be able to `operation` the caller's `rec_type` records (and records of owners
        who gave the caller Policy), and which rules say so. Exact for the caller's own org; for
        anyone else, the answer for that address as if it had no account (org from its domain)."""
        check_rec_type(rec_type)
        email = normalize_email(user)
        op = next((o for o in OPERATIONS if o.lower() == operation.strip().lower()), None)
        if op is None:
            raise Invalid(f"operation must be one of {', '.join(OPERATIONS)}", code="invalid_parameter")
        with self._engine.connect() as conn:
            row = users.get_by_email(conn, email)
        # The caller may learn of an account only what their own org already shows: a member's org
        # and role. Anyone else is simulated from the address alone, exactly as an address without an
        # account is, so the answer cannot tell an outsider's account, org or role from no account.
        if row is not None and row.org == principal.org:
            target = Party(user=email, org=row.org, role=row.role)
        else:
            target = Party(user=email, org=default_org(email))
        snap = self._rules()
        owners = [principal.email, *self._delegators(snap, party(principal), rec_type)]
        granted_by = []
        seen: set[str] = set()
        visible_owners = []
        for owner in owners:
            if owner == email:
                visible_owners.append(owner)
                continue
            for grant in self.grants(target, op):
                if owner in grant.owners and rec_type_matches(grant.rec_type, rec_type):
                    org = snap.orgs.get(
                        owner, principal.org if owner == principal.email else default_org(owner)
                    )
                    if all(org_condition_holds(c, org) for c in grant.org_conditions):
                        if owner not in visible_owners:
                            visible_owners.append(owner)
                        if grant.rule_id not in seen:
                            seen.add(grant.rule_id)
                            granted_by.append(
                                {
                                    "id": grant.rule_id,
                                    "recType": grant.rec_type,
                                    "owner": owner,
                                    "resourceId": grant.resource_id,
                                    "ownerApp": grant.owner_app,
                                }
                            )
        return {
            "recType": rec_type,
            "user": email,
            "operation": op,
            "allowed": principal.email in visible_owners,
            "owners": visible_owners,
            "grantedBy": granted_by,
        }
