"""Notifications: what a user has been told (email received, stream notes on followed records)."""

from __future__ import annotations

from espomail.errors import InvalidInput, NotFound
from espomail.model import Page, counted_up_to
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services.emails import readable_ids
from espomail.services.people import get_user
from espomail.store import cases as cases_q
from espomail.store import emails as emails_q
from espomail.store import notifications as q
from espomail.store import people as people_q
from espomail.store.db import Row, Store


def notification_dicts(store: Store, rows: list[Row]) -> list[dict]:
    """Notifications as shown, with what they name read in one query per kind for all."""
    usernames = people_q.usernames(store, (r["user_id"] for r in rows))
    subjects = emails_q.subjects_of(store, (r["email_id"] for r in rows))
    numbers = cases_q.case_numbers(store, (r["record_id"] for r in rows if r["record_type"] == "case"))
    return [_notification(row, usernames, subjects, numbers) for row in rows]


def _notification(row: Row, usernames: dict, subjects: dict, case_numbers: dict) -> dict:
    record = None
    if row["record_type"]:
        shown = row["record_id"]
        if row["record_type"] == "case":
            shown = case_numbers.get(row["record_id"]) or shown
        record = {"type": row["record_type"], "id": shown}
    return {
        "id": row["id"],
        "user": usernames.get(row["user_id"]),
        "type": row["type"],
        "email_id": row["email_id"],
        "subject": subjects.get(row["email_id"]),
        "record": record,
        "is_read": bool(row["is_read"]),
        "created_at": row["created_at"],
    }


def _whose(store: Store, actor: Actor, user: str | None) -> int | None:
    if user:
        target = get_user(store, user)
        access.require(actor, "user.self", access.OwnerFacts(target["id"]), f"see the notifications of user '{user}'")
        return target["id"]
    return actor.user_id


def list_notifications(
    store: Store, actor: Actor, user: str | None = None, unread: bool = False, limit: int = 100, offset: int = 0
) -> Page:
    """A user's notifications, newest first, and how many there are; one about an email
    ``actor`` may not read (now: a role may have changed since) is left out (docs/access.md),
    though counted in the total."""
    user_id = _whose(store, actor, user)
    rows = q.list_for_user(store, user_id, unread, limit, offset)
    readable = readable_ids(store, actor, (r["email_id"] for r in rows))
    items = notification_dicts(store, [r for r in rows if r["email_id"] is None or r["email_id"] in readable])
    if len(rows) < limit and (rows or offset == 0):
        return Page(items, offset + len(rows))
    return Page(items, *q.count_for_user(store, user_id, unread, counted_up_to(offset, limit)))


def mark_read(store: Store, actor: Actor, notification_id: int | None, all_: bool, user: str | None = None) -> dict:
    """Mark one notification read, or ``all_`` of one user's: the acting user's, or (``user``)
    another's for an administrator. The system administrator (no ``--as``) has none of its
    own, so ``--all`` needs ``--user`` there (docs/cli.md)."""
    if (notification_id is None) == (not all_):
        raise InvalidInput("give a notification ID or --all")
    user_id = _whose(store, actor, user)
    if all_ and user_id is None:
        raise InvalidInput(
            "notifications belong to users: give --user U (or run as the user with --as U) to mark theirs read"
        )
    with store.atomic():
        if notification_id is not None:
            row = q.notification(store, notification_id)
            if row is None or (user_id is not None and row["user_id"] != user_id):
                raise NotFound(f"no notification {notification_id} of yours; see 'espomail notification list'")
        changed = q.mark_read(store, user_id, notification_id)
    return {"marked_read": changed}
