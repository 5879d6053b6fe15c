"""``espomail store copy``: the whole store into another, empty one (SQLite <-> PostgreSQL).

Every table of the migrations, in the order they were created (a table's foreign keys point
to tables copied before it), row by row with its id, in one transaction on the target; a
row may point forwards within its own table (a reply to a later email), so those foreign
keys are checked at the commit; the raw sources byte for byte, from packs or the database into the target's packs
or database (each read is checked against its SHA-256 where the row has one); identity
sequences reset after explicit ids (PostgreSQL); leases cleared (they belong to the
processes of the old store). The source is read in one snapshot, so a fetch running
meanwhile does not make the copy inconsistent (what it stores after the snapshot is not
copied). Then every table's rows are counted on both sides.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from espomail.errors import EspomailError
from espomail.store import blobs
from espomail.store.db import Row, Store
from espomail.store.migrations import POSTGRES_TABLE, table_names, tables_with_id

BATCH = 1000
RAW_BATCH = 200  # emails per read when their sources travel with them (memory: ~200 sources)
_CLEARED = {"mail_accounts": {"lease_holder": None, "lease_expires_at": None}}
_OWN_TABLES = {
    "_sqlite_migrations",
    "sqlite_sequence",
    "sqlite_stat1",
    "sqlite_stat4",
    POSTGRES_TABLE,
    "raw_sources",
    "raw_uploads",
}


@dataclasses.dataclass
class TableCount:
    table: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


@dataclasses.dataclass
class CopyReport:
    source: str
    target: str
    tables: list[TableCount]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def as_dict(self) -> dict:
        return {
            "from": self.source,
            "to": self.target,
            "ok": self.ok,
            "tables": [dataclasses.asdict(t) | {"ok": t.ok} for t in self.tables],
        }


def existing_tables(store: Store) -> list[str]:
    if store.engine == "postgresql":
        return store.column(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        )
    return store.column("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")


def foreign_tables(store: Store) -> list[str]:
    """Tables in ``store`` that espomail did not make (a database used for something else)."""
    ours = set(table_names()) | _OWN_TABLES
    return [name for name in existing_tables(store) if name not in ours and not name.startswith("sqlite_")]


def tables_with_rows(store: Store) -> list[str]:
    """espomail's tables that hold at least one row (an empty store has none)."""
    existing = set(existing_tables(store))
    candidates = [t for t in [*table_names(), "raw_sources"] if t in existing]
    return [t for t in candidates if store.value(f"SELECT 1 FROM {t} LIMIT 1") is not None]


def copy_store(source: Store, target: Store) -> CopyReport:
    """Copy everything from ``source`` into the empty, migrated ``target``; count both."""
    with source.snapshot():
        with target.atomic():
            _defer_foreign_keys(target)
            for table in table_names():
                _copy_table(source, target, table)
            if target.engine == "postgresql":
                _reset_sequences(target)
        source_counts = {t: _count(source, t) for t in table_names()} | {"raw sources": _raw_count(source)}
    if target.engine == "postgresql":
        _settle(target)
    target_counts = {t: _count(target, t) for t in table_names()} | {"raw sources": _raw_count(target)}
    tables = [TableCount(name, n, target_counts[name]) for name, n in source_counts.items()]
    return CopyReport(source.describe(), target.describe(), tables)


def _settle(store: Store) -> None:
    """Make the filled PostgreSQL tables ready to read fast: planner statistics, and the
    visibility map that index-only scans (every count of a list) need. Without the VACUUM,
    the first commands after a copy read the heap for every row until autovacuum passes
    (a user's notification count on the million-email store: 187 ms instead of a few).
    The raw sources are only analyzed: vacuuming their gigabytes would buy no read."""
    store.execute(f"VACUUM (ANALYZE) {', '.join(table_names())}")
    store.execute("ANALYZE raw_sources")


def _defer_foreign_keys(store: Store) -> None:
    """Check a table's references to itself at the commit (only those: a deferred check is
    remembered per row until then)."""
    if store.engine == "postgresql":
        names = ", ".join(f"{table}_{column}_fkey" for table, column in self_references())
        store.execute(f"SET CONSTRAINTS {names} DEFERRED")
    else:
        store.execute("PRAGMA defer_foreign_keys = ON")


def self_references() -> list[tuple[str, str]]:
    """(table, column) of every foreign key from a table to itself."""
    from espomail.store.migrations import MIGRATIONS

    found = []
    for _, statements in MIGRATIONS:
        for statement in statements:
            table = re.match(r"\s*CREATE\s+TABLE\s+(\w+)", statement)
            if table:
                found += [(table[1], c) for c in re.findall(rf"(\w+) INTEGER REFERENCES {table[1]}\(id\)", statement)]
    return found


