"""The high-volume writes of a batch, buffered and flushed with executemany.

Each delivery's steps put their rows into its own ``Writes``; when the delivery succeeds
they join the batch's ``BatchWriter``, which writes them all at the end of the batch in
the same transaction. A failing delivery's rows are simply dropped (its direct writes,
such as a new case, are undone by its savepoint). Later deliveries of the same batch see
earlier ones through ``pending_fields`` and ``pending_teams``.
"""

from __future__ import annotations

import dataclasses

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


@dataclasses.dataclass
class Writes:
    """One delivery's buffered rows."""

    emails: list[tuple] = dataclasses.field(default_factory=list)
    fields: dict[int, dict] = dataclasses.field(default_factory=dict)
    attachments: list[tuple] = dataclasses.field(default_factory=list)
    users: list[tuple] = dataclasses.field(default_factory=list)
    teams: list[tuple] = dataclasses.field(default_factory=list)
    finished: list[tuple] = dataclasses.field(default_factory=list)
    events: list[tuple] = dataclasses.field(default_factory=list)

    def email(self, email_id: int, values: dict) -> None:
        row = [_adapt(values[c]) for c in EMAIL_COLUMNS]
        self.emails.append((*row, now_iso(), email_id))
        self.fields[email_id] = values

    def add_attachments(self, email_id: int, attachments) -> None:  # noqa: ANN001
        self.attachments.extend(
            (email_id, a.part, a.filename, a.content_type, a.size, int(a.is_inline), a.content_id) for a in attachments
        )

    def add_users(self, email_id: int, sort_date: str | None, users: dict) -> None:
        self.users.extend(
            (email_id, uid, int(s.is_read), int(s.in_trash), s.folder_id, int(s.is_sender), sort_date, s.reason)
            for uid, s in users.items()
        )

    def add_teams(self, email_id: int, team_ids) -> None:  # noqa: ANN001
        self.teams.extend((email_id, t) for t in team_ids)

    def finish(self, delivery_id: int, state: str) -> None:
        self.finished.append((state, now_iso(), delivery_id))

    def add_events(self, email_id: int, delivery_id: int | None, events) -> None:  # noqa: ANN001
        """All decisions of one delivery in one row (``email explain`` unfolds it)."""
        trail = to_json([list(event) for event in events])
        self.events.append((email_id, delivery_id, "pipeline", "processed", trail, now_iso()))


class BatchWriter:
    """The rows of a batch's successful deliveries, written in one go."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending = Writes()
        self.touched: set[int] = set()

    def absorb(self, writes: Writes, email_id: int) -> None:
        for name in ("emails", "attachments", "users", "teams", "finished", "events"):
            getattr(self.pending, name).extend(getattr(writes, name))
        self.pending.fields.update(writes.fields)
        self.touched.add(email_id)

    def pending_fields(self, email_id: int) -> dict | None:
        return self.pending.fields.get(email_id)

    def pending_teams(self, email_id: int) -> set[int]:
        return {team for eid, team in self.pending.teams if eid == email_id}

    def flush(self) -> None:
        p, conn = self.pending, self.store.conn
        if p.emails:
            conn.executemany(_UPDATE_EMAIL, p.emails)
        if p.attachments:
            conn.executemany(
                """INSERT INTO attachments (email_id, part, filename, content_type, size, is_inline, content_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                p.attachments,
            )
        if p.users:
            conn.executemany(
                """INSERT INTO email_users (email_id, user_id, is_read, in_trash, in_archive, folder_id,
                   is_sender, sort_date, reason) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)
                   ON CONFLICT (email_id, user_id) DO NOTHING""",
                p.users,
            )
        if p.teams:
            conn.executemany(
                "INSERT INTO email_teams (email_id, team_id) VALUES (?, ?) ON CONFLICT (email_id, team_id) DO NOTHING",
                p.teams,
            )
        if p.finished:
            conn.executemany(
                "UPDATE email_deliveries SET state = ?, error = NULL, processed_at = ? WHERE id = ?", p.finished
            )
        if p.events:
            conn.executemany(
                """INSERT INTO email_events (email_id, delivery_id, step, decision, detail, created_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                p.events,
            )
        self.pending = Writes()
        self.touched = set()


def _adapt(value):  # noqa: ANN001, ANN202
    if isinstance(value, list | dict | tuple):
        return to_json(list(value) if isinstance(value, tuple) else value)
    if isinstance(value, bool):
        return int(value)
    return value
