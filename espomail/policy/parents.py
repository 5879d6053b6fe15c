"""The CRM record an email belongs to (its parent) and the CRM account behind it (SPEC 4.5).

Used by the import pipeline (the parent step), by ``email link`` and by ``email send``.
"""

from __future__ import annotations

from collections.abc import Iterable

from espomail.store import cases as cases_q
from espomail.store import records as records_q
from espomail.store.db import Row, Store

Parent = tuple[str, int]  # (type, id): account, contact, lead, opportunity or case


def record_exists(store: Store, kind: str, record_id: int) -> bool:
    if kind == "case":
        return cases_q.case_exists(store, record_id)
    return records_q.record(store, kind, record_id) is not None


def crm_account_of(store: Store, kind: str, record_id: int) -> int | None:
    """The CRM account behind a parent: itself, a contact's or opportunity's, a case's."""
    if kind == "account":
        return record_id
    if kind == "case":
        return cases_q.account_of(store, record_id)
    row = records_q.record(store, kind, record_id)
    return row["account_id"] if row is not None else None


def pick_record(rows: Iterable[Row], b2c_mode: bool) -> tuple[Parent, str] | None:
    """Of the records owning one address: a contact (its account unless b2c_mode), else an
    account, else a lead; the lowest id first. ((type, id), description) or None."""
    rows = list(rows)
    for kind in ("contact", "account", "lead"):
        found = [r for r in rows if r["type"] == kind]
        if not found:
            continue
        record = found[0]
        if kind == "contact" and record["account_id"] and not b2c_mode:
            return ("account", record["account_id"]), (
                f"contact {record['id']} ({record['name']}) of account {record['account_id']}"
            )
        return (kind, record["id"]), f"{kind} {record['id']} ({record['name']})"
    return None
