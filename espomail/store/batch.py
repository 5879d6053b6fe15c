"""SQL for the high-volume writes of an import batch, buffered and run with executemany.

The pipeline puts each delivery's rows into a ``Writes`` (the tuples here have the
column order of the statements below); ``pipeline.writes.BatchWriter`` gathers the
successful deliveries' ``Writes`` and hands them to ``flush`` at the end of the batch,
inside the batch's transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from espomail.store.db import Store, to_json
from espomail.timeutil import now_iso

# The columns processing decides (the rest was stored with the raw message), in a fixed
# order for executemany.
EMAIL_COLUMNS = (
    "parent_type",
    "parent_id",
    "crm_account_id",
    "replied_id",
    "assigned_user_id",
    "group_folder_id",
)
_UPDATE_EMAIL = (
    "UPDATE emails SET "
    + ", ".join(f"{c} = ?" for c in EMAIL_COLUMNS)
    + ", state = 'processed', last_error = NULL, updated_at = ? WHERE id = ?"
)
_INSERT_ATTACHMENTS = """INSERT INTO attachments (email_id, part, filename, content_type, size, is_inline, content_id)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""
_INSERT_USERS = """INSERT INTO email_users (email_id, user_id, is_read, in_trash, in_archive, folder_id,
    is_sender, sort_date, reason) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)
    ON CONFLICT (email_id, user_id) DO NOTHING"""
_INSERT_TEAMS = "INSERT INTO email_teams (email_id, team_id) VALUES (?, ?) ON CONFLICT (email_id, team_id) DO NOTHING"
_FINISH_DELIVERIES = "UPDATE email_deliveries SET state = ?, error = NULL, processed_at = ? WHERE id = ?"
_INSERT_EVENTS = """INSERT INTO email_events (email_id, delivery_id, step, decision, detail, created_at)
    VALUES (?, ?, ?, ?, ?, ?)"""


@dataclasses.dataclass
class Writes:
    """One delivery's (or a whole batch's) buffered rows."""

    emails: list[tuple] = dataclasses.field(default_factory=list)
    fields: dict[int, dict] = dataclasses.field(default_factory=dict)
    attachments: list[tuple] = dataclasses.field(default_factory=list)
    users: list[tuple] = dataclasses.field(default_factory=list)
    teams: list[tuple] = dataclasses.field(default_factory=list)
    finished: list[tuple] = dataclasses.field(default_factory=list)
    events: list[tuple] = dataclasses.field(default_factory=list)

    ROWS = ("emails", "attachments", "users", "teams", "finished", "events")

    def email(self, email_id: int, values: Mapping[str, Any]) -> None:
        """The EMAIL_COLUMNS of a processed email (it becomes ``processed``)."""
        row = [_adapt(values[c]) for c in EMAIL_COLUMNS]
        self.emails.append((*row, now_iso(), email_id))
        self.fields[email_id] = dict(values)

    def add_attachments(self, email_id: int, attachments: Iterable) -> None:
        self.attachments.extend(
            (email_id, a.part, a.filename, a.content_type, a.size, int(a.is_inline), a.content_id) for a in attachments
        )

    def add_users(self, email_id: int, sort_date: str | None, users: Mapping) -> None:
        """``users``: user id -> a UserState (model.UserState)."""
        self.users.extend(
            (email_id, uid, int(s.is_read), int(s.in_trash), s.folder_id, int(s.is_sender), sort_date, s.reason)
            for uid, s in users.items()
        )

    def add_teams(self, email_id: int, team_ids: Iterable[int]) -> None:
        self.teams.extend((email_id, t) for t in team_ids)

    def finish(self, delivery_id: int, state: str) -> None:
        self.finished.append((state, now_iso(), delivery_id))

    def add_events(self, email_id: int, delivery_id: int | None, events: Iterable) -> None:
        """All decisions of one delivery in one row (``email explain`` unfolds it)."""
        trail = to_json([list(event) for event in events])
        self.events.append((email_id, delivery_id, "pipeline", "processed", trail, now_iso()))

    def extend(self, other: Writes) -> None:
        for name in self.ROWS:
            getattr(self, name).extend(getattr(other, name))
        self.fields.update(other.fields)


