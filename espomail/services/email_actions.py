"""Changing emails: per-user state (read, trash, archive, folder), links, deletion (SPEC 8).

Trash, restore, archive, move and read/unread are per user: they need read access and
change nothing for anyone else. Linking (parent) needs the edit level. Delete removes the
one shared email for everyone, with its attachments and per-user rows, and needs the
delete level.
"""

from __future__ import annotations

from espomail import timeutil, validate
from espomail.errors import InvalidInput, NotFound
from espomail.model import UserState
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.policy.parents import crm_account_of, record_exists
from espomail.services.cases import require_case_access
from espomail.services.emails import email_dict, facts, get_email, readable_email
from espomail.store import cases as cases_q
from espomail.store import emails as emails_q
from espomail.store import folders as folders_q
from espomail.store import notifications as notes_q
from espomail.store.db import Store

# action -> the per-user columns it sets
STATE_CHANGES = {
    "read": {"is_read": 1},
    "unread": {"is_read": 0},
    "trash": {"in_trash": 1},
    "restore": {"in_trash": 0, "in_archive": 0},
    "archive": {"in_archive": 1},
}


def _require_user(actor: Actor, action: str) -> int:
    if actor.user_id is None:
        raise InvalidInput(f"'email {action}' changes one user's mailbox: add --as USERNAME")
    return actor.user_id


def change_state(store: Store, actor: Actor, email_id: int, action: str, folder: str | None = None) -> dict:
    user_id = _require_user(actor, action)
    with store.atomic():
        email = readable_email(store, actor, email_id, action)
        changes = dict(STATE_CHANGES.get(action, {}))
        if action == "move":
            changes = {"folder_id": _target_folder(store, user_id, folder), "in_trash": 0, "in_archive": 0}
        # A user who reads an email through a team or 'all' level gets a per-user row.
        emails_q.ensure_user(store, email_id, user_id, email["date_sent"], "opened by the user")
        emails_q.set_user_state(store, email_id, user_id, changes)
        if action in ("trash", "read"):
            notes_q.mark_read(store, user_id, email_id=email_id)
        return email_dict(store, email, actor, full=False)


def _target_folder(store: Store, user_id: int, folder: str | None) -> int | None:
    if not folder:
        raise InvalidInput("give --folder F (one of your folders, or inbox)")
    if folder.lower() == "inbox":
        return None
    row = folders_q.personal_folder(store, user_id, folder)
    if row is None:
        raise NotFound(f"you have no folder '{folder}'; see 'espomail folder list'")
    return row["id"]


def link(store: Store, actor: Actor, email_id: int, parent: str) -> dict:
    """Set the parent record by hand: needs the edit level on the email and, for a case,
    access to the case (policy.access)."""
    kind, number = validate.record_ref(parent)
    with store.atomic():
        email = get_email(store, email_id)
        access.require(actor, "email.edit", facts(store, email), f"change the parent of email {email_id}")
        record_id = number
        if kind == "case":
            record_id = cases_q.case_id_by_number(store, number)
        if record_id is None or not record_exists(store, kind, record_id):
            raise NotFound(f"no {kind} {number}")
        if kind == "case":
            require_case_access(store, actor, record_id, f"link email {email_id} into")
        emails_q.save_parsed(
            store,
            email_id,
            {"parent_type": kind, "parent_id": record_id, "crm_account_id": crm_account_of(store, kind, record_id)},
        )
        emails_q.insert_events(store, email_id, None, [("link", f"{kind}:{number}", f"set by {actor.username}")])
        return email_dict(store, get_email(store, email_id), actor)


def update(
    store: Store,
    actor: Actor,
    email_id: int,
    assign: str | None = None,
    add_teams=(),
    remove_teams=(),  # noqa: ANN001
) -> dict:
    """Change the assigned user and teams of an email (needs the edit level)."""
    from espomail.services.people import get_team, get_user

    with store.atomic():
        email = get_email(store, email_id)
        access.require(actor, "email.edit", facts(store, email), f"change email {email_id}")
        changes = []
        if assign is not None:
            user = get_user(store, assign) if assign else None
            emails_q.save_parsed(store, email_id, {"assigned_user_id": user["id"] if user else None})
            if user is not None:
                emails_q.add_users(store, email_id, email["date_sent"], {user["id"]: _assigned()})
            changes.append(f"assigned {assign or 'nobody'}")
        for name in add_teams:
            emails_q.add_teams(store, email_id, [get_team(store, name)["id"]])
            changes.append(f"+team {name}")
        for name in remove_teams:
            emails_q.remove_team(store, email_id, get_team(store, name)["id"])
            changes.append(f"-team {name}")
        if not changes:
            raise InvalidInput("give --assign, --add-team or --remove-team")
        emails_q.insert_events(store, email_id, None, [("update", ", ".join(changes), f"by {actor.username}")])
        return email_dict(store, get_email(store, email_id), actor)


def _assigned() -> UserState:
    return UserState(reason="assigned by hand")


def delete(store: Store, actor: Actor, email_id: int) -> dict:
    """Remove the shared email for everyone (attachments, per-user rows, notifications)."""
    with store.atomic():
        email = get_email(store, email_id)
        access.require(actor, "email.delete", facts(store, email), f"delete email {email_id}")
        result = email_dict(store, email, None, full=False)
        places = emails_q.raw_places(store, email_id)
        emails_q.delete_email(store, email_id)
        result["deleted_at"] = timeutil.now_iso()
    # Once the deletion is committed, its raw sources are zeroed in their packs.
    emails_q.erase_raw(store, places)
    return result
