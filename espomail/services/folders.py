"""Personal folders (one user's) and group folders (shared with teams)."""

from __future__ import annotations

from collections.abc import Sequence

from espomail import validate
from espomail.errors import Duplicate, InvalidInput, NotFound
from espomail.model import FolderKind
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services.people import get_team, get_user
from espomail.store import folders as q
from espomail.store import people as people_q
from espomail.store.db import Row, Store


def folder_dict(store: Store, row: Row) -> dict:
    owner = people_q.user_by_id(store, row["owner_id"]) if row["owner_id"] else None
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "owner": owner["username"] if owner else None,
        "teams": people_q.team_names(store, q.folder_team_ids(store, row["id"])),
        "skip_notifications": bool(row["skip_notifications"]),
    }


def add_folder(
    store: Store,
    actor: Actor,
    name: str,
    user: str | None = None,
    group: bool = False,
    teams: Sequence[str] = (),
    skip_notifications: bool = False,
) -> dict:
    name = validate.name(name, "folder name", 64)
    if bool(user) == bool(group):
        raise InvalidInput("give either --user U (a personal folder) or --group --team T")
    with store.atomic():
        if group:
            return _add_group_folder(store, actor, name, teams)
        owner = get_user(store, user)
        access.require(
            actor, "user.self", access.OwnerFacts(owner["id"]), f"add folders for user '{owner['username']}'"
        )
        if q.personal_folder(store, owner["id"], name):
            raise Duplicate(f"user '{owner['username']}' has a folder '{name}' already")
        folder_id = q.insert_folder(store, FolderKind.PERSONAL, name, owner["id"], skip_notifications)
        return folder_dict(store, q.folder(store, folder_id))


def _add_group_folder(store: Store, actor: Actor, name: str, teams: Sequence[str]) -> dict:
    access.require(actor, "admin", None, "add group folders")
    if not teams:
        raise InvalidInput("a group folder needs at least one --team")
    if q.group_folder(store, name):
        raise Duplicate(f"a group folder '{name}' exists already")
    team_ids = [get_team(store, t)["id"] for t in teams]
    folder_id = q.insert_folder(store, FolderKind.GROUP, name, None, False)
    q.set_folder_teams(store, folder_id, team_ids)
    return folder_dict(store, q.folder(store, folder_id))


def list_folders(store: Store, actor: Actor, user: str | None = None) -> list[dict]:
    if user:
        owner = get_user(store, user)
        access.require(
            actor, "user.self", access.OwnerFacts(owner["id"]), f"list the folders of user '{owner['username']}'"
        )
        return [folder_dict(store, r) for r in q.folders(store, owner["id"])]
    owner_id = None if actor.is_system else actor.user_id
    return [folder_dict(store, r) for r in q.folders(store, owner_id)]


def resolve_personal(store: Store, owner_id: int, name: str) -> Row:
    row = q.personal_folder(store, owner_id, name)
    if row is None:
        owner = people_q.user_by_id(store, owner_id)
        raise NotFound(
            f"user '{owner['username']}' has no folder '{name}'; add it with "
            f"'espomail folder add {name} --user {owner['username']}'"
        )
    return row


def resolve_group(store: Store, name: str) -> Row:
    row = q.group_folder(store, name)
    if row is None:
        raise NotFound(f"no group folder '{name}'; add it with 'espomail folder add {name} --group --team T'")
    return row
