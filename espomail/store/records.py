"""SQL for CRM records (accounts, contacts, leads, opportunities) and followers."""

from __future__ import annotations

from espomail.store.db import Row, Store
from espomail.timeutil import now_iso

RECORD_TYPES = ("account", "contact", "lead", "opportunity")


def record(store: Store, kind: str, record_id: int) -> Row | None:
    return store.row("SELECT * FROM records WHERE type = ? AND id = ?", [kind, record_id])


def accounts_by_name(store: Store, name: str) -> list[Row]:
    return store.rows("SELECT * FROM records WHERE type = 'account' AND name = ? ORDER BY id", [name])


def records_by_name(store: Store, kind: str, name: str) -> list[Row]:
    return store.rows("SELECT * FROM records WHERE type = ? AND name = ? ORDER BY id", [kind, name])


def records(store: Store, kind: str, limit: int, offset: int) -> list[Row]:
    return store.rows("SELECT * FROM records WHERE type = ? ORDER BY id LIMIT ? OFFSET ?", [kind, limit, offset])


def count_records(store: Store, kind: str) -> int:
    return store.value("SELECT COUNT(*) FROM records WHERE type = ?", [kind])


def insert_record(store: Store, kind: str, name: str, account_id: int | None) -> int:
    return store.insert(
        "records",
        {"type": kind, "name": name, "account_id": account_id, "created_at": now_iso()},
    )


def update_record(store: Store, record_id: int, values: dict) -> None:
    """Change a record's name and/or account_id (the columns in ``values``)."""
    if values:
        store.update("records", record_id, values)


def followers(store: Store, kind: str, record_id: int) -> list[Row]:
    return store.rows(
        """SELECT u.id, u.username FROM followers f JOIN users u ON u.id = f.user_id
           WHERE f.record_type = ? AND f.record_id = ? ORDER BY u.id""",
        [kind, record_id],
    )


def follower_names(store: Store, kind: str, record_id: int) -> list[str]:
    """The usernames of a record's followers, alphabetically."""
    return store.column(
        """SELECT u.username FROM followers f JOIN users u ON u.id = f.user_id
           WHERE f.record_type = ? AND f.record_id = ? ORDER BY u.username""",
        [kind, record_id],
    )


def follow(store: Store, kind: str, record_id: int, user_id: int) -> None:
    store.execute(
        """INSERT INTO followers (record_type, record_id, user_id, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (record_type, record_id, user_id) DO NOTHING""",
        [kind, record_id, user_id, now_iso()],
    )


def unfollow(store: Store, kind: str, record_id: int, user_id: int) -> int:
    return store.execute(
        "DELETE FROM followers WHERE record_type = ? AND record_id = ? AND user_id = ?",
        [kind, record_id, user_id],
    )


def records_by_address(store: Store, address: str, kind: str) -> list[Row]:
    """Records of ``kind`` owning ``address`` (any of their addresses), lowest id first."""
    return store.rows(
        """SELECT r.* FROM addresses a CROSS JOIN records r
           WHERE a.address_lower = ? AND r.id = a.owner_id AND r.type = a.owner_type AND r.type = ?
           ORDER BY r.id LIMIT 1""",
        [address.lower(), kind],
    )


def records_by_addresses(store: Store, addresses: list[str]) -> list[Row]:
    """Contacts, accounts and leads owning any of ``addresses``, lowest id first (one query)."""
    wanted = sorted({a.lower() for a in addresses if a})
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    return store.rows(
        # Only the address constrains the addresses table, and CROSS JOIN keeps it the outer
        # loop: the planner reads the address index. (A condition on owner_type there
        # tempts it to walk every address of a type instead.)
        f"""SELECT a.address_lower, r.* FROM addresses a CROSS JOIN records r
            WHERE a.address_lower IN ({marks}) AND r.id = a.owner_id AND r.type = a.owner_type
            AND r.type IN ('contact', 'account', 'lead')
            ORDER BY r.id""",
        wanted,
    )
