"""SQL for ``espomail watch``'s heartbeats: one row per watched account folder and watch process.

A watch process (``holder``: host:pid) writes a row when it starts following a folder,
changes its mode (idle, poll, connecting), renews every row it holds with one statement
each poll interval, and deletes its rows when it stops. A row whose ``expires_at`` has
passed belongs to a watcher that died (``kill -9``, a crash, a lost host).
"""

from __future__ import annotations

from espomail.store.db import Row, Store


def set_watch(
    store: Store, account_id: int, folder: str, holder: str, mode: str, since: str | None, now: str, expires_at: str
) -> None:
    """Insert or replace the row of one folder watched by ``holder``."""
    store.execute(
        """INSERT INTO watch_heartbeats (account_id, folder, holder, mode, since, seen_at, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (account_id, folder, holder) DO UPDATE SET mode = excluded.mode, since = excluded.since,
           seen_at = excluded.seen_at, expires_at = excluded.expires_at""",
        [account_id, folder, holder, mode, since, now, expires_at],
    )


def renew_watches(store: Store, holder: str, now: str, expires_at: str) -> None:
    """The heartbeat: every row of ``holder`` is alive until ``expires_at``."""
    store.execute(
        "UPDATE watch_heartbeats SET seen_at = ?, expires_at = ? WHERE holder = ?",
        [now, expires_at, holder],
    )


def drop_watch(store: Store, account_id: int, folder: str, holder: str) -> None:
    store.execute(
        "DELETE FROM watch_heartbeats WHERE account_id = ? AND folder = ? AND holder = ?",
        [account_id, folder, holder],
    )


def drop_holder(store: Store, holder: str) -> None:
    """A watch process that stops removes its rows (and those of dead ones are left to expire)."""
    store.execute("DELETE FROM watch_heartbeats WHERE holder = ?", [holder])


def live_watches(store: Store, now: str) -> list[Row]:
    """The rows of watchers alive at ``now`` (times are ISO text in UTC: they sort as they compare)."""
    return store.rows(
        "SELECT * FROM watch_heartbeats WHERE expires_at > ? ORDER BY account_id, folder, holder",
        [now],
    )


def drop_expired(store: Store, before: str) -> None:
    """Rows of watchers that died long ago."""
    store.execute("DELETE FROM watch_heartbeats WHERE expires_at < ?", [before])
