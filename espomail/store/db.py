"""The only place that connects to the database.

``open_store()`` takes a SQLite file path or a PostgreSQL URL. For a file it creates it with
owner-only permissions, switches on WAL and foreign keys; for a URL it connects through
psycopg (``store/postgres.py``); either way it applies pending migrations. ``Store`` is the
engine-neutral interface the query modules use: plain SQL with ``?`` placeholders, run by
``SqliteStore`` here or ``PostgresStore`` there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from espomail.errors import EspomailError
from espomail.store.blobs import RawStore
from espomail.store.blobs import directory_for as raw_directory
from espomail.store.urls import is_url


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


def rows_by_id(
    store: Store, sql: str, ids: Iterable[int | None], key: str = "id", order: str = ""
) -> dict[int, list[Row]]:
    """``sql`` (ending in ``IN``, its list and then ``order`` added here) run for ``ids`` in
    chunks of 500, its rows grouped by the column ``key``: what a page of results names, read
    in one query per kind instead of one per row (a round trip each on PostgreSQL)."""
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int, list[Row]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for row in store.rows(f"{sql} ({', '.join('?' for _ in chunk)}) {order}", chunk):
            found.setdefault(row[key], []).append(row)
    return found


def values_by_id(store: Store, table: str, column: str, ids: Iterable[int | None]) -> dict[int, Any]:
    """``id -> column`` of the rows of ``table`` (a name of ours, never a user's) with ``ids``."""
    rows = rows_by_id(store, f"SELECT id, {column} FROM {table} WHERE id IN", ids)
    return {row_id: found[0][column] for row_id, found in rows.items()}


class Store:
    """An open database: query helpers and nested transactions, the same on every engine.

    ``SqliteStore`` (below) and ``postgres.PostgresStore`` implement it; the query modules
    write plain SQL with ``?`` placeholders, which each engine runs as it must.
    """

    engine = "sqlite"  # or "postgresql"
    path: Path | None = None

    def __init__(self) -> None:
        self._depth = 0
        self._unsent: list[str] = []  # savepoints opened but not sent yet (see savepoint())
        self._raw = None
        self._raw_lock = threading.Lock()
        self._after_commit: list[Callable[[], None]] = []
        # account id -> (holder, lease_s) of the fetch leases this process holds (services.locks)
        self.leases: dict[int, tuple[str, int]] = {}

    @property
    def raw(self) -> RawStore:
        """The raw sources (packs beside a SQLite file; a table on PostgreSQL)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the store is, safe to print (a file path, or a URL without its password)."""
        return str(self.path)

    def reopen(self) -> Store:
        """A second connection to the same store (for a thread that must not wait on this one)."""
        raise NotImplementedError

    # -- transactions -------------------------------------------------------
    @contextlib.contextmanager
    def atomic(self, immediate: bool = True) -> Iterator[Store]:
        """One unit of work: commit on success, roll back on any exception.

        Nested blocks use savepoints, so a step can fail without undoing its caller.
        On SQLite the write lock is taken at the start (BEGIN IMMEDIATE), waiting up to the
        busy timeout for other processes: a transaction that reads, checks and then writes
        must not find that another process wrote in between ("database is locked"). On
        PostgreSQL the statements that need it lock the rows or take an advisory lock.
        """
        if self.in_transaction:
            with self.savepoint():
                yield self
            return
        self._begin(immediate)
        try:
            yield self
        except BaseException:
            if self.in_transaction:
                self._run("ROLLBACK")
            self._after_commit.clear()
            raise
        else:
            try:
                self._run("COMMIT")
            except BaseException:
                if self.in_transaction:
                    self._run("ROLLBACK")
                self._after_commit.clear()
                raise
            hooks, self._after_commit = self._after_commit, []
            for hook in hooks:
                hook()

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the current transaction has committed (dropped on rollback)."""
        if self.in_transaction:
            self._after_commit.append(hook)
        else:
            hook()

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[Store]:
        """A cheap nested unit inside an open transaction (one per processed delivery).

        It is sent only with the first statement inside it: a delivery whose writes are all
        buffered for the batch (the common case) costs no SAVEPOINT/RELEASE at all, which on
        PostgreSQL saves two round trips per message."""
        self._depth += 1
        name = f"sp{self._depth}"
        self._unsent.append(name)
        try:
            yield self
        except BaseException:
            if name in self._unsent:
                self._unsent.remove(name)
            elif self.in_transaction:
                self._run(f"ROLLBACK TO {name}")
                self._run(f"RELEASE {name}")
            raise
        else:
            if name in self._unsent:
                self._unsent.remove(name)
            else:
                self._run(f"RELEASE {name}")
        finally:
            self._depth -= 1

    def _send_savepoints(self) -> None:
        """Open the savepoints a statement is about to run in (outermost first)."""
        while self._unsent:
            self._run(f"SAVEPOINT {self._unsent.pop(0)}")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Store]:
        """A read-only transaction that sees one moment of the whole store (``store copy``)."""
        raise NotImplementedError
        yield self

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def _begin(self, immediate: bool) -> None:
        raise NotImplementedError

    def _run(self, sql: str) -> None:
        """A statement without parameters or results (transaction control)."""
        self.execute(sql)

    # -- reads --------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        raise NotImplementedError

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def column(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000) -> Iterator[list[Row]]:
        """The rows of a big query, ``size`` at a time (memory does not grow with the table)."""
        raise NotImplementedError

    # -- writes -------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def insert(self, table: str, values: dict[str, Any]) -> int:
        """Insert one row; its new id (0 for a table without an ``id`` column)."""
        raise NotImplementedError

    def update(self, table: str, row_id: int, values: dict[str, Any], key: str = "id") -> None:
        if not values:
            return
        assignments = ", ".join(f"{column} = ?" for column in values)
        params = [_adapt(v) for v in values.values()] + [row_id]
        self.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", params)

    def close(self) -> None:
        raise NotImplementedError


class SqliteStore(Store):
    """A SQLite file (WAL), its raw sources in packs beside it."""

    engine = "sqlite"

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        super().__init__()
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self.path = path

    @property
    def raw(self) -> RawStore:
        if self._raw is None:
            with self._raw_lock:  # fetch threads ask at once; each must get the same writer
                if self._raw is None:
                    self._raw = RawStore(raw_directory(self.path))
        return self._raw

    def reopen(self) -> Store:
        return SqliteStore(connect(self.path), self.path)

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Store]:
        self.conn.execute("BEGIN")  # a read transaction in WAL mode sees one moment
        try:
            yield self
        finally:
            self.conn.execute("ROLLBACK")

    def _begin(self, immediate: bool) -> None:
        self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def _run(self, sql: str) -> None:
        self.conn.execute(sql)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._unsent and self._send_savepoints()
        return self.conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._unsent and self._send_savepoints()
        return self.conn.execute(sql, params).fetchone()

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._unsent and self._send_savepoints()
        found = self.conn.execute(sql, params).fetchone()
        return None if found is None else found[0]

    def column(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self._unsent and self._send_savepoints()
        return [r[0] for r in self.conn.execute(sql, params).fetchall()]

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000) -> Iterator[list[Row]]:
        self._unsent and self._send_savepoints()
        cursor = self.conn.execute(sql, params)
        while batch := cursor.fetchmany(size):
            yield batch

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._unsent and self._send_savepoints()
        return self.conn.execute(sql, params).rowcount

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        self._unsent and self._send_savepoints()
        self.conn.executemany(sql, seq)

    def insert(self, table: str, values: dict[str, Any]) -> int:
        self._unsent and self._send_savepoints()
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.conn.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", [_adapt(v) for v in values.values()]
        )
        return int(cur.lastrowid or 0)

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


def open_store(
    target: Path | str,
    create: bool = True,
    migrate: bool = True,
    *,
    password_cmd: str | None = None,
    timeout: float = 60.0,
    stall_s: int | None = None,
) -> Store:
    """Open the store at ``target``: a SQLite file (created with owner-only permissions) or a
    PostgreSQL URL (``postgresql://USER@HOST:PORT/DBNAME``); apply pending migrations.

    ``stall_s`` (PostgreSQL): a session idle inside a transaction that long is ended by the
    server, so that a hung host's locks go with it (the fetch lease, ``lease_s``)."""
    if isinstance(target, str) and is_url(target):
        from espomail.store.postgres import open_postgres

        store: Store = open_postgres(target, password_cmd=password_cmd, timeout=timeout, stall_s=stall_s)
        return _migrated(store, migrate)
    path = Path(target)
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
        return _migrated(SqliteStore(connect(path), path), migrate)
    except sqlite3.DatabaseError as exc:
        raise EspomailError(f"cannot open the database {path}: {exc}") from exc


def _migrated(store: Store, migrate: bool) -> Store:
    if migrate:
        from espomail.store.migrations import apply_migrations

        try:
            apply_migrations(store)
        except BaseException:
            store.close()
            raise
    return store
