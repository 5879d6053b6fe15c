"""PostgreSQL through psycopg 3: the same ``Store`` interface as SQLite (SPEC 13).

The query modules write their SQL once, for both engines; here it is run as PostgreSQL
needs it:

- ``?`` placeholders become ``%s`` and a literal ``%`` becomes ``%%`` (``to_postgres``);
- ``Store.insert`` asks for the new id with ``RETURNING id`` (there is no ``lastrowid``);
- Python booleans are sent as integers (columns are INTEGER 0/1 on both engines);
- rows are dicts (read by column name everywhere), values and columns plain tuples;
- the connection is in autocommit mode and ``atomic()`` sends BEGIN/COMMIT/SAVEPOINT
  itself, exactly as on SQLite.

The schema is the same numbered migrations, translated mechanically
(``migrations.postgres_statements``). Raw sources live in the table ``raw_sources`` (a
BIGINT id, the SHA-256, the bytes) and are checked against their SHA-256 when read; packs
on this host are only a spool (``blobs.py``). A single batch writes its sources in the
transaction of the rows that name them; a fetch of several batches uploads each batch's
sources on a second connection while the batch before is stored (``RawUploader``), each
upload committed before the rows that name it, as packs are synced first on SQLite: a crash
can leave sources no row names (noted in ``raw_uploads`` and deleted by the account's next
fetch), never a row without its source. Errors that reach the user never carry the
password: it is scrubbed from every message, and URLs are shown without it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import re
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from espomail.store import psycopg_start

psycopg_start.preset_versions()  # before psycopg's first import: about 15 ms less per command

import psycopg  # noqa: E402
from psycopg import pq  # noqa: E402
from psycopg.adapt import Dumper  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402
from psycopg.rows import dict_row, tuple_row  # noqa: E402

from espomail.errors import SecretError, StoreError  # noqa: E402
from espomail.store import blobs  # noqa: E402
from espomail.store.db import Row, Store, _adapt  # noqa: E402
from espomail.store.urls import is_postgres_url, password_in, scrub, shown  # noqa: E402

INT8_OID = 20
_names = itertools.count(1)


class StoreUnavailable(StoreError):
    """The PostgreSQL server cannot be reached, refused us, or the connection broke (exit 1)."""

    code = "database_error"


# -- SQL -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def to_postgres(sql: str) -> str:
    """``?`` -> ``%s`` and ``%`` -> ``%%``; question marks inside quotes stay as they are."""
    if "?" not in sql and "%" not in sql:
        return sql
    out = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


class _BoolText(Dumper):
    """True/False as 1/0: boolean columns are INTEGER on both engines.

    The oid is set per instance: a class-level oid would also make this the dumper psycopg
    uses for every int8 whose Python type it does not know (COPY with set_types)."""

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        self.oid = INT8_OID

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _BoolBinary(_BoolText):
    format = pq.Format.BINARY

    def dump(self, obj: bool) -> bytes:
        return struct.pack("!q", 1 if obj else 0)


# -- connecting ------------------------------------------------------------------------------


def open_postgres(
    url: str, password_cmd: str | None = None, timeout: float = 60.0, stall_s: int | None = None
) -> PostgresStore:
    """Connect to the PostgreSQL store at ``url``; StoreUnavailable (one line, no password) when not."""
    if not is_postgres_url(url):
        raise StoreUnavailable(
            f"cannot use the database URL '{shown(url)}': give a PostgreSQL URL "
            "(postgresql://USER@HOST:PORT/DBNAME) or the path of a SQLite file to --db/ESPOMAIL_DB"
        )
    target = Target.parse(url)
    password = _password_from_command(password_cmd, timeout) if password_cmd else None
    conn = _connect(target, password, timeout, stall_s)
    return PostgresStore(conn, target, password, timeout, stall_s)


class Target:
    """A parsed PostgreSQL URL: what to connect to and how to name it in messages."""

    def __init__(self, url: str, parts: dict[str, str]) -> None:
        self.url = url
        self.parts = parts
        self.password = password_in(url)

    @classmethod
    def parse(cls, url: str) -> Target:
        try:
            parts = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            said = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "", password_in(url))
            raise StoreUnavailable(
                f"cannot use the database URL '{shown(url)}': {said}; the form is postgresql://USER@HOST:PORT/DBNAME"
            ) from None
        return cls(url, parts)

    @property
    def host(self) -> str:
        return self.parts.get("host") or os.environ.get("PGHOST") or "localhost"

    @property
    def port(self) -> str:
        return self.parts.get("port") or os.environ.get("PGPORT") or "5432"

    @property
    def user(self) -> str:
        return self.parts.get("user") or os.environ.get("PGUSER") or _login_name()

    @property
    def dbname(self) -> str:
        return self.parts.get("dbname") or os.environ.get("PGDATABASE") or self.user

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def shown(self) -> str:
        return shown(self.url)


def _login_name() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - only for a message
        return "?"


def _password_from_command(command: str, timeout: float) -> str:
    from espomail import secrets

    try:
        return secrets.resolve(secrets.SecretRef("cmd", command), "database", timeout)
    except SecretError as exc:
        raise StoreUnavailable(
            f"the database password command (--db-password-cmd/ESPOMAIL_DB_PASSWORD_CMD) failed: {exc.message}"
        ) from None


def _connect(target: Target, password: str | None, timeout: float, stall_s: int | None) -> psycopg.Connection:
    options: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": max(2, int(timeout)),
        "application_name": "espomail",
        "row_factory": dict_row,
    }
    if password is not None:
        options["password"] = password
    try:
        conn = psycopg.connect(target.url, **options)
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(_connect_error(target, str(exc), password)) from None
    conn.adapters.register_dumper(bool, _BoolText)
    conn.adapters.register_dumper(bool, _BoolBinary)
    if stall_s:
        # A host that hangs inside a transaction (stopped, swapping, partitioned) would keep
        # its row locks, and another host could not take its accounts over: the server ends
        # such a session after the lease, and a dead session's locks go with it.
        conn.execute(f"SET idle_in_transaction_session_timeout = {int(stall_s) * 1000}")
    return conn


def _connect_error(target: Target, said: str, password: str | None) -> str:
    """One line saying what failed and what to do; never the password."""
    reason = scrub(_reason(said), password, target.password)
    where = target.where
    user, dbname = target.user, target.dbname
    lowered = said.lower()
    if "password authentication failed" in lowered or (f'role "{user}" does not exist' in said):
        return (
            f"the PostgreSQL server at {where} refused the login of user '{user}' ({reason}); check the "
            "user in --db/ESPOMAIL_DB and its password (~/.pgpass, PGPASSWORD or --db-password-cmd)"
        )
    if "no password supplied" in lowered:
        return (
            f"the PostgreSQL server at {where} wants a password for user '{user}' and none was given; "
            "put it in ~/.pgpass or PGPASSWORD, or give --db-password-cmd/ESPOMAIL_DB_PASSWORD_CMD"
        )
    if "does not exist" in lowered and "database" in lowered:
        return (
            f"the PostgreSQL database '{dbname}' does not exist on {where}; create it "
            f"(createdb -h {target.host} -p {target.port} -U {user} {dbname}) and run 'espomail init'"
        )
    if "authentication" in lowered or "permission denied" in lowered or "pg_hba.conf" in lowered:
        return (
            f"the PostgreSQL server at {where} refused the login of user '{user}' to '{dbname}' ({reason}); "
            "ask its administrator for access (pg_hba.conf, GRANT CONNECT)"
        )
    return (
        f"cannot reach the PostgreSQL server at {where} ({reason}); check the host and port in "
        "--db/ESPOMAIL_DB and that the server is running and accepts connections"
    )


def _reason(said: str) -> str:
    """libpq's reason, without the 'connection to server at ... failed:' preamble."""
    lines = [line.strip() for line in said.strip().splitlines() if line.strip()]
    first = lines[0] if lines else "unknown error"
    first = re.sub(r"^connection failed:\s*", "", first)
    first = re.sub(r"^connection to server (at|on) .*?failed:\s*", "", first)
    first = re.sub(r"^FATAL:\s*", "", first)
    return first[:200] or "unknown error"


