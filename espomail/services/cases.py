"""The ``case`` commands: list, show, update (distribution and ``[#N]``: policy/cases.py)."""

from __future__ import annotations

import dataclasses

from espomail import validate
from espomail.config import Settings
from espomail.errors import NotFound
from espomail.model import CasePriority, CaseStatus, Page
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.policy.assignment_notices import Assigned
from espomail.services.emails import readable_ids
from espomail.services.people import get_user
from espomail.store import accounts as accounts_q
from espomail.store import cases as q
from espomail.store import notifications as notes_q
from espomail.store import people as people_q
from espomail.store import records as records_q
from espomail.store.db import Row, Store

STATUSES = tuple(status.value for status in CaseStatus)
PRIORITIES = tuple(priority.value for priority in CasePriority)


@dataclasses.dataclass(frozen=True)
class CaseNames:
    """What a page of cases names (emails, teams, assignees, accounts), read in one query per
    kind for the whole page: one per case costs a round trip each on PostgreSQL."""

    email_ids: dict[int, list[int]]
    team_ids: dict[int, list[int]]
    team_names: dict[int, str]
    usernames: dict[int, str]
    account_names: dict[int, str]

    @classmethod
    def of(cls, store: Store, cases: list[Row]) -> CaseNames:
        case_ids = [c["id"] for c in cases]
        team_ids = q.team_ids_of(store, case_ids)
        return cls(
            email_ids=q.email_ids_of(store, case_ids),
            team_ids=team_ids,
            team_names=people_q.team_names_by_id(store, (t for ids in team_ids.values() for t in ids)),
            usernames=people_q.usernames(store, (c["assigned_user_id"] for c in cases)),
            account_names=accounts_q.account_names(store, (c["inbound_account_id"] for c in cases)),
        )


def case_dict(
    store: Store,
    case: Row,
    actor: Actor,
    full: bool = True,
    names: CaseNames | None = None,
    readable: set[int] | None = None,
) -> dict:
    """A case as ``actor`` may see it (docs/access.md, "Cases"): its own fields; of its
    emails (ids, stream notes) only those ``actor`` may read (email.read); and its
    description and attachments, copied from the email that opened it, only when ``actor``
    may read that email. A list gives the ``names`` and ``readable`` email ids of its page."""
    names = names or CaseNames.of(store, [case])
    email_ids = names.email_ids.get(case["id"], [])
    notes = notes_q.stream_of(store, "case", case["id"]) if full else []
    if readable is None or notes:
        readable = readable_ids(store, actor, [*email_ids, *(n["email_id"] for n in notes)])
    teams = (names.team_names.get(t) for t in names.team_ids.get(case["id"], []))
    result = {
        "number": case["number"],
        "name": case["name"],
        "status": case["status"],
        "priority": case["priority"],
        "type": case["type"],
        "assigned_user": names.usernames.get(case["assigned_user_id"]),
        "teams": sorted(name for name in teams if name is not None),
        "account_id": case["account_id"],
        "contact_id": case["contact_id"],
        "lead_id": case["lead_id"],
        "inbound_account": names.account_names.get(case["inbound_account_id"]),
        "email_ids": [i for i in email_ids if i in readable],
        "created_at": case["created_at"],
        "updated_at": case["updated_at"],
    }
    if full:
        source = next((n["email_id"] for n in notes if n["is_initial"]), email_ids[0] if email_ids else None)
        shown = source is None or source in readable
        result["description"] = case["description"] if shown else None
        result["attachments"] = [_attachment(a) for a in q.attachments_of(store, case["id"])] if shown else []
        result["followers"] = records_q.follower_names(store, "case", case["id"])
        result["stream"] = [_note(n) for n in notes if n["email_id"] is None or n["email_id"] in readable]
    return result


def _attachment(row: Row) -> dict:
    return {
        "filename": row["filename"],
        "content_type": row["content_type"],
        "size": row["size"],
        "inline": bool(row["is_inline"]),
        "email_id": row["source_email_id"],
    }


