"""SQL for emails: storing raw mail, deliveries, parsed fields, relations and the event trail."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from espomail.model import DeliveryState, ProcessingState
from espomail.store import blobs
from espomail.store.db import Row, Store, rows_by_id, values_by_id
from espomail.timeutil import now_iso

# -- reading ------------------------------------------------------------------------------


def email_by_id(store: Store, email_id: int) -> Row | None:
    return store.row("SELECT * FROM emails WHERE id = ?", [email_id])


def has_emails(store: Store) -> bool:
    return store.value("SELECT 1 FROM emails LIMIT 1") is not None


def subjects_of(store: Store, email_ids: Iterable[int | None]) -> dict[int, str | None]:
    return values_by_id(store, "emails", "subject", email_ids)


def ids_by_message_ids(store: Store, message_ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    unique = list(dict.fromkeys(message_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in store.rows(f"SELECT id, message_id FROM emails WHERE message_id IN ({marks})", chunk):
            found[row["message_id"]] = row["id"]
    return found


def stored_under(store: Store, keys: Sequence[str]) -> dict[str, Row]:
    """key -> the email stored under it (id, raw_sha256 and where its raw source is)."""
    found: dict[str, Row] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in store.rows(
            "SELECT id, message_id, raw_sha256, raw_pack, raw_offset, raw_size FROM emails "
            f"WHERE message_id IN ({marks})",
            chunk,
        ):
            found[row["message_id"]] = row
    return found


def raw_of(store: Store, email_id: int) -> bytes:
    """The raw source, checked against its SHA-256 (RawSourceError naming the email if not intact)."""
    row = store.row("SELECT raw_pack, raw_offset, raw_size, raw_sha256 FROM emails WHERE id = ?", [email_id])
    if row is None or row["raw_pack"] is None:
        return b""
    try:
        return store.raw.read((row["raw_pack"], row["raw_offset"], row["raw_size"], row["raw_sha256"]))
    except blobs.RawSourceError as exc:
        raise blobs.RawSourceError(f"email {email_id}: {exc.message}") from None


def raw_places(store: Store, email_id: int) -> list[tuple[str, int, int]]:
    """Where an email's raw sources are: its own, and every copy its deliveries brought
    (the same message from other mailboxes)."""
    rows = store.rows(
        """SELECT raw_pack, raw_offset, raw_size FROM emails WHERE id = ? AND raw_pack IS NOT NULL
           UNION SELECT raw_pack, raw_offset, raw_size FROM email_deliveries
           WHERE email_id = ? AND raw_pack IS NOT NULL""",
        [email_id, email_id],
    )
    return [(r["raw_pack"], r["raw_offset"], r["raw_size"]) for r in rows]


def delivered_to_account(store: Store, email_ids: Sequence[int], account_id: int | None) -> set[int]:
    """Of ``email_ids``, those this account brought already (any state)."""
    if account_id is None or not email_ids:
        return set()
    if store.engine == "postgresql":
        # One index probe per id, whatever the statistics say: with the account's rows counted
        # as few (a table grown by this very fetch, a new account), PostgreSQL read every
        # delivery of the account per batch and filtered it by the list, which made a large
        # first fetch quadratic (docs/performance.md).
        return set(
            store.column(
                """SELECT i.id FROM unnest(?::bigint[]) AS i(id), LATERAL (SELECT 1 FROM email_deliveries d
                   WHERE d.account_id = ? AND d.email_id = i.id LIMIT 1) AS hit""",
                [list(email_ids), account_id],
            )
        )
    found: set[int] = set()
    ids = list(email_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        found.update(
            store.column(
                f"SELECT email_id FROM email_deliveries WHERE account_id = ? AND email_id IN ({marks})",
                [account_id, *chunk],
            )
        )
    return found


def unfinished_deliveries(store: Store, max_attempts: int, account_ids: Sequence[int] | None = None) -> list[Row]:
    """Pending deliveries, and failed ones not yet tried ``max_attempts`` times."""
    rows = store.rows(
        """SELECT * FROM email_deliveries WHERE state IN ('pending', 'failed')
           AND (state = 'pending' OR attempts < ?) ORDER BY id""",
        [max_attempts],
    )
    if account_ids is None:
        return rows
    wanted = set(account_ids)
    return [r for r in rows if r["account_id"] in wanted]


def failed_deliveries(store: Store) -> list[Row]:
    return store.rows("SELECT * FROM email_deliveries WHERE state IN ('failed', 'pending') ORDER BY id")


def deliveries_of(store: Store, email_id: int) -> list[Row]:
    return store.rows("SELECT * FROM email_deliveries WHERE email_id = ? ORDER BY id", [email_id])


def unfinished_counts(store: Store, account_id: int) -> dict[str, int]:
    """Failed and pending deliveries of an account: state -> how many."""
    rows = store.rows(
        """SELECT state, COUNT(*) AS n FROM email_deliveries WHERE account_id = ?
           AND state IN ('failed', 'pending') GROUP BY state""",
        [account_id],
    )
    return {r["state"]: r["n"] for r in rows}


# -- storing raw mail (the store-first half of a fetch) ------------------------------------


def insert_raw_email(store: Store, values: dict, raw: bytes) -> int:
    stamp = now_iso()
    values = {"state": ProcessingState.PENDING, **values}
    [where] = store.raw.put([(blobs.digest(raw), raw)])  # synced (or in the database) before the row commits
    email_id = store.insert(
        "emails",
        {
            **values,
            "raw_sha256": where.sha256,
            "raw_pack": where.pack,
            "raw_offset": where.offset,
            "raw_size": where.size,
            "created_at": stamp,
            "updated_at": stamp,
        },
    )
    return email_id


FETCHED_COLUMNS = (
    "message_id",
    "has_message_id",
    "subject",
    "from_address",
    "from_name",
    "to_list",
    "cc_list",
    "bcc_list",
    "reply_to_list",
    "address_names",
    "date_sent",
    "in_reply_to",
    "references_list",
    "raw_size",
    "truncated",
    "raw_sha256",
    "raw_pack",
    "raw_offset",
    "is_auto_reply",
    "is_auto_submitted",
    "is_bounce",
)
_INSERT_FETCHED = (
    f"INSERT INTO emails ({', '.join(FETCHED_COLUMNS)}, state, created_at, updated_at) "
    f"VALUES ({', '.join('?' for _ in FETCHED_COLUMNS)}, 'pending', ?, ?)"
)


_SHA, _PACK, _OFFSET, _SIZE = (FETCHED_COLUMNS.index(c) for c in ("raw_sha256", "raw_pack", "raw_offset", "raw_size"))


def insert_fetched_many(store: Store, rows: list[tuple]) -> dict[str, int]:
    """Insert fetched messages (FETCHED_COLUMNS order, the key first); key -> new id.

    SQLite: one writer holds the transaction (BEGIN IMMEDIATE), and no other can have
    inserted one of these keys since the caller looked them up, so the new rows take
    consecutive ids after the largest one (rowid = max + 1).

    PostgreSQL: another fetch host may insert the same Message-ID at the same moment. The
    unique index decides: ``ON CONFLICT DO NOTHING`` waits for the other transaction, and a
    key it stored is simply "already stored" (its id is read back). Keys are inserted in
    sorted order, so two hosts wait for each other's keys in the same order (no deadlock).
    """
    if not rows:
        return {}
    rows = _with_raw_adopted(store, rows)
    stamp = now_iso()
    if store.engine == "postgresql":
        columns = (*FETCHED_COLUMNS, "created_at", "updated_at")
        stage = store.stage("emails", columns, [(*row, stamp, stamp) for row in rows])
        listed = ", ".join(columns)
        returned = store.rows(
            f"""INSERT INTO emails ({listed}, state) SELECT {listed}, 'pending' FROM {stage} ORDER BY message_id
                ON CONFLICT (message_id) DO NOTHING RETURNING id, message_id"""
        )
        found = {r["message_id"]: r["id"] for r in returned}
        missing = [row[0] for row in rows if row[0] not in found]
        if missing:
            found.update(ids_by_message_ids(store, missing))  # stored meanwhile by another host
        return found
    store.executemany(_INSERT_FETCHED, [(*row, stamp, stamp) for row in rows])
    last = store.value("SELECT MAX(id) FROM emails")
    first = last - len(rows) + 1
    return {row[0]: first + index for index, row in enumerate(rows)}


def _with_raw_adopted(store: Store, rows: list[tuple]) -> list[tuple]:
    """The rows with the locations their raw sources have in the store (on PostgreSQL the
    spooled sources move into the database here)."""
    places = store.raw.adopt([(r[_PACK], r[_OFFSET], r[_SIZE], r[_SHA]) for r in rows])
    if all(place[0] == row[_PACK] and place[1] == row[_OFFSET] for place, row in zip(places, rows, strict=True)):
        return rows
    adopted = []
    for row, (pack, offset, _size) in zip(rows, places, strict=True):
        row = list(row)
        row[_PACK], row[_OFFSET] = pack, offset
        adopted.append(tuple(row))
    return adopted


_INSERT_DELIVERIES = """INSERT INTO email_deliveries (email_id, account_id, folder, uid, raw_pack, raw_offset, raw_size,
    arrived_at, allow_auto_reply, allow_case, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)"""


def insert_deliveries(store: Store, rows: list[tuple]) -> list[int]:
    """(email_id, account_id, folder, uid, raw_pack, raw_offset, raw_size, arrived_at,
    allow_auto_reply, allow_case) rows -> their new ids, in order (see above; PostgreSQL
    returns them)."""
    if not rows:
        return []
    stamp = now_iso()
    places = store.raw.adopt([(r[4], r[5], r[6], None) for r in rows])
    rows = [(*row[:4], *place, *row[7:], stamp) for row, place in zip(rows, places, strict=True)]
    if store.engine == "postgresql":
        ids = store.next_ids("email_deliveries", len(rows))
        columns = (
            "id", "email_id", "account_id", "folder", "uid", "raw_pack", "raw_offset", "raw_size", "arrived_at",
            "allow_auto_reply", "allow_case", "created_at",
        )  # fmt: skip
        store.copy_rows("email_deliveries", columns, [(i, *row) for i, row in zip(ids, rows, strict=True)])
        return ids
    store.executemany(_INSERT_DELIVERIES, rows)
    last = store.value("SELECT MAX(id) FROM email_deliveries")
    return list(range(last - len(rows) + 1, last + 1))


def claim_deliveries(store: Store, ids: Sequence[int]) -> dict[int, Row]:
    """The deliveries to process now, by id (the caller holds the transaction).

    On PostgreSQL each is locked until the transaction ends, and one that another fetch host
    is processing right now is left out (SKIP LOCKED): it is that host's, and it will be
    done (or still pending, and retried) when its transaction ends. On SQLite the write
    lock already makes the transaction the only one."""
    if store.engine != "postgresql":
        return by_ids(store, "email_deliveries", ids)
    return _by_ids_locked(store, "email_deliveries", ids, "FOR UPDATE SKIP LOCKED")


def lock_emails(store: Store, ids: Iterable[int]) -> dict[int, Row]:
    """The emails about to be processed, by id, locked on PostgreSQL (in id order, so two
    hosts never wait for each other crosswise): a second host processing another delivery of
    the same email waits, then sees it processed (a duplicate, not a second import)."""
    ids = sorted(set(ids))
    if store.engine != "postgresql":
        return by_ids(store, "emails", ids)
    return _by_ids_locked(store, "emails", ids, "FOR NO KEY UPDATE")


def _by_ids_locked(store: Store, table: str, ids: Sequence[int], lock: str) -> dict[int, Row]:
    found: dict[int, Row] = {}
    ids = sorted(ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in store.rows(f"SELECT * FROM {table} WHERE id IN ({marks}) ORDER BY id {lock}", chunk):
            found[row["id"]] = row
    return found


def by_ids(store: Store, table: str, ids: Sequence[int]) -> dict[int, Row]:
    """Rows of ``table`` by id, for a whole batch in one query per 500."""
    return {row_id: found[0] for row_id, found in rows_by_id(store, f"SELECT * FROM {table} WHERE id IN", ids).items()}


def insert_delivery(store: Store, email_id: int, account_id: int | None, folder: str | None, uid: int | None) -> int:
    return store.insert(
        "email_deliveries",
        {
            "email_id": email_id,
            "account_id": account_id,
            "folder": folder,
            "uid": uid,
            "state": DeliveryState.PENDING,
            "created_at": now_iso(),
        },
    )


# -- processing results ----------------------------------------------------------------------


def save_parsed(store: Store, email_id: int, values: dict) -> None:
    store.update("emails", email_id, {**values, "updated_at": now_iso()})


def finish_delivery(store: Store, delivery_id: int, state: str, error: str | None = None) -> None:
    store.execute(
        "UPDATE email_deliveries SET state = ?, error = ?, processed_at = ? WHERE id = ?",
        [state, error, now_iso(), delivery_id],
    )


def set_state(store: Store, email_id: int, state: str, error: str | None = None) -> None:
    store.execute(
        "UPDATE emails SET state = ?, last_error = ?, updated_at = ? WHERE id = ?",
        [state, error, now_iso(), email_id],
    )


def mark_failed(store: Store, delivery: Row, error: str, is_new: bool) -> None:
    store.execute(
        """UPDATE email_deliveries SET state = 'failed', error = ?, attempts = attempts + 1,
           processed_at = ? WHERE id = ?""",
        [error[:2000], now_iso(), delivery["id"]],
    )
    if is_new:
        set_state(store, delivery["email_id"], ProcessingState.FAILED, error[:2000])
    else:
        store.execute("UPDATE emails SET last_error = ? WHERE id = ?", [error[:2000], delivery["email_id"]])


def delete_email(store: Store, email_id: int) -> None:
    """The email and (cascading) its deliveries, per-user rows, teams, attachments, events."""
    store.execute("DELETE FROM emails WHERE id = ?", [email_id])


def erase_raw(store: Store, places: Iterable[tuple[str, int, int]]) -> None:
    """Overwrite deleted raw sources (``raw_places`` read before the deletion committed)."""
    store.raw.zero(places)


# -- sending ---------------------------------------------------------------------------------


def record_send(store: Store, email_id: int, status: str, error: str | None, account_id: int | None = None) -> None:
    """The outcome of a send attempt (the attempt was counted when it was claimed, see
    store.outbox.claim): Sent (``error`` may note recipients refused) or Failed."""
    store.execute(
        """UPDATE emails SET status = ?, last_error = ?, sent_account_id = COALESCE(?, sent_account_id),
           updated_at = ? WHERE id = ?""",
        [status, error[:2000] if error else None, account_id, now_iso(), email_id],
    )


def reset_send_attempts(store: Store, email_id: int) -> None:
    """``email resend``: the count starts again."""
    store.execute("UPDATE emails SET send_attempts = 0, updated_at = ? WHERE id = ?", [now_iso(), email_id])


def claim_unsent(store: Store, email_id: int, stale_before: str) -> bool:
    """Take one unsent system email for another try (Sending, stamped now), unless another
    run took it first: two runs never send it both."""
    changed = store.execute(
        """UPDATE emails SET status = 'Sending', updated_at = ? WHERE id = ? AND is_system = 1
           AND (status = 'Failed' OR (status = 'Sending' AND updated_at < ?))""",
        [now_iso(), email_id, stale_before],
    )
    return changed == 1


def count_system_sends(store: Store, address: str, since: str) -> int:
    """System messages (auto-replies) sent to ``address`` (lower-cased) after ``since``."""
    return store.value("SELECT COUNT(*) FROM system_sends WHERE address_lower = ? AND sent_at > ?", [address, since])


def record_system_send(store: Store, address: str, email_id: int, sent_at: str) -> None:
    store.execute(
        "INSERT INTO system_sends (address_lower, email_id, sent_at) VALUES (?, ?, ?)",
        [address, email_id, sent_at],
    )


# -- the trail and the relations ---------------------------------------------------------------


def insert_events(store: Store, email_id: int, delivery_id: int | None, events: Iterable[tuple]) -> None:
    stamp = now_iso()
    store.executemany(
        """INSERT INTO email_events (email_id, delivery_id, step, decision, detail, created_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        [(email_id, delivery_id, step, decision, detail, stamp) for step, decision, detail in events],
    )


