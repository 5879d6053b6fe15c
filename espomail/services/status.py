"""``espomail status``: what a monitoring script needs to know about each account."""

from __future__ import annotations

from espomail import timeutil
from espomail.model import DeliveryState, MailAccount, WatchMode
from espomail.policy.access import Actor
from espomail.services.accounts import visible_accounts
from espomail.services.oauth_accounts import authorization_problem
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store import watch as watch_q
from espomail.store.db import Store


def account_status(store: Store, actor: Actor) -> list[dict]:
    result = []
    watches = _live_watches(store)
    for account in visible_accounts(store, actor):
        authorization = authorization_problem(account) if account.is_active else None
        last = accounts_q.last_run(store, account.id)
        counts = emails_q.unfinished_counts(store, account.id)
        result.append(
            {
                "name": account.name,
                "kind": account.kind,
                "active": account.is_active,
                "last_success_at": account.last_success_at,
                "last_error": account.last_error or authorization,
                "auth": account.auth,
                "authorization_error": authorization,  # OAuth2: only 'espomail account authorize' helps
                "last_error_at": account.last_error_at,
                "last_run_at": last["finished_at"] if last else None,
                "last_run_new": last["new"] if last else 0,
                "backlog": last["backlog"] if last else 0,
                "failed_emails": counts.get(DeliveryState.FAILED, 0),
                "pending_emails": counts.get(DeliveryState.PENDING, 0),
                **_watch_state(account, watches.get(account.id, {})),
            }
        )
    return result


def _live_watches(store: Store) -> dict[int, dict[str, list]]:
    """account id -> folder -> the live heartbeat rows of ``espomail watch`` processes."""
    found: dict[int, dict[str, list]] = {}
    for row in watch_q.live_watches(store, timeutil.now_iso()):
        found.setdefault(row["account_id"], {}).setdefault(row["folder"], []).append(row)
    return found


def _watch_state(account: MailAccount, folders: dict[str, list]) -> dict:
    """``watch``: idle, poll or connecting (null: no live watcher); ``watched_since``: since when
    every monitored folder is followed (null when one is not)."""
    if not folders or not account.folders:
        return {"watch": None, "watched_since": None}
    since = []
    modes = set()
    for folder in account.folders:
        rows = [r for r in folders.get(folder, []) if r["mode"] != WatchMode.CONNECTING and r["since"]]
        if not rows:
            return {"watch": WatchMode.CONNECTING.value, "watched_since": None}
        since.append(min(r["since"] for r in rows))
        modes.update(r["mode"] for r in rows)
    mode = WatchMode.IDLE if modes == {WatchMode.IDLE} else WatchMode.POLL
    return {"watch": mode.value, "watched_since": max(since)}
