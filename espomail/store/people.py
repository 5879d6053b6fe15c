"""SQL for teams, roles, users and the email addresses of users and CRM records."""

from __future__ import annotations

import json
from collections.abc import Iterable

from espomail.store.db import Row, Store, values_by_id
from espomail.timeutil import now_iso

ROLE_FIELDS = (
    "email_create",
    "email_read",
    "email_edit",
    "email_delete",
    "personal_accounts",
    "group_send",
)

# -- teams ---------------------------------------------------------------------------


def team_by_name(store: Store, name: str) -> Row | None:
    return store.row("SELECT * FROM teams WHERE name = ?", [name])


def team_by_id(store: Store, team_id: int) -> Row | None:
    return store.row("SELECT * FROM teams WHERE id = ?", [team_id])


def team_name(store: Store, team_id: int) -> str | None:
    return store.value("SELECT name FROM teams WHERE id = ?", [team_id])


def teams(store: Store) -> list[Row]:
    return store.rows("SELECT * FROM teams ORDER BY name")


def insert_team(store: Store, name: str, positions: list[str]) -> int:
    return store.insert("teams", {"name": name, "positions": json.dumps(positions), "created_at": now_iso()})


def set_team_positions(store: Store, team_id: int, positions: list[str]) -> None:
    store.update("teams", team_id, {"positions": json.dumps(positions)})


def delete_team(store: Store, team_id: int) -> None:
    store.execute("DELETE FROM teams WHERE id = ?", [team_id])


def team_members(store: Store, team_id: int) -> list[Row]:
    return store.rows(
        """SELECT u.id, u.username, u.is_active, ut.position FROM user_teams ut
           JOIN users u ON u.id = ut.user_id WHERE ut.team_id = ? ORDER BY u.id""",
        [team_id],
    )


def team_names(store: Store, team_ids: Iterable[int]) -> list[str]:
    ids = list(team_ids)
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    return store.column(f"SELECT name FROM teams WHERE id IN ({marks}) ORDER BY name", ids)


# -- roles ---------------------------------------------------------------------------


def role_by_name(store: Store, name: str) -> Row | None:
    return store.row("SELECT * FROM roles WHERE name = ?", [name])


def roles(store: Store) -> list[Row]:
    return store.rows("SELECT * FROM roles ORDER BY name")


def insert_role(store: Store, name: str, levels: dict[str, str]) -> int:
    return store.insert("roles", {"name": name, **levels, "created_at": now_iso()})


def update_role(store: Store, role_id: int, levels: dict[str, str]) -> None:
    store.update("roles", role_id, levels)


def delete_role(store: Store, role_id: int) -> None:
    store.execute("DELETE FROM roles WHERE id = ?", [role_id])


def role_users(store: Store, role_id: int) -> list[str]:
    return store.column(
        """SELECT u.username FROM user_roles ur JOIN users u ON u.id = ur.user_id
           WHERE ur.role_id = ? ORDER BY u.username""",
        [role_id],
    )


# -- users ---------------------------------------------------------------------------


def user_by_username(store: Store, username: str) -> Row | None:
    return store.row("SELECT * FROM users WHERE username = ?", [username])


def user_by_id(store: Store, user_id: int) -> Row | None:
    return store.row("SELECT * FROM users WHERE id = ?", [user_id])


def usernames(store: Store, user_ids: Iterable[int | None]) -> dict[int, str]:
    return values_by_id(store, "users", "username", user_ids)


def team_names_by_id(store: Store, team_ids: Iterable[int | None]) -> dict[int, str]:
    return values_by_id(store, "teams", "name", team_ids)