def flush(store: Store, writes: Writes) -> None:
    """Run the buffered rows (the caller holds the transaction)."""
    if store.engine == "postgresql":
        _flush_postgres(store, writes)
        return
    for sql, rows in (
        (_UPDATE_EMAIL, writes.emails),
        (_INSERT_ATTACHMENTS, writes.attachments),
        (_INSERT_USERS, writes.users),
        (_INSERT_TEAMS, writes.teams),
        (_FINISH_DELIVERIES, writes.finished),
        (_INSERT_EVENTS, writes.events),
    ):
        if rows:
            store.executemany(sql, rows)


# PostgreSQL: the same rows through COPY (plain inserts) and staging tables (updates, inserts
# that may meet an existing row): a statement per table and batch instead of one per row,
# which costs the client a tenth and the server half of what executemany does. An UPDATE
# from a staging table also names its ids (``= ANY``): the stage has no statistics, and with
# the table's own out of date (a table growing through a large fetch) the planner joined
# them by hashing the whole table, once per batch: quadratic over a first fetch (24 ms a
# batch at 10,000 messages and growing; auto_explain). By the ids it reads the batch's rows.
_ATTACHMENT_COLUMNS = ("email_id", "part", "filename", "content_type", "size", "is_inline", "content_id")
_USER_COLUMNS = ("email_id", "user_id", "is_read", "in_trash", "folder_id", "is_sender", "sort_date", "reason")
_EVENT_COLUMNS = ("email_id", "delivery_id", "step", "decision", "detail", "created_at")


def _flush_postgres(store: Store, writes: Writes) -> None:
    if writes.emails:
        stage = store.stage("emails", (*EMAIL_COLUMNS, "updated_at", "id"), writes.emails)
        assignments = ", ".join(f"{c} = s.{c}" for c in EMAIL_COLUMNS)
        store.execute(
            f"""UPDATE emails SET {assignments}, state = 'processed', last_error = NULL, updated_at = s.updated_at
                FROM {stage} AS s WHERE emails.id = s.id AND emails.id = ANY(?::bigint[])""",
            [[row[-1] for row in writes.emails]],
        )
    if writes.attachments:
        store.copy_rows("attachments", _ATTACHMENT_COLUMNS, writes.attachments)
    if writes.users:
        stage = store.stage("email_users", _USER_COLUMNS, writes.users)
        columns = ", ".join(_USER_COLUMNS)
        store.execute(
            f"""INSERT INTO email_users ({columns}, in_archive) SELECT {columns}, 0 FROM {stage}
                ON CONFLICT (email_id, user_id) DO NOTHING"""
        )
    if writes.teams:
        stage = store.stage("email_teams", ("email_id", "team_id"), writes.teams)
        store.execute(
            f"""INSERT INTO email_teams (email_id, team_id) SELECT email_id, team_id FROM {stage}
                ON CONFLICT (email_id, team_id) DO NOTHING"""
        )
    if writes.finished:
        stage = store.stage("email_deliveries", ("state", "processed_at", "id"), writes.finished)
        store.execute(
            f"""UPDATE email_deliveries SET state = s.state, error = NULL, processed_at = s.processed_at
                FROM {stage} AS s WHERE email_deliveries.id = s.id AND email_deliveries.id = ANY(?::bigint[])""",
            [[row[-1] for row in writes.finished]],
        )
    if writes.events:
        store.copy_rows("email_events", _EVENT_COLUMNS, writes.events)


def _adapt(value: Any) -> Any:
    if isinstance(value, list | dict | tuple):
        return to_json(list(value) if isinstance(value, tuple) else value)
    if isinstance(value, bool):
        return int(value)
    return value
