"""SQL for the outbox: outgoing emails owed a send, their claims, backoff and give-up.

An ``outbox`` row exists from the moment an outgoing email is stored until it is Sent. A
sender takes a row with ``claim`` inside a write transaction (BEGIN IMMEDIATE serialises
claimers on SQLite; the conditions in the UPDATE's WHERE re-checked under the row lock do it
on PostgreSQL, where a batch claim would add FOR UPDATE SKIP LOCKED), and the claim counts
the attempt on the email, so a crash mid-send still spends one try. ``next_attempt_at``
NULL means given up: the email stays Failed until ``email resend``.
"""

from __future__ import annotations

from collections.abc import Sequence

from espomail.store.db import Row, Store


def enqueue(store: Store, email_id: int, next_attempt_at: str, now: str) -> None:
    """Owe ``email_id`` a send from ``next_attempt_at`` on (a new email, or a resend)."""
    store.execute(
        """INSERT INTO outbox (email_id, next_attempt_at, created_at) VALUES (?, ?, ?)
           ON CONFLICT (email_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at,
           claim_holder = NULL, claimed_at = NULL, gave_up_at = NULL""",
        [email_id, next_attempt_at, now],
    )


def entry(store: Store, email_id: int) -> Row | None:
    return store.row("SELECT * FROM outbox WHERE email_id = ?", [email_id])


def due_ids(store: Store, due_by: str, stale_before: str, max_attempts: int, limit: int) -> list[int]:
    """Emails whose next attempt is due, unclaimed (or claimed before ``stale_before``), with tries left."""
    return store.column(
        """SELECT o.email_id FROM outbox o JOIN emails e ON e.id = o.email_id
           WHERE o.next_attempt_at <= ? AND (o.claim_holder IS NULL OR o.claimed_at < ?)
           AND e.send_attempts < ? ORDER BY o.next_attempt_at, o.email_id LIMIT ?""",
        [due_by, stale_before, max_attempts, limit],
    )


def claim(
    store: Store, email_id: int, holder: str, now: str, due_by: str, stale_before: str, max_attempts: int
) -> bool:
    """Take ``email_id`` for one attempt if it is due, not claimed by a live sender and has
    tries left; count the attempt. The caller holds the write transaction."""
    taken = store.execute(
        """UPDATE outbox SET claim_holder = ?, claimed_at = ?
           WHERE email_id = ? AND next_attempt_at IS NOT NULL AND next_attempt_at <= ?
           AND (claim_holder IS NULL OR claimed_at < ?)
           AND EXISTS (SELECT 1 FROM emails e WHERE e.id = outbox.email_id AND e.send_attempts < ?)""",
        [holder, now, email_id, due_by, stale_before, max_attempts],
    )
    if taken != 1:
        return False
    store.execute(
        "UPDATE emails SET send_attempts = send_attempts + 1, status = 'Sending', updated_at = ? WHERE id = ?",
        [now, email_id],
    )
    return True


def holders_like(store: Store, prefix: str) -> list[str]:
    """The claim holders whose name starts with ``prefix`` (this host's processes)."""
    return store.column(
        "SELECT DISTINCT claim_holder FROM outbox WHERE claim_holder LIKE ?", [prefix.replace("%", "") + "%"]
    )


def release_claims(store: Store, holders: Sequence[str]) -> int:
    """Drop the claims of ``holders`` (processes that died holding them)."""
    released = 0
    for holder in holders:
        released += store.execute(
            "UPDATE outbox SET claim_holder = NULL, claimed_at = NULL WHERE claim_holder = ?", [holder]
        )
    return released


def sent(store: Store, email_id: int) -> None:
    """Nothing more is owed: the email was accepted by the server."""
    store.execute("DELETE FROM outbox WHERE email_id = ?", [email_id])


def retry_at(store: Store, email_id: int, next_attempt_at: str) -> None:
    store.execute(
        "UPDATE outbox SET next_attempt_at = ?, claim_holder = NULL, claimed_at = NULL WHERE email_id = ?",
        [next_attempt_at, email_id],
    )


def give_up(store: Store, email_id: int, now: str) -> None:
    store.execute(
        """UPDATE outbox SET next_attempt_at = NULL, gave_up_at = ?, claim_holder = NULL, claimed_at = NULL
           WHERE email_id = ?""",
        [now, email_id],
    )


def health(store: Store, overdue_before: str, stale_before: str, recent_since: str) -> Row:
    """Counts for ``espomail status``: waiting, being sent, retrying, overdue, given up."""
    return store.row(
        """SELECT
             COUNT(CASE WHEN o.next_attempt_at IS NOT NULL AND o.claim_holder IS NULL
                        AND e.status = 'Sending' THEN 1 END) AS queued,
             COUNT(CASE WHEN o.claim_holder IS NOT NULL AND o.claimed_at >= ? THEN 1 END) AS sending,
             COUNT(CASE WHEN o.next_attempt_at IS NOT NULL AND o.claim_holder IS NULL
                        AND e.status = 'Failed' THEN 1 END) AS retrying,
             COUNT(CASE WHEN (o.next_attempt_at IS NOT NULL AND o.claim_holder IS NULL
                              AND o.next_attempt_at < ?)
                        OR (o.claim_holder IS NOT NULL AND o.claimed_at < ?) THEN 1 END) AS overdue,
             COUNT(CASE WHEN o.next_attempt_at IS NULL THEN 1 END) AS failed_for_good,
             COUNT(CASE WHEN o.next_attempt_at IS NULL AND o.gave_up_at >= ? THEN 1 END) AS failed_for_good_recent,
             MIN(CASE WHEN o.next_attempt_at IS NOT NULL AND o.claim_holder IS NULL
                      AND o.next_attempt_at < ? THEN o.next_attempt_at END) AS oldest_overdue_at
           FROM outbox o JOIN emails e ON e.id = o.email_id""",
        [stale_before, overdue_before, stale_before, recent_since, overdue_before],
    )
