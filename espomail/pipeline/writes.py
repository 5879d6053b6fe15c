"""The high-volume writes of a batch, buffered and flushed together (SQL: store/batch.py).

Each delivery's steps put their rows into its own ``Writes``; when the delivery succeeds
they join the batch's ``BatchWriter``, which writes them all at the end of the batch in
the same transaction. A failing delivery's rows are simply dropped (its direct writes,
such as a new case, are undone by its savepoint). Later deliveries of the same batch see
earlier ones through ``pending_fields`` and ``pending_teams``.
"""

from __future__ import annotations

from espomail.store import batch as batch_q
from espomail.store.batch import Writes
from espomail.store.db import Store

__all__ = ["BatchWriter", "Writes"]


class BatchWriter:
    """The rows of a batch's successful deliveries, written in one go."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending = Writes()
        self.touched: set[int] = set()

    def absorb(self, writes: Writes, email_id: int) -> None:
        self.pending.extend(writes)
        self.touched.add(email_id)

    def pending_fields(self, email_id: int) -> dict | None:
        return self.pending.fields.get(email_id)

    def pending_teams(self, email_id: int) -> set[int]:
        return {team for eid, team in self.pending.teams if eid == email_id}

    def flush(self) -> None:
        batch_q.flush(self.store, self.pending)
        self.pending = Writes()
        self.touched = set()
