"""SQL for the health of fetching (SPEC 11): backoff of failing accounts, crashed runs,
stale accounts and a stuck outbox.

``account_health`` holds a row only for an account that is failing: how many fetches
failed in a row, when the next automatic attempt is due, and the error last printed on
stderr (so that cron mails it once per change, not every minute). A success deletes it.
"""

from __future__ import annotations

from espomail.model import FetchStatus
from espomail.store.db import Row, Store
from espomail.timeutil import now_iso

CRASHED = "crashed"  # a fetch_runs status: the run's process ended without finishing it
CRASH_NOTE = "the fetch process ended without finishing this run (killed, crashed or the machine stopped)"


# -- backoff -----------------------------------------------------------------------------


def account_health(store: Store, account_id: int) -> Row | None:
    return store.row("SELECT * FROM account_health WHERE account_id = ?", [account_id])


def record_failure(store: Store, account_id: int, failures: int, next_attempt_at: str | None, error_shown: str) -> None:
    values = [failures, next_attempt_at, error_shown, now_iso(), account_id]
    changed = store.execute(
        """UPDATE account_health SET failures = ?, next_attempt_at = ?, error_shown = ?, updated_at = ?
           WHERE account_id = ?""",
        values,
    )
    if not changed:
        store.execute(
            """INSERT INTO account_health (failures, next_attempt_at, error_shown, updated_at, account_id)
               VALUES (?, ?, ?, ?, ?)""",
            values,
        )


def record_success(store: Store, account_id: int) -> None:
    store.execute("DELETE FROM account_health WHERE account_id = ?", [account_id])


def clear_backoff(store: Store, account_id: int) -> None:
    """The next fetch tries the account at once (its settings changed)."""
    store.execute("UPDATE account_health SET next_attempt_at = NULL WHERE account_id = ?", [account_id])


# -- runs ----------------------------------------------------------------------------------


def close_crashed_runs(store: Store, account_id: int) -> int:
    """Runs of an account still ``running`` when a new run takes its lease: their process
    is gone (the lease proves it), so they crashed. Returns how many."""
    return store.execute(
        "UPDATE fetch_runs SET status = ?, finished_at = ?, error = ? WHERE account_id = ? AND status = ?",
        [CRASHED, now_iso(), CRASH_NOTE, account_id, FetchStatus.RUNNING],
    )


def latest_run(store: Store, account_id: int) -> Row | None:
    """The newest run, finished or not."""
    return store.row("SELECT * FROM fetch_runs WHERE account_id = ? ORDER BY id DESC LIMIT 1", [account_id])


def crashes_since(store: Store, account_id: int, since: str) -> tuple[int, str | None]:
    """(how many runs crashed since ``since``, when the last one started)."""
    row = store.row(
        """SELECT COUNT(*) AS n, MAX(started_at) AS last FROM fetch_runs
           WHERE account_id = ? AND status = ? AND started_at >= ?""",
        [account_id, CRASHED, since],
    )
    return (row["n"], row["last"]) if row else (0, None)


# -- accounts and the outbox ---------------------------------------------------------------------


def account_overview(store: Store) -> dict[int, Row]:
    """Per account: when it was made, who holds its lease, its backoff (if failing)."""
    rows = store.rows(
        """SELECT a.id, a.created_at, a.lease_holder, a.lease_expires_at,
                  h.failures, h.next_attempt_at, h.error_shown
           FROM mail_accounts a LEFT JOIN account_health h ON h.account_id = a.id"""
    )
    return {row["id"]: row for row in rows}


def stuck_outbox(store: Store, max_attempts: int, overdue_before: str) -> dict[int | None, int]:
    """System mail (auto-replies) that will not go out by itself: Failed with no tries
    left, or unsent (Failed or Sending) and untouched since ``overdue_before``.
    Sending account id (None: none or deleted) -> how many."""
    rows = store.rows(
        """SELECT e.sent_account_id AS account_id, COUNT(*) AS n FROM emails e
           WHERE e.status IN ('Failed', 'Sending') AND e.is_system = 1
             AND ((e.status = 'Failed' AND e.send_attempts >= ?) OR e.updated_at < ?)
           GROUP BY e.sent_account_id""",
        [max_attempts, overdue_before],
    )
    known = set(store.column("SELECT id FROM mail_accounts"))
    result: dict[int | None, int] = {}
    for row in rows:
        account_id = row["account_id"] if row["account_id"] in known else None
        result[account_id] = result.get(account_id, 0) + row["n"]
    return result
