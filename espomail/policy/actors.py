"""Who acts: the Actor of a user (their teams and merged role permissions), read from the store."""

from __future__ import annotations

from espomail.policy import access
from espomail.policy.access import Actor
from espomail.store import people as people_q
from espomail.store.db import Row, Store


def actor_of(store: Store, user: Row) -> Actor:
    """The Actor of a user row (active or not: the caller decides)."""
    roles = [dict(r) for r in people_q.user_roles(store, user["id"])]
    return Actor(
        user_id=user["id"],
        username=user["username"],
        is_admin=bool(user["is_admin"]),
        team_ids=frozenset(t["id"] for t in people_q.user_teams(store, user["id"])),
        permissions=access.merge(roles),
    )


def actor_by_id(store: Store, user_id: int) -> Actor | None:
    """The Actor of an active user (None when the user is gone or inactive)."""
    user = people_q.user_by_id(store, user_id)
    if user is None or not user["is_active"]:
        return None
    return actor_of(store, user)
