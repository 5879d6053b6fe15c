"""The only place that connects to the database.

``open_store()`` creates the file with owner-only permissions, switches on WAL and foreign
keys and applies pending migrations. ``Store`` is a thin layer over sqlite-utils with the
few helpers the query modules use. All SQL is plain SQL that PostgreSQL also accepts
(no SQLite-only syntax outside this package), so a PostgreSQL backend can replace it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from espomail.errors import EspomailError
from espomail.store.blobs import RawStore
from espomail.store.blobs import directory_for as raw_directory


class Row(Protocol):
    """A row as the rest of the code sees it: read by column name (``row["id"]``), never by
    position. sqlite3.Row here; a dict row on another engine."""

    def __getitem__(self, key: str) -> Any: ...

    def keys(self) -> list[str]: ...


# One encoder for the JSON columns: json.dumps(..., ensure_ascii=False) builds a new
# encoder on every call, which an import of thousands of messages notices.
to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')


def json_strings(values: list[str]) -> str:
    """A JSON array of strings; addresses and Message-IDs rarely need escaping, so the
    common case is a join (an import encodes six such lists per message)."""
    if all(_PLAIN.fullmatch(v) for v in values):
        return '["' + '", "'.join(values) + '"]' if values else "[]"
    return to_json(values)


class Store:
    """An open database: query helpers and nested transactions."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self.path = path
        self._depth = 0
        self._raw: RawStore | None = None

    @property
    def raw(self) -> RawStore:
        """The raw-message packs beside the database."""
        if self._raw is None:
            self._raw = RawStore(raw_directory(self.path))
        return self._raw

    # -- transactions -------------------------------------------------------
    @contextlib.contextmanager
    def atomic(self, immediate: bool = True) -> Iterator[Store]:
        """One unit of work: commit on success, roll back on any exception.

        Nested blocks use savepoints, so a step can fail without undoing its caller.
        The write lock is taken at the start (BEGIN IMMEDIATE), waiting up to the busy
        timeout for other processes: a transaction that reads, checks and then writes
        must not find that another process wrote in between ("database is locked").
        """
        if self.conn.in_transaction:
            with self.savepoint():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[Store]:
        """A cheap nested unit inside an open transaction (one per processed delivery)."""
        self._depth += 1
        name = f"sp{self._depth}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
            raise
        else:
            self.conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    # -- reads --------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        return self.conn.execute(sql, params).fetchone()

    def value(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        found = self.conn.execute(sql, params).fetchone()
        return None if found is None else found[0]

    def column(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return [r[0] for r in self.conn.execute(sql, params).fetchall()]

    # -- writes -------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self.conn.execute(sql, params).rowcount

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, seq)

    def insert(self, table: str, values: dict[str, Any]) -> int:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.conn.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", [_adapt(v) for v in values.values()]
        )
        return int(cur.lastrowid or 0)

    def update(self, table: str, row_id: int, values: dict[str, Any], key: str = "id") -> None:
        if not values:
            return
        assignments = ", ".join(f"{column} = ?" for column in values)
        params = [_adapt(v) for v in values.values()] + [row_id]
        self.conn.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", params)

    def close(self) -> None:
        try:
            # Keep the query planner's statistics fresh (bounded work: a few hundred rows
            # sampled per index, and only for tables that changed enough).
            self.conn.execute("PRAGMA analysis_limit = 400")
            self.conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        self.conn.close()


def _adapt(value: Any) -> Any:
    if isinstance(value, list | dict | tuple):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    if isinstance(value, bool):
        return int(value)
    return value


BUSY_TIMEOUT_S = 30.0  # how long a command waits for another writer before giving up


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    # 4 KiB pages (SQLite's default): rows are small (raw sources live in packs), and the
    # random-key indexes (Message-ID, SHA-256) dirty one page per insert, so a smaller page
    # means less to write to the WAL.
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a committed transaction survives a crash or kill -9 of the
    # process; a power cut can lose the last commits, never corrupt the file. Because the
    # folder cursor is committed in the same transaction as the messages, losing a commit
    # only means fetching those messages again: none is lost, none imported twice.
    conn.execute("PRAGMA synchronous = NORMAL")
    # Checkpoint (copy the WAL into the database, with an fsync) every 256 MiB rather
    # than every 4 MiB: a first import of hundreds of megabytes fsyncs far less often.
    conn.execute("PRAGMA wal_autocheckpoint = 16384")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    # A 4 MiB page cache per connection (twice SQLite's default). The operating system's
    # page cache does the rest: a 64 MiB cache made neither imports into a million-email
    # store nor its lists faster (bench/bigstore.py, docs/performance.md), but made a long
    # first fetch's memory grow by 1.8 MB per 1,000 messages until the cap.
    conn.execute("PRAGMA cache_size = -4096")
    return conn


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700 for the directories we create."""
    if path.is_dir():
        return
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def _create_private_file(path: Path) -> None:
    fd = os.open(str(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


def open_store(path: Path, create: bool = True, migrate: bool = True) -> Store:
    """Open (and create, with owner-only permissions) the database at ``path``."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise EspomailError(f"no database at {path}; run 'espomail init' first, or pass --db/ESPOMAIL_DB")
        try:
            ensure_private_dir(path.parent)
            _create_private_file(path)
        except FileExistsError:
            pass
        except OSError as exc:
            raise EspomailError(f"cannot create the database {path}: {exc.strerror}") from exc
    try:
        store = Store(connect(path), path)
        if migrate:
            from espomail.store.migrations import apply_migrations

            apply_migrations(store)
    except sqlite3.DatabaseError as exc:
        raise EspomailError(f"cannot open the database {path}: {exc}") from exc
    return store
