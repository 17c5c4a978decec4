"""Microshare's sharing rules: validation and the matchers, as pure functions.

Nothing is shared by default; a rule only grants. A rule's owner fields say whose records it covers
(`=` there means the rule author's own value); its calling fields say who is granted, relative to the
record's owner: `*` anyone, `=` the same as the owner, `~` the owner's org or an ancestor of it, `&` an
org sharing an ancestor of at least two labels with the owner's, anything else an exact value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sharelake.domain.accounts import normalize_email, normalize_org
from sharelake.domain.errors import Invalid
from sharelake.domain.records import check_rec_type, is_record_id

OPERATIONS = ("Read", "Query", "Write", "Delete", "Execute", "Policy")
_BY_LOWER = {op.lower(): op for op in OPERATIONS}
RESOURCE_TYPES = ("objs",)
_APP = re.compile(r"[A-Za-z0-9-]{1,64}")
_ROLE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CALLING_FIELDS = ("callingUser", "callingOrg", "callingApp", "callingRole")


@dataclass(frozen=True, slots=True)
class Party:
    """A user as rules see them: e-mail, org, the API key in use, and role in the org."""

    user: str
    org: str
    app: str | None = None
    role: str = "member"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    author: str
    author_org: str
    author_app: str | None
    rec_type: str  # exact, `prefix.*`, or `*`
    resource_id: str  # `*` or a record id
    operations: frozenset[str]
    owner_user: str
    owner_org: str
    owner_app: str
    calling_user: str
    calling_org: str
    calling_app: str
    calling_role: str
    active: bool


def check_rule_rec_type(pattern: str) -> str:
    """A rule's recType: a recType, a subtree `us.philadelphia.*`, or `*` for all."""
    if pattern == "*":
        return pattern
    if pattern.endswith(".*"):
        check_rec_type(pattern[:-2])
        return pattern
    return check_rec_type(pattern)


def rec_type_matches(pattern: str, rec_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return rec_type.startswith(pattern[:-1])
    return rec_type == pattern


def org_ancestors(org: str) -> list[str]:
    """`io.acme.test` → [`io.acme.test`, `io.acme`, `io`]."""
    labels = org.split(".")
    return [".".join(labels[:n]) for n in range(len(labels), 0, -1)]


def common_root(org: str) -> str | None:
    """The two-label ancestor `&` compares (`io.acme` for `io.acme.lab`); None for a one-label org."""
    labels = org.split(".")
    return ".".join(labels[:2]) if len(labels) >= 2 else None


def org_matches(matcher: str, org: str, reference: str) -> bool:
    if matcher == "*":
        return True
    if matcher == "=":
        return org == reference
    if matcher == "~":
        return org in org_ancestors(reference)
    if matcher == "&":
        root = common_root(reference)
        return root is not None and common_root(org) == root
    return org == matcher


def value_matches(matcher: str, value: str | None, reference: str | None) -> bool:
    if matcher == "*":
        return True
    if matcher == "=":
        return value is not None and value == reference
    return value is not None and value.lower() == matcher.lower()


def covers_owner(rule: Rule, owner: Party) -> bool:
    """Whether the rule's owner fields take in records of `owner` (`=` is the author's value)."""
    return (
        value_matches(rule.owner_user, owner.user, rule.author)
        and org_matches(rule.owner_org, owner.org, rule.author_org)
        and (rule.owner_app == "*" or value_matches(rule.owner_app, owner.app, rule.author_app))
    )


def grants_caller(rule: Rule, caller: Party, owner: Party) -> bool:
    """Whether the rule's calling fields take in `caller`, relative to the record's `owner`."""
    return (
        value_matches(rule.calling_user, caller.user, owner.user)
        and org_matches(rule.calling_org, caller.org, owner.org)
        and value_matches(rule.calling_app, caller.app, owner.app)
        and value_matches(rule.calling_role, caller.role, owner.role)
    )


def grants(
    rule: Rule, *, operation: str, caller: Party, owner: Party, rec_type: str, record_id: str | None = None
) -> bool:
    """The whole truth of one rule for one record (the simulator and the property tests use it;
    reads use the same logic compiled to SQL)."""
    return (
        rule.active
        and operation in rule.operations
        and rec_type_matches(rule.rec_type, rec_type)
        and (rule.resource_id == "*" or record_id is None or rule.resource_id == record_id)
        and covers_owner(rule, owner)
        and grants_caller(rule, caller, owner)
    )


# -- validation ---------------------------------------------------------------------------------
def _text(data: Mapping[str, Any], field: str, default: str) -> str:
    value = data.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"rule data.{field} must be a non-empty string", code="invalid_rule")
    return value.strip()


