"""SQL for mail accounts, their fetch state, fetch runs and the fetch lease.

Accounts leave the store as ``model.MailAccount`` objects, not rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from espomail import timeutil
from espomail.errors import StoreError
from espomail.model import FetchStatus, MailAccount
from espomail.store.db import Row, Store, values_by_id
from espomail.timeutil import now_iso


def _account(row: Row | None) -> MailAccount | None:
    return None if row is None else MailAccount.from_row(row)


def account_by_name(store: Store, name: str) -> MailAccount | None:
    return _account(store.row("SELECT * FROM mail_accounts WHERE name = ?", [name]))


def account_by_id(store: Store, account_id: int) -> MailAccount | None:
    return _account(store.row("SELECT * FROM mail_accounts WHERE id = ?", [account_id]))


def account_names(store: Store, account_ids: Iterable[int | None]) -> dict[int, str]:
    return values_by_id(store, "mail_accounts", "name", account_ids)


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
    """Insert or update the state of one folder (only the given columns change).

    When this process holds the account's lease (``hold``), the same transaction renews it,
    or raises LeaseLost when another host took the account over: a host that was stalled
    past its lease never commits a cursor (nor the messages that go with it) again."""
    _check_lease(store, account_id)
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


# -- leases: which fetch holds an account ------------------------------------------------------
#
# SQLite (one host): the caller holds the account's OS file lock, so a lease held by this
# host is stale and is taken over at once; expiry is this host's clock.
# PostgreSQL (several hosts): the account row is claimed with SELECT ... FOR UPDATE SKIP
# LOCKED; its lease is free when it has no holder, when it expired by the database's clock,
# or when the holder's database connection is gone (a killed process): the stored holder
# ends with ":pg<backend pid>" of the connection that claimed it.

_PG_NOW = """to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
_PG_EXPIRES = """to_char((now() + ? * interval '1 second') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


class LeaseLost(StoreError):
    """Another fetch host took the account over: this host's lease had expired (exit 1)."""

    code = "lease_lost"


def lease_holder(store: Store, process_id: str) -> str:
    """The holder this process writes in the leases it takes through ``store``."""
    return f"{process_id}:pg{store.backend_pid}" if store.engine == "postgresql" else process_id


def take_lease(store: Store, account_id: int, holder: str, lease_s: int, host: str) -> bool:
    """Claim the account unless another live holder has it (the caller holds the transaction).
    ``holder`` comes from ``lease_holder``."""
    if store.engine == "postgresql":
        row = store.row(
            f"""SELECT lease_holder, lease_expires_at < {_PG_NOW} AS expired,
                NOT EXISTS (SELECT 1 FROM pg_stat_activity
                    WHERE pid = CAST(substring(lease_holder from ':pg([0-9]+)$') AS INTEGER)) AS gone
                FROM mail_accounts WHERE id = ? FOR UPDATE SKIP LOCKED""",
            [account_id],
        )
        if row is None:  # another host is claiming it or storing its mail right now
            return False
        if row["lease_holder"] not in (None, holder) and not row["expired"] and not row["gone"]:
            return False
        store.execute(
            f"UPDATE mail_accounts SET lease_holder = ?, lease_expires_at = {_PG_EXPIRES} WHERE id = ?",
            [holder, lease_s, account_id],
        )
        return True
    now = timeutil.now()
    changed = store.execute(
        """UPDATE mail_accounts SET lease_holder = ?, lease_expires_at = ?
           WHERE id = ? AND (lease_holder IS NULL OR lease_expires_at < ? OR lease_holder LIKE ?)""",
        [holder, _expiry(now, lease_s), account_id, timeutil.iso(now), f"{host}:%"],
    )
    return changed == 1


def renew_lease(store: Store, account_id: int, holder: str, lease_s: int) -> bool:
    """Push the expiry ``lease_s`` ahead; False when the lease is no longer ours."""
    if store.engine == "postgresql":
        sql = f"UPDATE mail_accounts SET lease_expires_at = {_PG_EXPIRES} WHERE id = ? AND lease_holder = ?"
        return store.execute(sql, [lease_s, account_id, holder]) == 1
    return (
        store.execute(
            "UPDATE mail_accounts SET lease_expires_at = ? WHERE id = ? AND lease_holder = ?",
            [_expiry(timeutil.now(), lease_s), account_id, holder],
        )
        == 1
    )


def release_lease(store: Store, account_id: int, holder: str) -> None:
    store.execute(
        "UPDATE mail_accounts SET lease_holder = NULL, lease_expires_at = NULL WHERE id = ? AND lease_holder = ?",
        [account_id, holder],
    )


def hold(store: Store, account_id: int, holder: str, lease_s: int) -> None:
    """Remember that this process holds the account's lease: every cursor it commits for the
    account renews it, or fails when it was lost (``save_folder_state``)."""
    store.leases[account_id] = (holder, lease_s)


def unhold(store: Store, account_id: int) -> None:
    store.leases.pop(account_id, None)


def _expiry(now, lease_s: int) -> str:  # noqa: ANN001 - an aware datetime
    return timeutil.iso(now + dt.timedelta(seconds=lease_s))


def _check_lease(store: Store, account_id: int) -> None:
    held = store.leases.get(account_id)
    if held is None:
        return
    holder, lease_s = held
    if not renew_lease(store, account_id, holder, lease_s):
        raise LeaseLost(
            f"another fetch host took this account over (this run's lease of {lease_s} s ran out); "
            "the messages of this batch were not stored here and that host fetches them"
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