def events_of(store: Store, email_id: int) -> list[Row]:
    return store.rows("SELECT * FROM email_events WHERE email_id = ? ORDER BY id", [email_id])


def user_ids_of(store: Store, email_id: int) -> set[int]:
    return set(store.column("SELECT user_id FROM email_users WHERE email_id = ?", [email_id]))


def team_ids_of(store: Store, email_id: int) -> set[int]:
    return set(store.column("SELECT team_id FROM email_teams WHERE email_id = ?", [email_id]))


def team_ids_by_email(store: Store, email_ids: Iterable[int]) -> dict[int, set[int]]:
    """The teams of several emails (one query per 500)."""
    rows = rows_by_id(store, "SELECT email_id, team_id FROM email_teams WHERE email_id IN", email_ids, key="email_id")
    return {email_id: {r["team_id"] for r in found} for email_id, found in rows.items()}


def readers_of(store: Store, email_ids: Sequence[int]) -> dict[int, tuple[set[int], set[int]]]:
    """email id -> (its user ids, its team ids): what the read check needs, for many emails."""
    email_ids = list(email_ids)
    users = rows_by_id(store, "SELECT email_id, user_id FROM email_users WHERE email_id IN", email_ids, key="email_id")
    teams = team_ids_by_email(store, email_ids)
    return {i: ({r["user_id"] for r in users.get(i, [])}, teams.get(i, set())) for i in email_ids}