def _user_matcher(value: str, field: str) -> str:
    if value in ("*", "="):
        return value
    try:
        return normalize_email(value)
    except Invalid:
        raise Invalid(
            f"rule data.{field} must be '*', '=' or an e-mail address (got {value!r})", code="invalid_rule"
        ) from None


def _org_matcher(value: str, field: str) -> str:
    if value in ("*", "=", "~", "&"):
        return value
    try:
        return normalize_org(value)
    except Invalid:
        raise Invalid(
            f"rule data.{field} must be '*', '=', '~', '&' or a reverse-DNS org (got {value!r})",
            code="invalid_rule",
        ) from None


def _pattern_matcher(value: str, field: str, pattern: re.Pattern[str], what: str) -> str:
    if value in ("*", "=") or pattern.fullmatch(value):
        return value
    raise Invalid(f"rule data.{field} must be '*', '=' or {what} (got {value!r})", code="invalid_rule")


def normalize_rule_data(data: Any) -> dict[str, Any]:
    """Check a rule's `data` and fill its defaults; the answer is what is stored and served."""
    if not isinstance(data, dict):
        raise Invalid("a rule's data must be a JSON object", code="invalid_rule")
    if not any(field in data for field in CALLING_FIELDS):
        raise Invalid(
            "a rule must say whom it grants: set callingUser, callingOrg, callingApp or callingRole "
            "(use '*' explicitly to grant everyone)",
            code="invalid_rule",
        )
    resource_type = _text(data, "resourceType", "objs")
    if resource_type not in RESOURCE_TYPES:
        raise Invalid(
            f"rule data.resourceType must be one of {', '.join(RESOURCE_TYPES)}", code="invalid_rule"
        )
    resource_id = _text(data, "resourceId", "*")
    if resource_id != "*" and not is_record_id(resource_id):
        raise Invalid("rule data.resourceId must be '*' or a record id (24 hex digits)", code="invalid_rule")
    operations = data.get("operations")
    if not isinstance(operations, list) or not operations:
        raise Invalid(
            f"rule data.operations must be a non-empty list of {', '.join(OPERATIONS)}", code="invalid_rule"
        )
    ops: list[str] = []
    for op in operations:
        name = _BY_LOWER.get(op.lower()) if isinstance(op, str) else None
        if name is None:
            raise Invalid(
                f"unknown operation {op!r} in rule data.operations: use {', '.join(OPERATIONS)}",
                code="invalid_rule",
            )
        if name not in ops:
            ops.append(name)
    active = data.get("isActive", True)
    if not isinstance(active, bool):
        raise Invalid("rule data.isActive must be true or false", code="invalid_rule")
    out = dict(data)
    out.update(
        resourceType=resource_type,
        resourceId=resource_id,
        ownerUser=_user_matcher(_text(data, "ownerUser", "="), "ownerUser"),
        ownerOrg=_org_matcher(_text(data, "ownerOrg", "*"), "ownerOrg"),
        ownerApp=_pattern_matcher(_text(data, "ownerApp", "*"), "ownerApp", _APP, "an API key"),
        callingUser=_user_matcher(_text(data, "callingUser", "*"), "callingUser"),
        callingOrg=_org_matcher(_text(data, "callingOrg", "*"), "callingOrg"),
        callingApp=_pattern_matcher(_text(data, "callingApp", "*"), "callingApp", _APP, "an API key"),
        callingRole=_pattern_matcher(_text(data, "callingRole", "*"), "callingRole", _ROLE, "a role name"),
        operations=ops,
        isActive=active,
    )
    return out