def username(store: Store, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return store.value("SELECT username FROM users WHERE id = ?", [user_id])


def users(store: Store) -> list[Row]:
    return store.rows("SELECT * FROM users ORDER BY id")


def insert_user(
    store: Store, username: str, name: str, is_admin: bool, is_active: bool, email_notifications: bool = False
) -> int:
    return store.insert(
        "users",
        {
            "username": username,
            "name": name,
            "is_admin": is_admin,
            "is_active": is_active,
            "email_notifications": email_notifications,
            "created_at": now_iso(),
        },
    )


def update_user(store: Store, user_id: int, values: dict) -> None:
    store.update("users", user_id, values)


def delete_user(store: Store, user_id: int) -> None:
    store.execute("DELETE FROM addresses WHERE owner_type = 'user' AND owner_id = ?", [user_id])
    store.execute("DELETE FROM users WHERE id = ?", [user_id])


def user_teams(store: Store, user_id: int) -> list[Row]:
    return store.rows(
        """SELECT t.id, t.name, ut.position FROM user_teams ut JOIN teams t ON t.id = ut.team_id
           WHERE ut.user_id = ? ORDER BY t.name""",
        [user_id],
    )


def set_user_team(store: Store, user_id: int, team_id: int, position: str | None) -> None:
    store.execute("DELETE FROM user_teams WHERE user_id = ? AND team_id = ?", [user_id, team_id])
    store.execute(
        "INSERT INTO user_teams (user_id, team_id, position) VALUES (?, ?, ?)",
        [user_id, team_id, position],
    )


def remove_user_team(store: Store, user_id: int, team_id: int) -> None:
    store.execute("DELETE FROM user_teams WHERE user_id = ? AND team_id = ?", [user_id, team_id])


def user_roles(store: Store, user_id: int) -> list[Row]:
    return store.rows(
        """SELECT r.* FROM user_roles ur JOIN roles r ON r.id = ur.role_id
           WHERE ur.user_id = ? ORDER BY r.name""",
        [user_id],
    )


def add_user_role(store: Store, user_id: int, role_id: int) -> None:
    store.execute(
        """INSERT INTO user_roles (user_id, role_id) VALUES (?, ?)
           ON CONFLICT (user_id, role_id) DO NOTHING""",
        [user_id, role_id],
    )


def remove_user_role(store: Store, user_id: int, role_id: int) -> None:
    store.execute("DELETE FROM user_roles WHERE user_id = ? AND role_id = ?", [user_id, role_id])


def active_team_users(store: Store, team_ids: Iterable[int]) -> list[int]:
    ids = list(team_ids)
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    return store.column(
        f"""SELECT DISTINCT u.id FROM user_teams ut JOIN users u ON u.id = ut.user_id
            WHERE ut.team_id IN ({marks}) AND u.is_active = 1 ORDER BY u.id""",
        ids,
    )


# -- addresses -----------------------------------------------------------------------


def addresses_of(store: Store, owner_type: str, owner_id: int) -> list[str]:
    return store.column(
        """SELECT address FROM addresses WHERE owner_type = ? AND owner_id = ?
           ORDER BY is_primary DESC, id""",
        [owner_type, owner_id],
    )


def add_address(store: Store, owner_type: str, owner_id: int, address: str, primary: bool) -> None:
    store.execute(
        """INSERT INTO addresses (owner_type, owner_id, address, address_lower, is_primary)
           VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner_id, owner_type, address_lower) DO NOTHING""",
        [owner_type, owner_id, address, address.lower(), int(primary)],
    )


def remove_address(store: Store, owner_type: str, owner_id: int, address: str) -> int:
    return store.execute(
        "DELETE FROM addresses WHERE owner_type = ? AND owner_id = ? AND address_lower = ?",
        [owner_type, owner_id, address.lower()],
    )


def ensure_primary(store: Store, owner_type: str, owner_id: int) -> None:
    """Keep exactly one primary address: the oldest one when the primary was removed."""
    has_primary = store.value(
        "SELECT 1 FROM addresses WHERE owner_type = ? AND owner_id = ? AND is_primary = 1",
        [owner_type, owner_id],
    )
    if not has_primary:
        store.execute(
            """UPDATE addresses SET is_primary = 1 WHERE id = (SELECT MIN(id) FROM addresses
               WHERE owner_type = ? AND owner_id = ?)""",
            [owner_type, owner_id],
        )


def owners_of_address(store: Store, address: str, owner_type: str) -> list[int]:
    return store.column(
        """SELECT owner_id FROM addresses WHERE address_lower = ? AND owner_type = ?
           ORDER BY owner_id""",
        [address.lower(), owner_type],
    )


def users_by_addresses(store: Store, addresses: Iterable[str]) -> dict[str, int]:
    """Lower-cased address -> id of the active user owning it (lowest id wins)."""
    wanted = sorted({a.lower() for a in addresses if a})
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = store.rows(
        f"""SELECT a.address_lower, MIN(a.owner_id) AS user_id FROM addresses a
            JOIN users u ON u.id = a.owner_id
            WHERE a.owner_type = 'user' AND a.address_lower IN ({marks}) AND u.is_active = 1
            GROUP BY a.address_lower""",
        wanted,
    )
    return {r["address_lower"]: r["user_id"] for r in rows}
