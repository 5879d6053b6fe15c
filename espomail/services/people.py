"""Teams, users and roles: administration use cases (SPEC 2, 8); removing them is
services/removals.py.

Every function takes the store and the acting user, checks permissions through
``access``, validates input, and returns plain dicts with the JSON keys of SPEC 2.
Changes run in one transaction, so a rejected command changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from espomail import validate
from espomail.errors import Duplicate, InvalidInput, NotFound, PermissionDenied
from espomail.policy import access, actors
from espomail.policy.access import Actor
from espomail.store import people as q
from espomail.store.db import Row, Store

# -- lookups used by other services ----------------------------------------------------


def get_team(store: Store, name: str) -> Row:
    team = q.team_by_name(store, name)
    if team is None:
        raise NotFound(f"no team named '{name}'; see 'espomail team list'")
    return team


def get_role(store: Store, name: str) -> Row:
    role = q.role_by_name(store, name)
    if role is None:
        raise NotFound(f"no role named '{name}'; see 'espomail role list'")
    return role


def get_user(store: Store, username: str) -> Row:
    user = q.user_by_username(store, username)
    if user is None:
        raise NotFound(f"no user named '{username}'; see 'espomail user list'")
    return user


def actor_for(store: Store, username: str | None) -> Actor:
    """The Actor for ``--as USERNAME``; the system administrator when None."""
    if not username:
        return access.SYSTEM
    user = get_user(store, username)
    if not user["is_active"]:
        raise PermissionDenied(f"user '{username}' is inactive and may not run commands")
    return actors.actor_of(store, user)


# -- teams ------------------------------------------------------------------------------


def team_dict(store: Store, team: Row) -> dict:
    return {
        "id": team["id"],
        "name": team["name"],
        "positions": json.loads(team["positions"]),
        "members": [{"username": m["username"], "position": m["position"]} for m in q.team_members(store, team["id"])],
    }


def add_team(store: Store, actor: Actor, name: str, positions: Sequence[str]) -> dict:
    access.require(actor, "admin", None, "add teams")
    name = validate.name(name, "team name")
    cleaned = _unique([validate.name(p, "position") for p in positions])
    with store.atomic():
        if q.team_by_name(store, name):
            raise Duplicate(f"a team named '{name}' exists already")
        team_id = q.insert_team(store, name, cleaned)
        return team_dict(store, q.team_by_id(store, team_id))


def list_teams(store: Store, actor: Actor) -> list[dict]:
    return [team_dict(store, t) for t in q.teams(store)]


def show_team(store: Store, actor: Actor, name: str) -> dict:
    return team_dict(store, get_team(store, name))


def update_team(store: Store, actor: Actor, name: str, add: Sequence[str], remove: Sequence[str]) -> dict:
    access.require(actor, "admin", None, "change teams")
    with store.atomic():
        team = get_team(store, name)
        positions = json.loads(team["positions"])
        for position in remove:
            if position not in positions:
                raise NotFound(f"team '{name}' has no position '{position}'")
            positions.remove(position)
        positions = _unique(positions + [validate.name(p, "position") for p in add])
        q.set_team_positions(store, team["id"], positions)
        return team_dict(store, q.team_by_id(store, team["id"]))


# -- roles ------------------------------------------------------------------------------


def role_dict(store: Store, role: Row) -> dict:
    result = {"id": role["id"], "name": role["name"]}
    result.update({field: role[field] for field in q.ROLE_FIELDS})
    result["users"] = q.role_users(store, role["id"])
    return result


def _check_levels(levels: dict[str, str | None]) -> dict[str, str]:
    checked = {}
    for field, value in levels.items():
        if value is None:
            continue
        allowed = access.FIELD_LEVELS[field]
        checked[field] = validate.choice(value, allowed, "--" + field.replace("_", "-"))
    return checked


def add_role(store: Store, actor: Actor, name: str, levels: dict[str, str | None]) -> dict:
    access.require(actor, "admin", None, "add roles")
    name = validate.name(name, "role name")
    checked = _check_levels(levels)
    with store.atomic():
        if q.role_by_name(store, name):
            raise Duplicate(f"a role named '{name}' exists already")
        q.insert_role(store, name, checked)
        return role_dict(store, q.role_by_name(store, name))


def update_role(store: Store, actor: Actor, name: str, levels: dict[str, str | None]) -> dict:
    access.require(actor, "admin", None, "change roles")
    checked = _check_levels(levels)
    with store.atomic():
        role = get_role(store, name)
        q.update_role(store, role["id"], checked)
        return role_dict(store, q.role_by_name(store, name))


def list_roles(store: Store, actor: Actor) -> list[dict]:
    return [role_dict(store, r) for r in q.roles(store)]


def show_role(store: Store, actor: Actor, name: str) -> dict:
    return role_dict(store, get_role(store, name))


# -- users ------------------------------------------------------------------------------


def user_dict(store: Store, user: Row) -> dict:
    roles = q.user_roles(store, user["id"])
    if user["is_admin"]:
        permissions = access.ALL_PERMISSIONS
    else:
        permissions = access.merge(dict(r) for r in roles)
    return {
        "id": user["id"],
        "username": user["username"],
        "name": user["name"],
        "emails": q.addresses_of(store, "user", user["id"]),
        "is_admin": bool(user["is_admin"]),
        "is_active": bool(user["is_active"]),
        "teams": [{"name": t["name"], "position": t["position"]} for t in q.user_teams(store, user["id"])],
        "roles": [r["name"] for r in roles],
        "permissions": permissions.as_dict(),
    }


def parse_team_spec(store: Store, spec: str) -> tuple[Row, str | None]:
    """``TEAM[:POSITION]`` -> (team row, position); the position must exist in the team."""
    team_name, _, position = spec.partition(":")
    team = get_team(store, team_name.strip())
    position = position.strip() or None
    if position is not None and position not in json.loads(team["positions"]):
        raise InvalidInput(
            f"team '{team['name']}' has no position '{position}'; add it with "
            f"'espomail team update {team['name']} --add-position {position}'"
        )
    return team, position


def _add_addresses(store: Store, user_id: int, addresses: Sequence[str], primary_first: bool):
    for index, raw in enumerate(addresses):
        address = validate.email_address(raw)
        for owner in q.owners_of_address(store, address, "user"):
            if owner != user_id:
                other = q.user_by_id(store, owner)
                raise Duplicate(f"address {address} belongs to user '{other['username']}' already")
        q.add_address(store, "user", user_id, address, primary_first and index == 0)


def add_user(
    store: Store,
    actor: Actor,
    username: str,
    emails: Sequence[str],
    name: str | None = None,
    teams: Sequence[str] = (),
    roles: Sequence[str] = (),
    is_admin: bool = False,
    is_active: bool = True,
) -> dict:
    access.require(actor, "admin", None, "add users")
    username = validate.name(username, "username", 100)
    if any(ch.isspace() for ch in username) or ":" in username:
        raise InvalidInput(f"username '{username}' must not contain spaces or ':'")
    if not emails:
        raise InvalidInput("a user needs at least one --email address")
    name = validate.display_name(name, "--name")
    with store.atomic():
        if q.user_by_username(store, username):
            raise Duplicate(f"a user named '{username}' exists already; pick another username")
        user_id = q.insert_user(store, username, name or username, is_admin, is_active)
        _add_addresses(store, user_id, emails, primary_first=True)
        for spec in teams:
            team, position = parse_team_spec(store, spec)
            q.set_user_team(store, user_id, team["id"], position)
        for role_name in roles:
            q.add_user_role(store, user_id, get_role(store, role_name)["id"])
        return user_dict(store, q.user_by_id(store, user_id))


def list_users(store: Store, actor: Actor) -> list[dict]:
    return [user_dict(store, u) for u in q.users(store)]


def show_user(store: Store, actor: Actor, username: str) -> dict:
    return user_dict(store, get_user(store, username))


def update_user(store: Store, actor: Actor, username: str, changes: dict) -> dict:
    """Apply ``changes``: name, is_admin, is_active, add_emails, remove_emails,
    add_teams, remove_teams, add_roles, remove_roles (all optional)."""
    access.require(actor, "admin", None, "change users")
    with store.atomic():
        user = get_user(store, username)
        uid = user["id"]
        fields = {k: changes[k] for k in ("name", "is_admin", "is_active") if changes.get(k) is not None}
        if "name" in fields:
            fields["name"] = validate.display_name(fields["name"], "--name") or username
        q.update_user(store, uid, fields)
        _add_addresses(store, uid, changes.get("add_emails") or (), primary_first=False)
        for address in changes.get("remove_emails") or ():
            if not q.remove_address(store, "user", uid, address):
                raise NotFound(f"user '{username}' has no address {address}")
        if not q.addresses_of(store, "user", uid):
            raise InvalidInput(f"user '{username}' would have no email address left")
        q.ensure_primary(store, "user", uid)
        for spec in changes.get("add_teams") or ():
            team, position = parse_team_spec(store, spec)
            q.set_user_team(store, uid, team["id"], position)
        for team_name in changes.get("remove_teams") or ():
            q.remove_user_team(store, uid, get_team(store, team_name)["id"])
        for role_name in changes.get("add_roles") or ():
            q.add_user_role(store, uid, get_role(store, role_name)["id"])
        for role_name in changes.get("remove_roles") or ():
            q.remove_user_role(store, uid, get_role(store, role_name)["id"])
        return user_dict(store, q.user_by_id(store, uid))


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