# -- the store -------------------------------------------------------------------------------


class PostgresStore(Store):
    """One psycopg connection (autocommit; transactions sent as SQL) behind ``Store``."""

    engine = "postgresql"

    def __init__(
        self, conn: psycopg.Connection, target: Target, password: str | None, timeout: float, stall_s: int | None
    ) -> None:
        super().__init__()
        self.conn = conn
        self.target = target
        self._password = password
        self._timeout = timeout
        self._stall_s = stall_s
        self.transactions = 0
        self._stages: set[str] = set()  # staging tables of this session (committed)
        self._stages_made: dict[str, int] = {}  # staging table -> the transaction that made it
        self._stages_used: dict[str, int] = {}  # staging table -> the transaction that last filled it

    def describe(self) -> str:
        return self.target.shown()

    def reopen(self) -> PostgresStore:
        conn = _connect(self.target, self._password, self._timeout, self._stall_s)
        return PostgresStore(conn, self.target, self._password, self._timeout, self._stall_s)

    @property
    def raw(self) -> DatabaseRaw:
        if self._raw is None:
            with self._raw_lock:  # fetch threads ask at once; each must get the same spool
                if self._raw is None:
                    self._raw = DatabaseRaw(self)
        return self._raw

    @property
    def backend_pid(self) -> int:
        return self.conn.info.backend_pid

    # -- transactions ---------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)

    def _begin(self, immediate: bool) -> None:
        self.transactions += 1
        self._run("BEGIN")

    def _run(self, sql: str) -> None:
        with self._errors():
            self.conn.execute(sql)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[PostgresStore]:
        """A read-only transaction that sees one moment of the whole store (``store copy``)."""
        self.transactions += 1
        self._run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield self
        finally:
            self._run("ROLLBACK")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """A broken connection is one clear error; everything else is the caller's."""
        try:
            yield
        except psycopg.OperationalError as exc:
            if not (self.conn.closed or self.conn.broken):
                raise
            said = scrub(_reason(str(exc)), self._password, self.target.password)
            raise StoreUnavailable(
                f"lost the connection to the PostgreSQL server at {self.target.where} ({said}); "
                "nothing after the last commit was kept: run the command again"
            ) from None

    # -- reads ----------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._unsent and self._send_savepoints()
        with self._errors(), self.conn.cursor() as cur:
            cur.execute(to_postgres(sql), params)
            return cur.fetchall()

    def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._unsent and self._send_savepoints()
        with self._errors(), self.conn.cursor() as cur:
            cur.execute(to_postgres(sql), params)
            return cur.fetchone()

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._unsent and self._send_savepoints()
        with self._errors(), self.conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(to_postgres(sql), params)
            found = cur.fetchone()
        return None if found is None else found[0]

    def column(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self._unsent and self._send_savepoints()
        with self._errors(), self.conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(to_postgres(sql), params)
            return [r[0] for r in cur.fetchall()]

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000) -> Iterator[list[Row]]:
        """A server-side cursor (inside a transaction, as PostgreSQL needs it)."""
        self._unsent and self._send_savepoints()
        own = not self.in_transaction
        if own:
            self._begin(False)
        try:
            with self._errors(), self.conn.cursor(name=f"espomail_stream_{next(_names)}") as cur:
                cur.itersize = size
                cur.execute(to_postgres(sql), params)
                while batch := cur.fetchmany(size):
                    yield batch
        finally:
            if own and self.in_transaction:
                self._run("ROLLBACK")

    # -- writes ---------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._unsent and self._send_savepoints()
        with self._errors(), self.conn.cursor() as cur:
            cur.execute(to_postgres(sql), params)
            return cur.rowcount

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        seq = list(seq)
        if not seq:
            return
        self._unsent and self._send_savepoints()
        with self._errors(), self.conn.cursor() as cur:
            cur.executemany(to_postgres(sql), seq)

    # -- bulk writes (PostgreSQL only: the batch writes of a fetch) --------------------------
    def copy_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], binary: Sequence[str] = ()
    ) -> None:
        """COPY ``rows`` into ``table``: a fraction of the client's and the server's work of an
        INSERT per row. ``binary``: the columns' types, for COPY's binary format (bytea)."""
        self._unsent and self._send_savepoints()
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
        with self._errors(), self.conn.cursor() as cur, cur.copy(statement) as copy:
            if binary:
                copy.set_types(list(binary))
            for row in rows:
                copy.write_row(row)

    def stage(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
        """A temporary table (of this session, emptied at commit) holding ``rows`` with these
        columns of ``table``, for one UPDATE ... FROM or INSERT ... SELECT; its name."""
        assert self.in_transaction, "a staging table lives inside a transaction"
        name = f"espomail_stage_{table}_{zlib.crc32(','.join(columns).encode()):08x}"
        if name not in self._stages and self._stages_made.get(name) != self.transactions:
            self.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS "
                f"SELECT {', '.join(columns)} FROM {table} WITH NO DATA"
            )
            self._stages_made[name] = self.transactions
            self.after_commit(lambda: self._stages.add(name))
        if self._stages_used.get(name) == self.transactions:
            self.execute(f"DELETE FROM {name}")  # filled before in this transaction
        self._stages_used[name] = self.transactions
        self.copy_rows(name, columns, rows)
        return name

    def next_ids(self, table: str, count: int) -> list[int]:
        """``count`` new ids of ``table``, taken from its identity sequence."""
        return self.column("SELECT nextval(pg_get_serial_sequence(?, 'id')) FROM generate_series(1, ?)", [table, count])

    def insert(self, table: str, values: dict[str, Any]) -> int:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        returning = " RETURNING id" if table in _tables_with_id() else ""
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}){returning}"
        params = [_adapt(v) for v in values.values()]
        if not returning:
            self.execute(sql, params)
            return 0
        return int(self.value(sql, params))

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        with contextlib.suppress(psycopg.Error):
            self.conn.close()