def add_users(store: Store, email_id: int, sort_date: str | None, users: dict) -> None:
    store.executemany(
        """INSERT INTO email_users (email_id, user_id, is_read, in_trash, in_archive, folder_id,
           is_sender, sort_date, reason) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)
           ON CONFLICT (email_id, user_id) DO NOTHING""",
        [
            (
                email_id,
                uid,
                int(s.is_read),
                int(s.in_trash),
                s.folder_id,
                int(s.is_sender),
                sort_date,
                s.reason,
            )
            for uid, s in users.items()
        ],
    )


def set_user_state(store: Store, email_id: int, user_id: int, changes: dict) -> None:
    """Change one user's columns of an email (is_read, in_trash, in_archive, folder_id)."""
    assignments = ", ".join(f"{column} = ?" for column in changes)
    store.execute(
        f"UPDATE email_users SET {assignments} WHERE email_id = ? AND user_id = ?",
        [*changes.values(), email_id, user_id],
    )


def ensure_user(store: Store, email_id: int, user_id: int, sort_date: str | None, reason: str) -> None:
    """A per-user row for ``user_id`` unless there is one."""
    store.execute(
        """INSERT INTO email_users (email_id, user_id, sort_date, reason) VALUES (?, ?, ?, ?)
           ON CONFLICT (email_id, user_id) DO NOTHING""",
        [email_id, user_id, sort_date, reason],
    )


