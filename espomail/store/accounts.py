"""SQL for mail accounts, their fetch state, fetch runs and the fetch lease.

Accounts leave the store as ``model.MailAccount`` objects, not rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from espomail.model import FetchStatus, MailAccount
from espomail.store.db import Row, Store
from espomail.timeutil import now_iso


def _account(row: Row | None) -> MailAccount | None:
    return None if row is None else MailAccount.from_row(row)


def account_by_name(store: Store, name: str) -> MailAccount | None:
    return _account(store.row("SELECT * FROM mail_accounts WHERE name = ?", [name]))


def account_by_id(store: Store, account_id: int) -> MailAccount | None:
    return _account(store.row("SELECT * FROM mail_accounts WHERE id = ?", [account_id]))


def account_name(store: Store, account_id: int | None) -> str | None:
    if account_id is None:
        return None
    return store.value("SELECT name FROM mail_accounts WHERE id = ?", [account_id])


def system_account(store: Store, address: str) -> MailAccount | None:
    """The first active group account with SMTP whose address is ``address``."""
    return _account(
        store.row(
            """SELECT * FROM mail_accounts WHERE kind = 'group' AND address_lower = ? AND smtp_host IS NOT NULL
               AND is_active = 1 ORDER BY id LIMIT 1""",
            [address.lower()],
        )
    )


def accounts(store: Store, owner_id: int | None = None) -> list[MailAccount]:
    if owner_id is None:
        rows = store.rows("SELECT * FROM mail_accounts ORDER BY id")
    else:
        rows = store.rows("SELECT * FROM mail_accounts WHERE owner_id = ? ORDER BY id", [owner_id])
    return [MailAccount.from_row(row) for row in rows]


def accounts_by_address(store: Store, address: str) -> list[MailAccount]:
    rows = store.rows("SELECT * FROM mail_accounts WHERE address_lower = ? ORDER BY kind, id", [address.lower()])
    return [MailAccount.from_row(row) for row in rows]


def all_addresses(store: Store) -> set[str]:
    return set(store.column("SELECT address_lower FROM mail_accounts"))


def count_personal(store: Store, owner_id: int) -> int:
    return store.value("SELECT COUNT(*) FROM mail_accounts WHERE kind = 'personal' AND owner_id = ?", [owner_id])


def insert_account(store: Store, values: dict) -> int:
    stamp = now_iso()
    return store.insert("mail_accounts", {**values, "created_at": stamp, "updated_at": stamp})


def update_account(store: Store, account_id: int, values: dict) -> None:
    store.update("mail_accounts", account_id, {**values, "updated_at": now_iso()})


def delete_account(store: Store, account_id: int) -> None:
    store.execute("DELETE FROM mail_accounts WHERE id = ?", [account_id])


def oauth_configs(store: Store) -> dict[str, str]:
    """Account name -> OAuthConfig JSON of every OAuth2 account."""
    rows = store.rows("SELECT name, oauth_config FROM mail_accounts WHERE auth = 'oauth2' ORDER BY id")
    return {row["name"]: row["oauth_config"] for row in rows}


def clear_error(store: Store, account_id: int, errors: Iterable[str]) -> None:
    """Forget the account's last error when it is one of ``errors`` (after a new authorization)."""
    errors = list(errors)
    marks = ", ".join("?" for _ in errors)
    store.execute(
        f"UPDATE mail_accounts SET last_error = NULL, last_error_at = NULL WHERE id = ? AND last_error IN ({marks})",
        [account_id, *errors],
    )


def team_ids(store: Store, account_id: int) -> list[int]:
    return store.column("SELECT team_id FROM account_teams WHERE account_id = ? ORDER BY team_id", [account_id])


def set_teams(store: Store, account_id: int, ids: Iterable[int]) -> None:
    store.execute("DELETE FROM account_teams WHERE account_id = ?", [account_id])
    store.executemany("INSERT INTO account_teams (account_id, team_id) VALUES (?, ?)", [(account_id, t) for t in ids])


# -- fetch state -------------------------------------------------------------------------


def folder_state(store: Store, account_id: int, folder: str) -> Row | None:
    return store.row("SELECT * FROM fetch_state WHERE account_id = ? AND folder = ?", [account_id, folder])


def folder_states(store: Store, account_id: int) -> list[Row]:
    return store.rows("SELECT * FROM fetch_state WHERE account_id = ? ORDER BY folder", [account_id])


def save_folder_state(store: Store, account_id: int, folder: str, values: dict) -> None:
    """Insert or update the state of one folder (only the given columns change)."""
    values = {**values, "updated_at": now_iso()}
    if folder_state(store, account_id, folder) is None:
        store.insert("fetch_state", {"account_id": account_id, "folder": folder, **values})
        return
    assignments = ", ".join(f"{k} = ?" for k in values)
    store.execute(
        f"UPDATE fetch_state SET {assignments} WHERE account_id = ? AND folder = ?",
        [*values.values(), account_id, folder],
    )


def forget_state(store: Store, account_id: int) -> None:
    store.execute("DELETE FROM fetch_state WHERE account_id = ?", [account_id])


# -- runs ----------------------------------------------------------------------------------


def start_run(store: Store, account_id: int) -> int:
    return store.insert(
        "fetch_runs", {"account_id": account_id, "started_at": now_iso(), "status": FetchStatus.RUNNING}
    )


def finish_run(store: Store, run_id: int, values: dict) -> None:
    store.update("fetch_runs", run_id, {**values, "finished_at": now_iso()})


def last_run(store: Store, account_id: int) -> Row | None:
    return store.row(
        "SELECT * FROM fetch_runs WHERE account_id = ? AND status <> 'running' ORDER BY id DESC LIMIT 1",
        [account_id],
    )


def prune_runs(store: Store, account_id: int, keep: int = 200) -> None:
    store.execute(
        """DELETE FROM fetch_runs WHERE account_id = ? AND id < (SELECT MIN(id) FROM
           (SELECT id FROM fetch_runs WHERE account_id = ? ORDER BY id DESC LIMIT ?) AS kept)""",
        [account_id, account_id, keep],
    )


# -- lease (maps to SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL) ---------------------


def take_lease(store: Store, account_id: int, holder: str, expires_at: str, now: str, host: str) -> bool:
    """Claim the account unless another live holder has it. Same-host holders are dead
    when we got here: the caller already holds the account's OS file lock."""
    changed = store.execute(
        """UPDATE mail_accounts SET lease_holder = ?, lease_expires_at = ?
           WHERE id = ? AND (lease_holder IS NULL OR lease_expires_at < ? OR lease_holder LIKE ?)""",
        [holder, expires_at, account_id, now, f"{host}:%"],
    )
    return changed == 1


def release_lease(store: Store, account_id: int, holder: str) -> None:
    store.execute(
        "UPDATE mail_accounts SET lease_holder = NULL, lease_expires_at = NULL WHERE id = ? AND lease_holder = ?",
        [account_id, holder],
    )


def record_outcome(store: Store, account_id: int, error: str | None) -> None:
    if error is None:
        store.execute(
            "UPDATE mail_accounts SET last_success_at = ?, last_error = NULL WHERE id = ?",
            [now_iso(), account_id],
        )
    else:
        store.execute(
            "UPDATE mail_accounts SET last_error = ?, last_error_at = ? WHERE id = ?",
            [error, now_iso(), account_id],
        )