@functools.cache
def _tables_with_id() -> frozenset[str]:
    from espomail.store.migrations import tables_with_id

    return frozenset(tables_with_id())


# -- raw sources in the database ----------------------------------------------------------------


def note_upload(store: PostgresStore, account_id: int, source_ids: list[int]) -> None:
    """Note, in the upload's transaction, sources uploaded ahead of the rows that will name them."""
    if source_ids:
        sql = "INSERT INTO raw_uploads (account_id, source_ids) VALUES (?, ?::bigint[])"
        store.execute(sql, [account_id, source_ids])


def drop_abandoned_uploads(store: PostgresStore, account_id: int) -> int:
    """Delete the sources of the account's uploads whose batch never committed (their note
    is still there), and the notes; how many sources. Run by a fetch that has just taken
    the account: no other live fetch stores its batches (a host that lost the lease fails
    its next commit), so every note left is a dead one, and its sources are named by no row
    (the transaction that would have named them also deletes the note)."""
    with store.atomic():
        return store.execute(
            """WITH gone AS (DELETE FROM raw_uploads WHERE account_id = ? RETURNING source_ids)
               DELETE FROM raw_sources WHERE id IN (SELECT unnest(source_ids) FROM gone)""",
            [account_id],
        )


def insert_raw(store: PostgresStore, items: list[tuple[str, bytes]]) -> list[int]:
    """COPY raw sources ((sha256, bytes)) into ``raw_sources`` in the caller's transaction; their ids."""
    if not items:
        return []
    ids = store.next_ids("raw_sources", len(items))
    store.copy_rows(
        "raw_sources",
        ("id", "sha256", "size", "data"),
        ((raw_id, sha, len(raw), raw) for raw_id, (sha, raw) in zip(ids, items, strict=True)),
        binary=("int8", "text", "int8", "bytea"),
    )
    return ids


