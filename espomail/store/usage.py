"""SQL for safe removals: what still uses a team, user, role, mail account or folder, and the
changes that keep dependants consistent when one is removed with ``--force``.

The foreign keys do the rest (ON DELETE CASCADE / SET NULL, see migrations.py); what they
cannot express lives here: a group account whose target team or direct-assignment user goes
loses its distribution (``none``), a case whose assignee goes is New again, and a folder
leaves the folder maps (JSON) of the accounts that file into it.
"""

from __future__ import annotations

from espomail.model import NOT_ACTUAL
from espomail.store.db import Row, Store
from espomail.timeutil import now_iso

# -- teams ---------------------------------------------------------------------------------


def accounts_with_team(store: Store, team_id: int) -> list[str]:
    """Names of the group accounts whose teams include the team."""
    return store.column(
        """SELECT a.name FROM account_teams t JOIN mail_accounts a ON a.id = t.account_id
           WHERE t.team_id = ? ORDER BY a.name""",
        [team_id],
    )


def accounts_targeting_team(store: Store, team_id: int) -> list[Row]:
    """(name, distribution) of the group accounts whose new cases go to the team (their target team)."""
    return store.rows("SELECT name, distribution FROM mail_accounts WHERE target_team_id = ? ORDER BY name", [team_id])


def group_folders_of_team(store: Store, team_id: int) -> list[str]:
    return store.column(
        """SELECT f.name FROM folder_teams t JOIN folders f ON f.id = t.folder_id
           WHERE t.team_id = ? ORDER BY f.name""",
        [team_id],
    )


def emails_shared_with_team(store: Store, team_id: int) -> int:
    """How many emails the team shares (read level team); the email_teams_by_team index only."""
    return store.value("SELECT COUNT(*) FROM email_teams WHERE team_id = ?", [team_id])


def cases_shared_with_team(store: Store, team_id: int) -> int:
    return store.value("SELECT COUNT(*) FROM case_teams WHERE team_id = ?", [team_id])


def release_target_team(store: Store, team_id: int) -> None:
    """The accounts targeting the team lose it, and round-robin/least-busy (which need it)
    becomes none."""
    store.execute(
        """UPDATE mail_accounts SET target_team_id = NULL, target_position = NULL, updated_at = ?,
           distribution = CASE WHEN distribution IN ('round-robin', 'least-busy') THEN 'none' ELSE distribution END
           WHERE target_team_id = ?""",
        [now_iso(), team_id],
    )


# -- users ---------------------------------------------------------------------------------


def accounts_assigning(store: Store, user_id: int) -> list[Row]:
    """(name, distribution) of the group accounts whose assign-to user the user is."""
    return store.rows("SELECT name, distribution FROM mail_accounts WHERE assign_user_id = ? ORDER BY name", [user_id])


def open_cases_of(store: Store, user_id: int) -> int:
    """Cases assigned to the user that are not Closed, Rejected or Duplicate (cases_by_assignee)."""
    return store.value(
        f"SELECT COUNT(*) FROM cases WHERE assigned_user_id = ? AND status NOT IN ({_marks(NOT_ACTUAL)})",
        [user_id, *NOT_ACTUAL],
    )


def release_assign_user(store: Store, user_id: int) -> None:
    """The accounts assigning to the user lose them, and direct distribution becomes none."""
    store.execute(
        """UPDATE mail_accounts SET assign_user_id = NULL, updated_at = ?,
           distribution = CASE WHEN distribution = 'direct' THEN 'none' ELSE distribution END
           WHERE assign_user_id = ?""",
        [now_iso(), user_id],
    )


def unassign_cases(store: Store, user_id: int) -> int:
    """The user's cases become unassigned; an Assigned one is New again (as distribution leaves
    a case nobody got). Returns how many cases changed."""
    return store.execute(
        """UPDATE cases SET assigned_user_id = NULL, updated_at = ?,
           status = CASE WHEN status = 'Assigned' THEN 'New' ELSE status END
           WHERE assigned_user_id = ?""",
        [now_iso(), user_id],
    )


# -- mail accounts ------------------------------------------------------------------------------


def filters_of_account(store: Store, account_id: int) -> list[str]:
    return store.column("SELECT name FROM filters WHERE account_id = ? ORDER BY name, id", [account_id])


def open_cases_through(store: Store, account_id: int) -> int:
    """Open cases that came in through the account (replies to them go out with its Reply-To)."""
    return store.value(
        f"SELECT COUNT(*) FROM cases WHERE inbound_account_id = ? AND status NOT IN ({_marks(NOT_ACTUAL)})",
        [account_id, *NOT_ACTUAL],
    )


# -- folders ---------------------------------------------------------------------------------


def filters_into_folder(store: Store, folder_id: int) -> list[str]:
    """Names of the filters that move mail to the folder (removed with it: the foreign key)."""
    return store.column("SELECT name FROM filters WHERE folder_id = ? ORDER BY name, id", [folder_id])


def accounts_filing_into(store: Store, folder_id: int) -> list[Row]:
    """Accounts whose group or personal folder it is: (name, group_folder_id, personal_folder_id)."""
    return store.rows(
        """SELECT name, group_folder_id, personal_folder_id FROM mail_accounts
           WHERE group_folder_id = ? OR personal_folder_id = ? ORDER BY name""",
        [folder_id, folder_id],
    )


def emails_in_personal_folder(store: Store, owner_id: int, folder_id: int) -> int:
    return store.value(
        "SELECT COUNT(*) FROM email_users WHERE user_id = ? AND folder_id = ?",
        [owner_id, folder_id],
    )


def emails_in_group_folder(store: Store, folder_id: int) -> int:
    return store.value("SELECT COUNT(*) FROM emails WHERE group_folder_id = ?", [folder_id])


def set_folder_map(store: Store, account_id: int, folder_map: str) -> None:
    store.execute(
        "UPDATE mail_accounts SET folder_map = ?, updated_at = ? WHERE id = ?",
        [folder_map, now_iso(), account_id],
    )


def _marks(values: tuple) -> str:
    return ", ".join("?" for _ in values)
