"""CRM records: accounts, contacts, leads, opportunities (and following cases)."""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import re
from collections.abc import Sequence
from pathlib import Path

from espomail import validate
from espomail.errors import InvalidInput, NotFound
from espomail.model import Page
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services.emails import readable_ids
from espomail.services.people import get_user
from espomail.store import people as people_q
from espomail.store import records as q
from espomail.store.db import Row, Store

BELONGS_TO_ACCOUNT = ("contact", "opportunity")


def record_dict(store: Store, row: Row) -> dict:
    result = {
        "type": row["type"],
        "id": row["id"],
        "name": row["name"],
        "emails": people_q.addresses_of(store, row["type"], row["id"]),
        "followers": [f["username"] for f in q.followers(store, row["type"], row["id"])],
    }
    if row["type"] in BELONGS_TO_ACCOUNT:
        result["account_id"] = row["account_id"]
    return result


def check_type(kind: str) -> str:
    return validate.choice(kind.lower(), q.RECORD_TYPES, "record type")


def get_record(store: Store, kind: str, record_id: int) -> Row:
    row = q.record(store, check_type(kind), record_id)
    if row is None:
        raise NotFound(f"no {kind} with id {record_id}; see 'espomail record list {kind}'")
    return row


def resolve_account(store: Store, name_or_id: str) -> Row:
    """An account by id or by its exact name (which must be unambiguous)."""
    if validate.is_whole_number(name_or_id.strip()):
        return get_record(store, "account", validate.whole_number(name_or_id, "the account id"))
    found = q.accounts_by_name(store, name_or_id.strip())
    if not found:
        raise NotFound(f"no account named '{name_or_id}'; add it with 'espomail record add account'")
    if len(found) > 1:
        ids = ", ".join(str(r["id"]) for r in found)
        raise InvalidInput(f"several accounts are named '{name_or_id}' (ids {ids}); give the id")
    return found[0]


def resolve_record(store: Store, kind: str, name_or_id: str) -> Row:
    """A record of ``kind`` by id (all digits) or by its exact name (which must be unambiguous)."""
    kind = check_type(kind)
    if validate.is_whole_number(name_or_id.strip()):
        return get_record(store, kind, validate.whole_number(name_or_id, f"the {kind} id"))
    found = q.records_by_name(store, kind, name_or_id.strip())
    if not found:
        raise NotFound(f"no {kind} named '{name_or_id}'; see 'espomail record list {kind}'")
    if len(found) > 1:
        ids = ", ".join(str(r["id"]) for r in found)
        raise InvalidInput(f"several {kind}s are named '{name_or_id}' (ids {ids}); give the id")
    return found[0]


def add_record(
    store: Store,
    actor: Actor,
    kind: str,
    name: str,
    emails: Sequence[str] = (),
    account: str | None = None,
) -> dict:
    access.require(actor, "record.create", None, f"add a {kind} record")
    kind = check_type(kind)
    with store.atomic():
        fields = _fields(store, kind, name, emails, account)
        return record_dict(store, q.record(store, kind, _insert(store, kind, fields)))


@dataclasses.dataclass(frozen=True)
class _Fields:
    """A record's values from options or a CSV row, validated (account: its id, None = not given)."""

    name: str
    addresses: tuple[str, ...]
    account_id: int | None


def _fields(store: Store, kind: str, name: str, emails: Sequence[str], account: str | None) -> _Fields:
    name = validate.name(name, "--name")
    addresses = tuple(dict.fromkeys(validate.email_address(e) for e in emails))
    if account and kind not in BELONGS_TO_ACCOUNT:
        raise InvalidInput(f"--account applies to contacts and opportunities, not to a {kind}")
    return _Fields(name, addresses, resolve_account(store, account)["id"] if account else None)


def _insert(store: Store, kind: str, fields: _Fields) -> int:
    record_id = q.insert_record(store, kind, fields.name, fields.account_id)
    for index, address in enumerate(fields.addresses):
        people_q.add_address(store, kind, record_id, address, index == 0)
    return record_id


def list_records(store: Store, actor: Actor, kind: str, limit: int = 1000, offset: int = 0) -> Page:
    """A page of the records of ``kind`` (by id) and how many there are in all."""
    kind = check_type(kind)
    return Page([record_dict(store, r) for r in q.records(store, kind, limit, offset)], q.count_records(store, kind))


def show_record(store: Store, actor: Actor, kind: str, record_id: int) -> dict:
    """A record and its latest stream notes; a note about an email ``actor`` may not read
    (email.read) is left out: its body is an excerpt of that email."""
    from espomail.store import notifications as notes_q

    row = get_record(store, kind, record_id)
    result = record_dict(store, row)
    notes = notes_q.notes_of(store, row["type"], row["id"], limit=20)
    readable = readable_ids(store, actor, (n["email_id"] for n in notes))
    result["stream"] = [
        {"id": n["id"], "type": n["type"], "email_id": n["email_id"], "body": n["body"], "created_at": n["created_at"]}
        for n in notes
        if n["email_id"] is None or n["email_id"] in readable
    ]
    return result


_SPLIT = re.compile(r"[;,\s]+")


class Outcome(enum.StrEnum):
    """What ``record import`` did with one row."""

    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclasses.dataclass
class Imported:
    """The records of an import, in file order, each with ``imported``: its Outcome."""

    records: list[dict]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.records if r["imported"] == outcome)

    def summary(self) -> str:
        return ", ".join(f"{self.count(o)} {o}" for o in Outcome)