def from_data(
    rule_id: str,
    rec_type: str,
    data: Mapping[str, Any],
    *,
    author: str,
    author_org: str,
    author_app: str | None,
) -> Rule:
    """A Rule from its stored (normalised) data."""
    return Rule(
        id=rule_id,
        author=author,
        author_org=author_org,
        author_app=author_app,
        rec_type=rec_type,
        resource_id=data["resourceId"],
        operations=frozenset(data["operations"]),
        owner_user=data["ownerUser"],
        owner_org=data["ownerOrg"],
        owner_app=data["ownerApp"],
        calling_user=data["callingUser"],
        calling_org=data["callingOrg"],
        calling_app=data["callingApp"],
        calling_role=data["callingRole"],
        active=data["isActive"],
    )


# -- grants: what the rules concerning one caller let them see, ready to become SQL ---------------
OrgCondition = tuple[str, tuple[str, ...]]  # ("in", orgs) exact match | ("under", (root,)) root or below


@dataclass(frozen=True, slots=True)
class Grant:
    """Records that one rule opens to one caller for one operation."""

    rule_id: str
    owners: tuple[str, ...]  # record owner_user in these
    rec_type: str  # pattern
    resource_id: str
    org_conditions: tuple[OrgCondition, ...] = ()  # on the record's owner_org, all must hold
    owner_app: str | None = None  # the record's owner_app must be this


def _owner_org_condition(matcher: str, author_org: str) -> OrgCondition | None:
    if matcher == "*":
        return None
    if matcher == "=":
        return ("in", (author_org,))
    if matcher == "~":
        return ("in", tuple(org_ancestors(author_org)))
    if matcher == "&":
        root = common_root(author_org)
        return ("in", ()) if root is None else ("under", (root,))
    return ("in", (matcher,))


def _calling_org_condition(matcher: str, caller_org: str) -> OrgCondition | bool | None:
    """The condition on the record owner's org that makes `caller_org` match; True/False when it
    does not depend on the record."""
    if matcher == "*":
        return True
    if matcher == "=":
        return ("in", (caller_org,))
    if matcher == "~":  # the caller's org is the owner's org or an ancestor of it
        return ("under", (caller_org,))
    if matcher == "&":
        root = common_root(caller_org)
        return False if root is None else ("under", (root,))
    return caller_org == matcher


def grant_for(rule: Rule, caller: Party, owners: tuple[str, ...], author_role: str) -> Grant | None:
    """The records `rule` opens to `caller` among those of `owners` (already limited to whose data the
    rule may cover); None when the rule does not concern the caller at all."""
    if not rule.active:
        return None
    if rule.calling_user not in ("*", "=") and rule.calling_user != caller.user:
        return None
    if rule.calling_user == "=":
        owners = tuple(o for o in owners if o == caller.user)
    if rule.calling_app not in ("*", "=") and (caller.app or "").lower() != rule.calling_app.lower():
        return None
    if rule.calling_role == "=":
        if caller.role != author_role:
            return None
    elif rule.calling_role != "*" and caller.role.lower() != rule.calling_role.lower():
        return None
    calling = _calling_org_condition(rule.calling_org, caller.org)
    if calling is False:
        return None
    if rule.owner_user == "=":
        owners = tuple(o for o in owners if o == rule.author)
    elif rule.owner_user != "*":
        owners = tuple(o for o in owners if o == rule.owner_user)
    if not owners:
        return None
    conditions = [c for c in (_owner_org_condition(rule.owner_org, rule.author_org),) if c is not None]
    if isinstance(calling, tuple):
        conditions.append(calling)
    owner_app = None
    if rule.owner_app == "=":
        owner_app = rule.author_app or ""
    elif rule.owner_app != "*":
        owner_app = rule.owner_app.upper()
    app_condition = None
    if rule.calling_app == "=":
        if caller.app is None:
            return None
        app_condition = caller.app
    if owner_app is not None and app_condition is not None and owner_app != app_condition:
        return None
    return Grant(
        rule_id=rule.id,
        owners=owners,
        rec_type=rule.rec_type,
        resource_id=rule.resource_id,
        org_conditions=tuple(conditions),
        owner_app=owner_app if owner_app is not None else app_condition,
    )


def org_condition_holds(condition: OrgCondition, org: str) -> bool:
    kind, values = condition
    if kind == "in":
        return org in values
    return any(org == root or org.startswith(root + ".") for root in values)
