"""SQL for personal and group folders."""

from __future__ import annotations

from collections.abc import Iterable

from espomail.store.db import Row, Store
from espomail.timeutil import now_iso


def folder(store: Store, folder_id: int) -> Row | None:
    return store.row("SELECT * FROM folders WHERE id = ?", [folder_id])


def folder_name(store: Store, folder_id: int | None) -> str | None:
    if not folder_id:
        return None
    return store.value("SELECT name FROM folders WHERE id = ?", [folder_id])


def personal_folder(store: Store, owner_id: int, name: str) -> Row | None:
    return store.row(
        "SELECT * FROM folders WHERE kind = 'personal' AND owner_id = ? AND name = ?",
        [owner_id, name],
    )


def group_folder(store: Store, name: str) -> Row | None:
    return store.row("SELECT * FROM folders WHERE kind = 'group' AND name = ?", [name])


def insert_folder(store: Store, kind: str, name: str, owner_id: int | None, skip_notifications: bool) -> int:
    return store.insert(
        "folders",
        {
            "kind": kind,
            "name": name,
            "owner_id": owner_id,
            "skip_notifications": skip_notifications,
            "created_at": now_iso(),
        },
    )


def set_folder_teams(store: Store, folder_id: int, team_ids: Iterable[int]) -> None:
    store.execute("DELETE FROM folder_teams WHERE folder_id = ?", [folder_id])
    store.executemany(
        "INSERT INTO folder_teams (folder_id, team_id) VALUES (?, ?)",
        [(folder_id, t) for t in team_ids],
    )


def folder_team_ids(store: Store, folder_id: int) -> list[int]:
    return store.column("SELECT team_id FROM folder_teams WHERE folder_id = ? ORDER BY team_id", [folder_id])


def folders(store: Store, owner_id: int | None = None) -> list[Row]:
    if owner_id is None:
        return store.rows("SELECT * FROM folders ORDER BY kind, owner_id NULLS FIRST, name")
    return store.rows(
        """SELECT * FROM folders WHERE (kind = 'personal' AND owner_id = ?)
           OR (kind = 'group' AND id IN (SELECT ft.folder_id FROM folder_teams ft
               JOIN user_teams ut ON ut.team_id = ft.team_id WHERE ut.user_id = ?))
           ORDER BY kind, name""",
        [owner_id, owner_id],
    )


def delete_folder(store: Store, folder_id: int) -> None:
    store.execute("DELETE FROM folders WHERE id = ?", [folder_id])
