"""Reading emails: list, show, raw source, explain (SPEC 2, 8)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from espomail import validate
from espomail.errors import InvalidInput, NotFound
from espomail.mail import copies
from espomail.model import AccessLevel, Page, ProcessingState, counted_up_to
from espomail.policy import access
from espomail.policy.access import Actor, EmailFacts
from espomail.store import accounts as accounts_q
from espomail.store import cases as cases_q
from espomail.store import emails as q
from espomail.store import folders as folders_q
from espomail.store import people as people_q
from espomail.store.db import Row, Store
from espomail.store.mailbox import SPECIAL_FOLDERS, Query, count_emails, list_emails

# The --state choices, in the order help shows them.
STATES = tuple(
    s.value
    for s in (ProcessingState.PROCESSED, ProcessingState.FAILED, ProcessingState.PENDING, ProcessingState.FILTERED)
)


def get_email(store: Store, email_id: int) -> Row:
    email = q.email_by_id(store, email_id)
    if email is None:
        raise NotFound(f"no email with id {email_id}; see 'espomail email list'")
    return email


def facts(store: Store, email: Row) -> EmailFacts:
    return EmailFacts(
        user_ids=frozenset(q.user_ids_of(store, email["id"])),
        team_ids=frozenset(q.team_ids_of(store, email["id"])),
        assigned_user_id=email["assigned_user_id"],
        created_by_id=email["created_by_id"],
    )


def readable_ids(store: Store, actor: Actor, email_ids: Iterable[int | None]) -> set[int]:
    """Of ``email_ids``, those ``actor`` may read: the one read check (email.read) for every
    email shown inside something else (streams, cases, notifications)."""
    ids = {i for i in email_ids if i is not None}
    if not ids or actor.is_admin or access.read_scope(actor) == AccessLevel.ALL:
        return ids
    readers = q.readers_of(store, sorted(ids))
    return {
        i
        for i, (users, teams) in readers.items()
        if access.allowed(actor, "email.read", EmailFacts(frozenset(users), frozenset(teams)))
    }


def readable_email(store: Store, actor: Actor, email_id: int, what: str = "read") -> Row:
    email = get_email(store, email_id)
    access.require(actor, "email.read", facts(store, email), f"{what} email {email_id}")
    return email


def email_dict(store: Store, email: Row, actor: Actor | None = None, full: bool = True) -> dict:
    return email_dicts(store, [email], actor, full)[0]


def email_dicts(
    store: Store, emails: list[Row], actor: Actor | None = None, full: bool = False, list_item: bool = False
) -> list[dict]:
    """The JSON shape of SPEC 2 for a page of emails: their relations in a query each.
    List items always carry ``body_text`` and ``body_html`` (null unless ``full``)."""
    user_id = actor.user_id if actor is not None else None
    related = q.relations_of(store, [e["id"] for e in emails], user_id)
    result = [_one(store, email, related, user_id, full) for email in emails]
    if list_item and not full:
        for item in result:
            item["body_text"] = item["body_html"] = None
    return result


def _one(store: Store, email: Row, related: dict, user_id: int | None, full: bool) -> dict:
    eid = email["id"]
    result = {
        "id": eid,
        "message_id": copies.base_key(email["message_id"]) if email["has_message_id"] else None,
        "subject": email["subject"],
        "from": email["from_address"],
        "from_name": email["from_name"],
        "to": json.loads(email["to_list"]),
        "cc": json.loads(email["cc_list"]),
        "reply_to": json.loads(email["reply_to_list"]),
        "date_sent": email["date_sent"],
        "status": email["status"],
        "state": email["state"],
        "parent": {"type": email["parent_type"], "id": _shown_id(store, email)} if email["parent_type"] else None,
        "account_id": email["crm_account_id"],
        "replied_id": email["replied_id"],
        "is_auto_reply": bool(email["is_auto_reply"]),
        "is_bounce": bool(email["is_bounce"]),
        "truncated": bool(email["truncated"]),
        "assigned_user": people_q.username(store, email["assigned_user_id"]),
        "teams": [r["name"] for r in related["teams"][eid]],
        "users": [r["username"] for r in related["users"][eid]],
        "accounts": [r["name"] for r in related["accounts"][eid]],
        "attachments": [
            {
                "filename": a["filename"],
                "content_type": a["content_type"],
                "size": a["size"],
                "inline": bool(a["is_inline"]),
            }
            for a in related["attachments"][eid]
        ],
    }
    if full:
        result.update(_bodies(store, email))
    if user_id is not None:
        result.update(_user_state(related["state"][eid]))
    return result


def _bodies(store: Store, email: Row) -> dict:
    from espomail.mail.parse import parse_stored  # loaded only to show a body

    parsed = parse_stored(q.raw_of(store, email["id"]), bool(email["truncated"]))
    return {
        "body_text": parsed.body_text,
        "body_html": parsed.body_html,
        "bcc": json.loads(email["bcc_list"]),
        "last_error": email["last_error"],
        "send_attempts": email["send_attempts"],
    }


def _shown_id(store: Store, email: Row) -> int:
    if email["parent_type"] == "case":
        number = cases_q.case_number(store, email["parent_id"])
        return number if number is not None else email["parent_id"]
    return email["parent_id"]


def _user_state(rows: list[Row]) -> dict:
    if not rows:
        return {"folder": None, "is_read": False, "in_trash": False, "in_archive": False}
    row = rows[0]
    return {
        "folder": row["folder_name"],
        "is_read": bool(row["is_read"]),
        "in_trash": bool(row["in_trash"]),
        "in_archive": bool(row["in_archive"]),
    }


def list_for(
    store: Store,
    actor: Actor,
    folder: str | None = None,
    parent: str | None = None,
    account: str | None = None,
    state: str = ProcessingState.PROCESSED,
    limit: int = 50,
    offset: int = 0,
    bodies: bool = False,
) -> Page:
    """A page of emails, the list's total and a keyset cursor to the next page.
    ``body_text``/``body_html`` are null unless ``bodies`` (each body is parsed from the raw
    source: 100 of them cost tens of milliseconds)."""
    query = Query(limit=limit, offset=offset, state=validate.choice(state, STATES, "--state"))
    if actor.user_id is not None:
        access.require(actor, "email.list", None, "list emails")
        scope = access.read_scope(actor)
        query.user_id, query.scope, query.team_ids = actor.user_id, scope, tuple(sorted(actor.team_ids))
        query.folder = "inbox"
    if folder:
        _apply_folder(store, actor, query, folder)
    if parent:
        query.parent = _parent_ref(store, parent)
    if account:
        from espomail.services.accounts import get_account  # here: it brings OAuth and keyring code

        query.account_id = get_account(store, account).id
    return _email_page(store, actor, query, bodies)


def _email_page(store: Store, actor: Actor, query: Query, bodies: bool) -> Page:
    rows = list_emails(store, query)
    if len(rows) < query.limit and (rows or query.offset == 0) and query.after is None:
        total, exact = query.offset + len(rows), True  # the list ends on this page: nothing to count
    elif query.after is None:
        total, exact = count_emails(store, query, counted_up_to(query.offset, query.limit))
    else:
        total, exact = None, True  # a continuation (--all) shows no total
    items = email_dicts(store, rows, actor, full=bodies, list_item=True)
    if not rows:
        return Page(items, total, exact)
    after = (rows[-1]["sort_key"], rows[-1]["id"])

    def following(n: int) -> Page:
        return _email_page(store, actor, dataclasses.replace(query, limit=n, offset=0, after=after), bodies)

    return Page(items, total, exact, following)


def _apply_folder(store: Store, actor: Actor, query: Query, folder: str) -> None:
    name = folder.strip()
    if name.lower() in SPECIAL_FOLDERS:
        if actor.user_id is None and name.lower() != "all":
            raise InvalidInput(f"--folder {name} is per user: add --as USERNAME (or use --folder all)")
        query.folder = name.lower()
        return
    if actor.user_id is not None:
        personal = folders_q.personal_folder(store, actor.user_id, name)
        if personal is not None:
            query.folder_id = personal["id"]
            return
    group = folders_q.group_folder(store, name)
    if group is None or actor.user_id is None:
        raise NotFound(
            f"no folder '{name}'; use inbox, sent, archive, trash, all or a folder of 'espomail folder list'"
        )
    query.group_folder_id = group["id"]


def _parent_ref(store: Store, ref: str) -> tuple[str, int]:
    kind, number = validate.record_ref(ref)
    if kind == "case":
        case_id = cases_q.case_id_by_number(store, number)
        if case_id is None:
            raise NotFound(f"no case number {number}")
        return "case", case_id
    return kind, number


def show(store: Store, actor: Actor, email_id: int) -> dict:
    return email_dict(store, readable_email(store, actor, email_id), actor)


def raw(store: Store, actor: Actor, email_id: int) -> bytes:
    readable_email(store, actor, email_id, "read the source of")
    return q.raw_of(store, email_id)


def explain(store: Store, actor: Actor, email_id: int) -> dict:
    email = readable_email(store, actor, email_id, "explain")
    return {
        "id": email["id"],
        "subject": email["subject"],
        "state": email["state"],
        "last_error": email["last_error"],
        "deliveries": [
            {
                "id": d["id"],
                "account": accounts_q.account_name(store, d["account_id"]),
                "folder": d["folder"],
                "uid": d["uid"],
                "state": d["state"],
                "attempts": d["attempts"],
                "error": d["error"],
                "at": d["processed_at"] or d["created_at"],
            }
            for d in q.deliveries_of(store, email_id)
        ],
        "events": _events(q.events_of(store, email_id)),
    }


def _events(rows) -> list[dict]:  # noqa: ANN001
    """The trail of decisions; a processed delivery's steps are stored together in one row."""
    events = []
    for row in rows:
        if row["step"] == "pipeline":
            for step, decision, detail in json.loads(row["detail"]):
                events.append(
                    {
                        "delivery_id": row["delivery_id"],
                        "step": step,
                        "decision": decision,
                        "detail": detail,
                        "at": row["created_at"],
                    }
                )
        else:
            events.append(
                {
                    "delivery_id": row["delivery_id"],
                    "step": row["step"],
                    "decision": row["decision"],
                    "detail": _detail(row["detail"]),
                    "at": row["created_at"],
                }
            )
    return events


def _detail(text: str | None):  # noqa: ANN202
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