def _note(row: Row) -> dict:
    return {
        "type": row["type"],
        "email_id": row["email_id"],
        "body": row["body"],
        "is_initial": bool(row["is_initial"]),
        "created_at": row["created_at"],
    }


def get_case(store: Store, number: int) -> Row:
    case = q.case_by_number(store, number)
    if case is None:
        raise NotFound(f"no case number {number}; see 'espomail case list'")
    return case


def case_facts(store: Store, case: Row) -> access.CaseFacts:
    return access.CaseFacts(case["assigned_user_id"], frozenset(q.team_ids(store, case["id"])))


def require_case_access(store: Store, actor: Actor, case_id: int, what: str) -> None:
    """case.access on the case with internal id ``case_id`` (linking or sending into it)."""
    case = q.case_by_id(store, case_id)
    if case is None:
        raise NotFound(f"no case with id {case_id}")
    access.require(actor, "case.access", case_facts(store, case), f"{what} case {case['number']}")


def list_cases(
    store: Store,
    actor: Actor,
    status: str | None = None,
    assigned: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """A page of the cases ``actor`` may see, newest first, and how many there are in all."""
    if status:
        validate.choice(status, STATUSES, "--status")
    assigned_id = get_user(store, assigned)["id"] if assigned else None
    visible = None
    if access.case_scope(actor) == "mine":
        visible = (actor.user_id, sorted(actor.team_ids))
    rows = q.list_cases(store, status, assigned_id, limit, offset, visible)
    total = q.count_cases(store, status, assigned_id, visible)
    names = CaseNames.of(store, rows)
    readable = readable_ids(store, actor, (i for ids in names.email_ids.values() for i in ids))
    return Page([case_dict(store, r, actor, False, names, readable) for r in rows], total)


def show_case(store: Store, actor: Actor, number: int) -> dict:
    case = get_case(store, number)
    access.require(actor, "case.access", case_facts(store, case), f"see case {number}")
    return case_dict(store, case, actor)


def update_case(
    store: Store,
    actor: Actor,
    number: int,
    status: str | None = None,
    assign: str | None = None,
    priority: str | None = None,
    settings: Settings | None = None,
) -> dict:
    """Change a case; a new assignee who opted in is mailed (with ``settings``; services/notices.py)."""
    notice = None
    with store.atomic():
        case = get_case(store, number)
        access.require(actor, "case.access", case_facts(store, case), f"change case {number}")
        values: dict = {}
        if status:
            values["status"] = validate.choice(status, STATUSES, "--status")
        if priority:
            values["priority"] = validate.choice(priority, PRIORITIES, "--priority")
        if assign is not None:
            values["assigned_user_id"] = get_user(store, assign)["id"] if assign else None
            if assign and not status and case["status"] == CaseStatus.NEW:
                values["status"] = CaseStatus.ASSIGNED
        q.update_case(store, case["id"], values)
        assignee = values.get("assigned_user_id")
        if settings is not None and assignee and assignee != case["assigned_user_id"]:
            notice = _announce(store, settings, actor, case, assignee)
        result = case_dict(store, q.case_by_id(store, case["id"]), actor)
    if settings is not None and notice is not None:
        from espomail.services import notices  # the mail stack (SMTP, IMAP), only when mailing

        notices.send(store, settings, notice)
    return result


def _announce(store: Store, settings: Settings, actor: Actor, case: Row, assignee_id: int) -> int | None:
    """Queue the notice of the new assignee (who may not have opted in)."""
    from espomail.services import notices  # imported here: 'case list' need not load the mail stack

    inbound = accounts_q.account_by_id(store, case["inbound_account_id"]) if case["inbound_account_id"] else None
    return notices.announce(store, settings, actor, Assigned.CASE, case["number"], case["name"], assignee_id, inbound)
