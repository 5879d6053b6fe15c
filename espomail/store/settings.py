"""SQL for the key/value settings kept in the store (the system sender: outbound_*)."""

from __future__ import annotations

from espomail.store.db import Store


def get(store: Store, key: str) -> str | None:
    return store.value("SELECT value FROM settings WHERE key = ?", [key])


def put(store: Store, key: str, value: str | None) -> None:
    """Set ``key`` (None removes it)."""
    if value is None:
        store.execute("DELETE FROM settings WHERE key = ?", [key])
        return
    store.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