class RawUploader:
    """Moves each spooled batch of a large fetch into ``raw_sources`` on a connection of its
    own, in a transaction of its own, while the main connection stores the batch before it.

    Writing the sources is most of what a fetch asks of the server; in the storing
    transaction it made the main thread wait (docs/performance.md). Order keeps it safe, as
    packs do on SQLite (blobs.py): a batch's sources are committed *before* the transaction
    that inserts the rows naming them, so no row ever names a missing source. A crash in
    between leaves that batch's sources unreferenced: the upload is noted in ``raw_uploads``,
    the storing transaction deletes the note (``settle``), and a note left behind is cleared
    with its sources by the next fetch that takes the account (``drop_abandoned_uploads``;
    the rerun downloads and uploads the batch again). Sources that the batch turns out not
    to need (mail this account had brought already) are deleted by the storing transaction.
    """

    def __init__(self, raw: DatabaseRaw, account_id: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._raw = raw
        self._account_id = account_id
        self._store = raw.store.reopen()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-upload")

    def submit(self, locations: list[blobs.Location]) -> Callable[[], list[blobs.Location]]:
        """Start uploading spooled sources (in order); the callable waits and gives their database locations."""
        future = self._pool.submit(self._upload, locations)
        return future.result

    def _upload(self, locations: list[blobs.Location]) -> list[blobs.Location]:
        items = [(loc.sha256, self._raw._read_spool(loc.pack, loc.offset, loc.size)) for loc in locations]
        with self._store.atomic():
            ids = insert_raw(self._store, items)
            note_upload(self._store, self._account_id, ids)
        return [
            blobs.Location(loc.sha256, blobs.DATABASE, raw_id, loc.size)
            for loc, raw_id in zip(locations, ids, strict=True)
        ]

    def release(self, locations: list[blobs.Location]) -> None:
        """The batch of these spooled locations is uploaded and parsed: delete its spool packs."""
        self._raw.delete_spool(locations)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._store.close()


class DatabaseRaw:
    """The raw sources of a PostgreSQL store: rows of ``raw_sources``; a local spool for the
    download thread and the parse worker (see blobs.py)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.directory = Path(tempfile.mkdtemp(prefix="espomail-spool-"))
        blobs.SPOOLS.add(self.directory)
        self._writer: blobs.PackWriter | None = None
        self._moved: dict[tuple[str, int], tuple[int, int]] = {}  # spool place -> (db id, size)
        self._moved_in = -1  # the transaction those belong to
        self._spooled: set[str] = set()  # spool packs read by this transaction, deleted after it

    @property
    def writer(self) -> blobs.PackWriter:
        if self._writer is None:
            self._writer = blobs.PackWriter(self.directory)
        return self._writer

    def put(self, items: list[tuple[str, bytes]]) -> list[blobs.Location]:
        """Insert raw sources ((sha256, bytes)) now; their locations name the rows."""
        ids = self._insert([(sha, raw) for sha, raw in items])
        return [
            blobs.Location(sha, blobs.DATABASE, raw_id, len(raw)) for (sha, raw), raw_id in zip(items, ids, strict=True)
        ]

    def adopt(self, places: list[tuple]) -> list[tuple]:
        """Move spooled sources into the database (once per spool place and transaction);
        ``places``: (pack, offset, size, sha256 or None). Returns (pack, offset, size) to store."""
        if self._moved_in != self.store.transactions:
            self._moved, self._moved_in = {}, self.store.transactions
        wanted = {}
        for pack, offset, size, sha in places:
            if pack is None or pack == blobs.DATABASE or (pack, offset) in self._moved:
                continue
            wanted.setdefault((pack, offset), (size, sha))
        if wanted:
            items = []
            for (pack, offset), (size, sha) in wanted.items():
                raw = self._read_spool(pack, offset, size)
                items.append((sha or blobs.digest(raw), raw))
            for place, raw_id, (_sha, raw) in zip(wanted, self._insert(items), items, strict=True):
                self._moved[place] = (raw_id, len(raw))
            packs = {pack for pack, _offset in wanted}
            self._spooled |= packs
            self.store.after_commit(self._delete_spooled)
        result = []
        for pack, offset, size, _sha in places:
            if pack is None or pack == blobs.DATABASE:
                result.append((pack, offset, size))
            else:
                raw_id, length = self._moved[(pack, offset)]
                result.append((blobs.DATABASE, raw_id, length))
        return result

    def _insert(self, items: list[tuple[str, bytes]]) -> list[int]:
        return insert_raw(self.store, items)

    def uploader(self, account_id: int) -> RawUploader:
        """A second connection that moves an account's spooled batches into the database ahead
        of the transactions that name them (a large fetch; see RawUploader)."""
        return RawUploader(self, account_id)

    def settle(self, batch: Iterable[blobs.Location], unused: Iterable[blobs.Location]) -> None:
        """In the transaction that stores a batch: its sources uploaded ahead are now named by
        rows, except ``unused`` (copies this account had brought already), which are deleted;
        the upload's note goes (see RawUploader)."""
        uploaded = sorted({loc.offset for loc in batch if loc.pack == blobs.DATABASE})
        if not uploaded:
            return
        self.store.execute("DELETE FROM raw_uploads WHERE source_ids && ?::bigint[]", [uploaded])
        ids = sorted({loc.offset for loc in unused if loc.pack == blobs.DATABASE})
        if ids:
            self.store.execute("DELETE FROM raw_sources WHERE id = ANY(?::bigint[])", [ids])

    def drop_abandoned(self, account_id: int) -> int:
        """Clear the uploads of the account's batches that never committed (RawUploader)."""
        return drop_abandoned_uploads(self.store, account_id)

    def delete_spool(self, locations: Iterable[blobs.Location]) -> None:
        """Delete the spool packs of these (spooled) locations: their batch is uploaded and parsed."""
        for pack in {loc.pack for loc in locations if loc.pack != blobs.DATABASE}:
            with contextlib.suppress(OSError):
                (self.directory / pack).unlink()

    def _read_spool(self, pack: str, offset: int, size: int) -> bytes:
        with open(self.directory / pack, "rb") as handle:
            handle.seek(offset)
            return handle.read(size)

    def _delete_spooled(self) -> None:
        for pack in self._spooled:
            with contextlib.suppress(OSError):
                (self.directory / pack).unlink()
        self._spooled = set()

    def read(self, location: blobs.Location | tuple) -> bytes:
        pack, offset, size = (
            (location.pack, location.offset, location.size) if isinstance(location, blobs.Location) else location[:3]
        )
        if pack != blobs.DATABASE:
            return self._read_spool(pack, offset, size)
        row = self.store.row("SELECT sha256, data FROM raw_sources WHERE id = ?", [offset])
        if row is None:
            raise blobs.RawSourceError(
                f"its raw source is missing: row {offset} of raw_sources does not exist; "
                "restore the store from a backup"
            )
        data = bytes(row["data"])
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            raise blobs.RawSourceError(
                f"its raw source is damaged: row {offset} of raw_sources no longer matches its SHA-256; "
                "restore the store from a backup"
            )
        return data

    def zero(self, locations: Iterable[tuple[str, int, int]]) -> None:
        """Delete the sources of a deleted email (called once its deletion has committed)."""
        ids = sorted({offset for pack, offset, _size in locations if pack == blobs.DATABASE})
        if not ids:
            return
        with self.store.atomic():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                self.store.execute(f"DELETE FROM raw_sources WHERE id IN ({marks})", chunk)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        blobs.SPOOLS.discard(self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)