def add_teams(store: Store, email_id: int, team_ids: Iterable[int]) -> None:
    store.executemany(
        "INSERT INTO email_teams (email_id, team_id) VALUES (?, ?) ON CONFLICT (email_id, team_id) DO NOTHING",
        [(email_id, t) for t in team_ids],
    )


def remove_team(store: Store, email_id: int, team_id: int) -> None:
    store.execute("DELETE FROM email_teams WHERE email_id = ? AND team_id = ?", [email_id, team_id])


def add_attachments(store: Store, email_id: int, attachments: Iterable) -> None:
    store.executemany(
        """INSERT INTO attachments (email_id, part, filename, content_type, size, is_inline, content_id)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        [(email_id, a.part, a.filename, a.content_type, a.size, int(a.is_inline), a.content_id) for a in attachments],
    )


def replace_attachments(store: Store, email_id: int, attachments: Iterable) -> None:
    store.execute("DELETE FROM attachments WHERE email_id = ?", [email_id])
    add_attachments(store, email_id, attachments)


def attachments_of(store: Store, email_id: int) -> list[Row]:
    return store.rows("SELECT * FROM attachments WHERE email_id = ? ORDER BY id", [email_id])


def as_json_list(values: Iterable[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


# -- the relations of a page of emails, a query each (lists show 100 at a time) -------------


def _grouped(store: Store, sql: str, ids: Sequence[int], extra: Sequence = ()) -> dict[int, list[Row]]:
    """Rows of ``sql`` (which selects ``email_id``) grouped by email."""
    found: dict[int, list[Row]] = {i: [] for i in ids}
    if not ids:
        return found
    marks = ", ".join("?" for _ in ids)
    for row in store.rows(sql.format(marks=marks), [*extra, *ids]):
        found[row["email_id"]].append(row)
    return found


def relations_of(store: Store, ids: Sequence[int], user_id: int | None = None) -> dict[str, dict[int, list[Row]]]:
    """Teams, users, fetching accounts, attachments (and one user's state) of ``ids``."""
    ids = list(ids)
    result = {
        "teams": _grouped(
            store,
            "SELECT et.email_id, t.name FROM email_teams et JOIN teams t ON t.id = et.team_id "
            "WHERE et.email_id IN ({marks}) ORDER BY t.name",
            ids,
        ),
        "users": _grouped(
            store,
            "SELECT eu.email_id, u.username FROM email_users eu JOIN users u ON u.id = eu.user_id "
            "WHERE eu.email_id IN ({marks}) ORDER BY u.username",
            ids,
        ),
        "accounts": _grouped(
            store,
            "SELECT DISTINCT d.email_id, a.name FROM email_deliveries d JOIN mail_accounts a ON a.id = d.account_id "
            "WHERE d.email_id IN ({marks}) AND d.state = 'done' ORDER BY a.name",
            ids,
        ),
        "attachments": _grouped(store, "SELECT * FROM attachments WHERE email_id IN ({marks}) ORDER BY id", ids),
    }
    if user_id is not None:
        result["state"] = _grouped(
            store,
            "SELECT eu.*, f.name AS folder_name FROM email_users eu "
            "LEFT JOIN folders f ON f.id = eu.folder_id WHERE eu.user_id = ? AND eu.email_id IN ({marks})",
            ids,
            [user_id],
        )
    return result
