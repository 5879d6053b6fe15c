"""SQL for email filters (the order they are tried in is policy.filters.in_order)."""

from __future__ import annotations

from espomail.store.db import Row, Store
from espomail.timeutil import now_iso


def filter_by_id(store: Store, filter_id: int) -> Row | None:
    return store.row("SELECT * FROM filters WHERE id = ?", [filter_id])


def filters_by_name(store: Store, name: str) -> list[Row]:
    return store.rows("SELECT * FROM filters WHERE name = ? ORDER BY id", [name])


def all_filters(store: Store) -> list[Row]:
    return store.rows("SELECT * FROM filters ORDER BY id")


def global_filters(store: Store) -> list[Row]:
    return store.rows("SELECT * FROM filters WHERE scope = 'global' ORDER BY id")


def account_filters(store: Store, account_id: int) -> list[Row]:
    return store.rows("SELECT * FROM filters WHERE scope = 'account' AND account_id = ? ORDER BY id", [account_id])


def user_filters(store: Store, user_id: int) -> list[Row]:
    return store.rows("SELECT * FROM filters WHERE scope = 'user' AND user_id = ? ORDER BY id", [user_id])


def users_with_filters(store: Store) -> set[int]:
    """Every user who has filters of their own."""
    return set(store.column("SELECT DISTINCT user_id FROM filters WHERE scope = 'user'"))


def insert_filter(store: Store, values: dict) -> int:
    return store.insert("filters", {**values, "created_at": now_iso()})


def delete_filter(store: Store, filter_id: int) -> None:
    store.execute("DELETE FROM filters WHERE id = ?", [filter_id])