def _copy_table(source: Store, target: Store, table: str) -> None:
    if table == "emails":
        batches = _emails_with_sources(source, target)
    elif table == "email_deliveries":
        batches = _deliveries_with_sources(source, target)
    else:
        batches = source.stream(f"SELECT * FROM {table} ORDER BY {_order(table)}", size=BATCH)
    cleared = _CLEARED.get(table, {})
    for batch in batches:
        if not batch:
            continue
        columns = [c for c in batch[0].keys() if not c.startswith("espomail_copy_")]
        rows = [[cleared[c] if c in cleared else row[c] for c in columns] for row in batch]
        if target.engine == "postgresql":
            target.copy_rows(table, columns, rows)
        else:
            marks = ", ".join("?" for _ in columns)
            target.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _order(table: str) -> str:
    return "id" if table in tables_with_id() else "1, 2"


def _emails_with_sources(source: Store, target: Store) -> Iterator[list[dict]]:
    """Email rows whose raw source has been written to the target (its new location in the row)."""
    for batch in source.stream("SELECT * FROM emails ORDER BY id", size=RAW_BATCH):
        rows = [dict(row) for row in batch]
        wanted = [row for row in rows if row["raw_pack"] is not None]
        items = []
        for row in wanted:
            raw = _read(source, row, row["raw_sha256"])
            items.append((row["raw_sha256"] or blobs.digest(raw), raw))
        for row, where in zip(wanted, target.raw.put(items), strict=True):
            row["raw_pack"], row["raw_offset"], row["raw_size"] = where.pack, where.offset, where.size
        yield rows


def _deliveries_with_sources(source: Store, target: Store) -> Iterator[list[dict]]:
    """Delivery rows with their copy of the source in the target: the email's own (already
    copied, found at the email's new location) or, when the delivery brought other bytes,
    a copy of its own."""
    sql = """SELECT d.*, e.raw_pack AS espomail_copy_pack, e.raw_offset AS espomail_copy_offset
             FROM email_deliveries d JOIN emails e ON e.id = d.email_id ORDER BY d.id"""
    for batch in source.stream(sql, size=RAW_BATCH):
        rows = [dict(row) for row in batch]
        shared = [r for r in rows if r["raw_pack"] is not None and _same_place(r)]
        own = [r for r in rows if r["raw_pack"] is not None and not _same_place(r)]
        if shared:
            moved = _email_places(target, {r["email_id"] for r in shared})
            for row in shared:
                row["raw_pack"], row["raw_offset"], row["raw_size"] = moved[row["email_id"]]
        if own:
            items = [(blobs.digest(raw), raw) for raw in (_read(source, row, None) for row in own)]
            for row, where in zip(own, target.raw.put(items), strict=True):
                row["raw_pack"], row["raw_offset"], row["raw_size"] = where.pack, where.offset, where.size
        yield rows


def _same_place(row: dict) -> bool:
    return row["raw_pack"] == row["espomail_copy_pack"] and row["raw_offset"] == row["espomail_copy_offset"]


def _email_places(target: Store, ids: set[int]) -> dict[int, tuple]:
    ordered = sorted(ids)
    marks = ", ".join("?" for _ in ordered)
    rows = target.rows(f"SELECT id, raw_pack, raw_offset, raw_size FROM emails WHERE id IN ({marks})", ordered)
    return {r["id"]: (r["raw_pack"], r["raw_offset"], r["raw_size"]) for r in rows}


def _read(source: Store, row: Row | dict, sha: str | None) -> bytes:
    raw = source.raw.read((row["raw_pack"], row["raw_offset"], row["raw_size"]))
    if len(raw) != row["raw_size"] or (sha and blobs.digest(raw) != sha):
        what = f"email {row['id']}" if sha is not None else f"delivery {row['id']}"
        raise EspomailError(
            f"the raw source of {what} in the source store is damaged or missing ({row['raw_pack']}); "
            "nothing was copied: restore that store from a backup first"
        )
    return raw


def _reset_sequences(store: Store) -> None:
    """After explicit ids, a table's identity continues after its largest id."""
    for table in tables_with_id():
        store.value(
            f"SELECT setval(pg_get_serial_sequence(?, 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)",
            [table],
        )


def _count(store: Store, table: str) -> int:
    return int(store.value(f"SELECT COUNT(*) FROM {table}"))


def _raw_count(store: Store) -> int:
    """Distinct raw sources the rows name (on both engines: a pack place or a database row)."""
    return int(
        store.value(
            """SELECT COUNT(*) FROM (SELECT raw_pack, raw_offset FROM emails WHERE raw_pack IS NOT NULL
               UNION SELECT raw_pack, raw_offset FROM email_deliveries WHERE raw_pack IS NOT NULL) AS places"""
        )
    )