def import_records(store: Store, actor: Actor, kind: str, path: Path) -> Imported:
    """Import a CSV with a header row: name (required), email or emails (several separated
    by ';'), account (name or id; contacts and opportunities). All rows or none.

    Idempotent: a row whose address belongs to a record of ``kind`` updates that record (its
    name, its account when the row gives one, new addresses added; none removed), so a
    second run changes nothing; a row without an address matches a record of the same exact
    name. Otherwise the row adds a record."""
    access.require(actor, "record.create", None, f"import {kind} records")
    kind = check_type(kind)
    rows = _read_csv(path)
    imported = []
    with store.atomic():
        for line, row in rows:
            try:
                emails = [e for e in _SPLIT.split(row.get("emails") or row.get("email") or "") if e]
                fields = _fields(store, kind, row.get("name") or "", emails, row.get("account") or None)
                outcome, record_id = _import_row(store, kind, fields)
            except (InvalidInput, NotFound) as exc:
                raise type(exc)(f"{path.name} line {line}: {exc.message}; nothing was imported") from None
            imported.append({**record_dict(store, q.record(store, kind, record_id)), "imported": outcome})
    return Imported(imported)


def _import_row(store: Store, kind: str, fields: _Fields) -> tuple[Outcome, int]:
    existing = _matching_record(store, kind, fields)
    if existing is None:
        return Outcome.ADDED, _insert(store, kind, fields)
    changes: dict = {}
    if fields.name != existing["name"]:
        changes["name"] = fields.name
    if fields.account_id is not None and fields.account_id != existing["account_id"]:
        changes["account_id"] = fields.account_id
    known = {a.lower() for a in people_q.addresses_of(store, kind, existing["id"])}
    added = [a for a in fields.addresses if a.lower() not in known]
    if not changes and not added:
        return Outcome.UNCHANGED, existing["id"]
    q.update_record(store, existing["id"], changes)
    for address in added:
        people_q.add_address(store, kind, existing["id"], address, primary=not known)
        known.add(address.lower())
    return Outcome.UPDATED, existing["id"]


def _matching_record(store: Store, kind: str, fields: _Fields) -> Row | None:
    """The record a CSV row stands for: the one owning its addresses, else (no address) the one
    of its exact name; None when there is none (the row adds a record)."""
    if fields.addresses:
        owners = sorted({o for a in fields.addresses for o in people_q.owners_of_address(store, a, kind)})
        if len(owners) > 1:
            ids = ", ".join(map(str, owners))
            raise InvalidInput(f"its addresses belong to different {kind}s (ids {ids}); give one {kind} per row")
        return q.record(store, kind, owners[0]) if owners else None
    found = q.records_by_name(store, kind, fields.name)
    if len(found) > 1:
        ids = ", ".join(str(r["id"]) for r in found)
        raise InvalidInput(f"several {kind}s are named '{fields.name}' (ids {ids}); give an address to tell them apart")
    return found[0] if found else None


def _read_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NotFound(f"no file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}; save it as UTF-8 CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "name" not in header:
        raise InvalidInput(f"{path.name} needs a header row with a 'name' column (and email, account)")
    reader.fieldnames = header
    return [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader]


# -- following -------------------------------------------------------------------------


def _followable(store: Store, kind: str, record_id: int) -> tuple[str, int, Row | None]:
    """(record_type, internal id, the case row or None) of a record or a case (by its number)."""
    kind = kind.lower()
    if kind == "case":
        from espomail.store import cases as cases_q

        case = cases_q.case_by_number(store, record_id)
        if case is None:
            raise NotFound(f"no case number {record_id}; see 'espomail case list'")
        return "case", case["id"], case
    return kind, get_record(store, kind, record_id)["id"], None


def _may_manage_follow(actor: Actor, user: Row) -> None:
    access.require(actor, "user.self", access.OwnerFacts(user["id"]), f"change what user '{user['username']}' follows")


def follow(store: Store, actor: Actor, kind: str, record_id: int, username: str) -> dict:
    """``username`` follows a record: oneself, and a record one may see (a case: case.access)."""
    from espomail.services.cases import case_facts

    with store.atomic():
        user = get_user(store, username)
        _may_manage_follow(actor, user)
        record_type, internal_id, case = _followable(store, kind, record_id)
        facts = access.FollowFacts(user["id"], case_facts(store, case) if case is not None else None)
        access.require(actor, "record.follow", facts, f"follow {kind}:{record_id}")
        q.follow(store, record_type, internal_id, user["id"])
        return _follow_result(store, record_type, internal_id, record_id)


def unfollow(store: Store, actor: Actor, kind: str, record_id: int, username: str) -> dict:
    with store.atomic():
        user = get_user(store, username)
        _may_manage_follow(actor, user)
        record_type, internal_id, _case = _followable(store, kind, record_id)
        if not q.unfollow(store, record_type, internal_id, user["id"]):
            raise NotFound(f"user '{username}' does not follow {kind}:{record_id}")
        return _follow_result(store, record_type, internal_id, record_id)


def _follow_result(store: Store, record_type: str, internal_id: int, shown_id: int) -> dict:
    return {
        "type": record_type,
        "id": shown_id,
        "followers": [f["username"] for f in q.followers(store, record_type, internal_id)],
    }
