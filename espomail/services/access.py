"""Every permission decision (SPEC 8) is made here: a table of actions plus ``require()``.

Commands never check roles themselves; services call ``require(actor, ACTION, facts)``.
Levels are ``no < own < team < all``; several roles merge to the most permissive; nothing
granted means no; admins (and the system administrator, who runs commands without
``--as``) bypass everything. A denial raises PermissionDenied naming the missing
permission and is written to the log.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from espomail.errors import PermissionDenied

log = logging.getLogger("espomail.access")

LEVELS = ("no", "own", "team", "all")
GROUP_SEND_LEVELS = ("no", "team", "all")
YES_NO = ("no", "yes")


@dataclasses.dataclass(frozen=True)
class Permissions:
    email_create: str = "no"
    email_read: str = "no"
    email_edit: str = "no"
    email_delete: str = "no"
    personal_accounts: str = "no"
    group_send: str = "no"

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


ALL_PERMISSIONS = Permissions("yes", "all", "all", "all", "yes", "all")
FIELD_LEVELS = {
    "email_create": YES_NO,
    "email_read": LEVELS,
    "email_edit": LEVELS,
    "email_delete": LEVELS,
    "personal_accounts": YES_NO,
    "group_send": GROUP_SEND_LEVELS,
}


def merge(roles: Iterable[dict[str, str]]) -> Permissions:
    """The most permissive value of each field over ``roles``; nothing granted = no."""
    best = {field: "no" for field in FIELD_LEVELS}
    for role in roles:
        for field, order in FIELD_LEVELS.items():
            value = role.get(field) or "no"
            if order.index(value) > order.index(best[field]):
                best[field] = value
    return Permissions(**best)


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who runs a command. ``user_id`` None is the system administrator (no ``--as``)."""

    user_id: int | None
    username: str
    is_admin: bool
    team_ids: frozenset[int] = frozenset()
    permissions: Permissions = ALL_PERMISSIONS

    @property
    def is_system(self) -> bool:
        return self.user_id is None


SYSTEM = Actor(user_id=None, username="(system administrator)", is_admin=True)


@dataclasses.dataclass(frozen=True)
class EmailFacts:
    """What the email-level rules need to know about one email."""

    user_ids: frozenset[int]
    team_ids: frozenset[int]
    assigned_user_id: int | None = None
    created_by_id: int | None = None


# action -> (role field, human name of the permission). Email actions take EmailFacts.
EMAIL_ACTIONS = {
    "email.read": ("email_read", "email read"),
    "email.edit": ("email_edit", "email edit"),
    "email.delete": ("email_delete", "email delete"),
}


def level(actor: Actor, field: str) -> str:
    """The actor's level for a role field ('all' for admins)."""
    if actor.is_admin:
        return FIELD_LEVELS[field][-1]
    return getattr(actor.permissions, field)


def can_email(actor: Actor, action: str, facts: EmailFacts) -> bool:
    if actor.is_admin:
        return True
    field = EMAIL_ACTIONS[action][0]
    lvl = getattr(actor.permissions, field)
    if lvl == "all":
        return True
    if lvl == "no" or actor.user_id is None:
        return False
    owns = _owns(actor, action, facts)
    if lvl == "own":
        return owns
    return owns or bool(actor.team_ids & facts.team_ids)


def _owns(actor: Actor, action: str, facts: EmailFacts) -> bool:
    if action == "email.delete":
        # Deleting removes the email for everyone: "own" is narrower than for reading.
        return actor.user_id in (facts.assigned_user_id, facts.created_by_id)
    return actor.user_id in facts.user_ids


def require_email(actor: Actor, action: str, facts: EmailFacts, what: str) -> None:
    if not can_email(actor, action, facts):
        field, name = EMAIL_ACTIONS[action]
        deny(actor, f"{name} (your level: {level(actor, field)})", what)


def require_admin(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        deny(actor, "administrator", what)


def require_flag(actor: Actor, field: str, what: str) -> None:
    """Yes/no permissions: email_create, personal_accounts."""
    if level(actor, field) != "yes":
        deny(actor, field.replace("_", " ").replace("accounts", "email accounts"), what)


def can_send_through_group(actor: Actor, account_team_ids: Iterable[int]) -> bool:
    lvl = level(actor, "group_send")
    if lvl == "all":
        return True
    return lvl == "team" and bool(actor.team_ids & frozenset(account_team_ids))


def read_scope(actor: Actor) -> str:
    """How far the actor's lists reach: 'all', 'team', 'own' or 'no'."""
    return level(actor, "email_read")


def deny(actor: Actor, permission: str, what: str) -> None:
    log.warning("permission denied: user=%s permission=%r action=%r", actor.username, permission, what)
    raise PermissionDenied(
        f"{actor.username} may not {what}: missing permission '{permission}'; "
        f"ask an administrator to grant it in a role"
    )
