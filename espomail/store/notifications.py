"""SQL for notifications and stream notes."""

from __future__ import annotations

from collections.abc import Iterable

from espomail.store.db import Row, Store
from espomail.timeutil import now_iso


def insert_note(
    store: Store,
    record_type: str,
    record_id: int,
    kind: str,
    email_id: int | None,
    body: str | None,
    is_initial: bool = False,
) -> int:
    return store.insert(
        "stream_notes",
        {
            "record_type": record_type,
            "record_id": record_id,
            "type": kind,
            "email_id": email_id,
            "body": body,
            "is_initial": is_initial,
            "created_at": now_iso(),
        },
    )


def notes_of(store: Store, record_type: str, record_id: int, limit: int = 50) -> list[Row]:
    return store.rows(
        "SELECT * FROM stream_notes WHERE record_type = ? AND record_id = ? ORDER BY id DESC LIMIT ?",
        [record_type, record_id, limit],
    )


def stream_of(store: Store, record_type: str, record_id: int) -> list[Row]:
    """Every stream note of a record, oldest first."""
    return store.rows(
        "SELECT * FROM stream_notes WHERE record_type = ? AND record_id = ? ORDER BY id", [record_type, record_id]
    )


def insert_notifications(store: Store, rows: Iterable[dict]) -> None:
    stamp = now_iso()
    store.executemany(
        """INSERT INTO notifications (user_id, type, email_id, note_id, record_type, record_id, is_read, created_at)
           VALUES (?, ?, ?, ?, ?, ?, 0, ?)""",
        [
            (
                r["user_id"],
                r["type"],
                r.get("email_id"),
                r.get("note_id"),
                r.get("record_type"),
                r.get("record_id"),
                stamp,
            )
            for r in rows
        ],
    )


def followers_of(store: Store, records: Iterable[tuple[str, int]]) -> dict[int, tuple[str, int]]:
    """user id -> the (type, id) of the first record in ``records`` they follow."""
    result: dict[int, tuple[str, int]] = {}
    for kind, record_id in records:
        for user_id in store.column(
            "SELECT user_id FROM followers WHERE record_type = ? AND record_id = ? ORDER BY user_id",
            [kind, record_id],
        ):
            result.setdefault(user_id, (kind, record_id))
    return result


def list_for_user(store: Store, user_id: int | None, unread: bool, limit: int, offset: int) -> list[Row]:
    clause, params = _user_filter(user_id, unread)
    return store.rows(
        f"SELECT * FROM notifications {clause} ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset]
    )


def count_for_user(store: Store, user_id: int | None, unread: bool, at_most: int) -> tuple[int, bool]:
    """How many notifications ``list_for_user`` lists in all: exactly (notifications_by_user,
    covering), or with ``unread`` up to ``at_most`` (newest first, where unread ones are):
    ``(at_most, False)`` when there are more."""
    clause, params = _user_filter(user_id, unread)
    if not unread:
        return store.value(f"SELECT COUNT(*) FROM notifications {clause}", params), True
    counted = store.value(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM notifications {clause} ORDER BY id DESC LIMIT ?) AS page",
        [*params, at_most + 1],
    )
    return (counted, True) if counted <= at_most else (at_most, False)


def _user_filter(user_id: int | None, unread: bool) -> tuple[str, list]:
    where, params = [], []
    if user_id is not None:
        where.append("user_id = ?")
        params.append(user_id)
    if unread:
        where.append("is_read = 0")
    return (f"WHERE {' AND '.join(where)}" if where else ""), params


def notification(store: Store, notification_id: int) -> Row | None:
    return store.row("SELECT * FROM notifications WHERE id = ?", [notification_id])


def mark_read(
    store: Store, user_id: int | None, notification_id: int | None = None, email_id: int | None = None
) -> int:
    where, params = ["is_read = 0"], []
    if user_id is not None:
        where.append("user_id = ?")
        params.append(user_id)
    if notification_id is not None:
        where.append("id = ?")
        params.append(notification_id)
    if email_id is not None:
        where.append("email_id = ?")
        params.append(email_id)
    return store.execute(f"UPDATE notifications SET is_read = 1 WHERE {' AND '.join(where)}", params)
