"""``espomail status``: what a monitoring script needs to know about each account (SPEC 11).

An account has a problem (and ``status`` exits 1) when its last fetch failed, when it was
not fetched successfully for longer than ``stale_after_min``, when its last fetch run
crashed (its process ended without finishing it), or when system mail it sends is stuck
(Failed with no tries left, or unsent for longer than ``OUTBOX_OVERDUE``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket

from espomail import timeutil
from espomail.config import Settings
from espomail.model import DeliveryState, FetchStatus, MailAccount, WatchMode
from espomail.policy.access import Actor
from espomail.services.accounts import visible_accounts
from espomail.services.oauth_accounts import authorization_problem
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store import health as health_q
from espomail.store import watch as watch_q
from espomail.store.db import Row, Store

OUTBOX_OVERDUE = dt.timedelta(hours=1)  # unsent system mail untouched this long is stuck
CRASH_WINDOW = dt.timedelta(hours=24)  # crashed_runs counts the runs that crashed in this window


@dataclasses.dataclass
class Health:
    accounts: list[dict]
    unattributed_stuck: int = 0  # stuck system mail of no (or a deleted) account; admins only

    @property
    def failing(self) -> bool:
        return self.unattributed_stuck > 0 or any(row["problems"] for row in self.accounts)


def health(store: Store, actor: Actor, settings: Settings) -> Health:
    now = timeutil.now()
    overview = health_q.account_overview(store)
    stuck = health_q.stuck_outbox(store, settings.send_retries, timeutil.iso(now - OUTBOX_OVERDUE))
    watches = _live_watches(store)
    rows = [
        _account_row(store, settings, account, overview[account.id], stuck, now, watches.get(account.id, {}))
        for account in visible_accounts(store, actor)
    ]
    return Health(rows, stuck.get(None, 0) if actor.is_admin else 0)


def account_status(store: Store, actor: Actor, settings: Settings) -> list[dict]:
    return health(store, actor, settings).accounts


def _account_row(
    store: Store,
    settings: Settings,
    account: MailAccount,
    info: Row,
    stuck: dict,
    now: dt.datetime,
    watches: dict[str, list],
) -> dict:
    authorization = authorization_problem(account) if account.is_active else None
    last = accounts_q.last_run(store, account.id)
    counts = emails_q.unfinished_counts(store, account.id)
    crashes, last_crash, crashed_now = _crashes(store, account.id, info, now)
    stale = account.is_active and _stale(account.last_success_at or info["created_at"], settings, now)
    row = {
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
        "stale": stale,
        "failures": info["failures"] or 0,
        "next_attempt_at": info["next_attempt_at"] if account.last_error else None,
        "crashed_runs": crashes,
        "last_crash_at": last_crash,
        "outbox_stuck": stuck.get(account.id, 0),
        **_watch_state(account, watches),
    }
    row["problems"] = _problems(row, settings, crashed_now)
    row["healthy"] = not row["problems"]
    return row


def _problems(row: dict, settings: Settings, crashed_now: bool) -> list[str]:
    problems = []
    if row["active"]:
        if row["last_error"]:
            problems.append(f"last fetch failed: {row['last_error']}")
        if row["stale"]:
            since = row["last_success_at"] or "never"
            problems.append(
                f"not fetched successfully for over {settings.stale_after_min} min (last success: {since}); "
                "is 'espomail fetch' in the crontab?"
            )
        if crashed_now:
            problems.append(f"the last fetch run crashed (started {row['last_crash_at']}); see the log")
    if row["outbox_stuck"]:
        problems.append(
            f"{row['outbox_stuck']} outgoing system mail stuck (Failed with no tries left, or unsent for over an "
            "hour); see 'espomail email list --folder all' and 'espomail email resend ID'"
        )
    return problems


def _stale(since: str | None, settings: Settings, now: dt.datetime) -> bool:
    if not since:
        return False
    return timeutil.parse_iso(since) < now - dt.timedelta(minutes=settings.stale_after_min)


def _crashes(store: Store, account_id: int, info: Row, now: dt.datetime) -> tuple[int, str | None, bool]:
    """(runs crashed in the last 24 h, when the last one started, whether the newest run crashed).

    A run still ``running`` whose fetch is gone counts too: the next fetch of the account
    will mark it crashed, but until then it is the newest run."""
    count, last = health_q.crashes_since(store, account_id, timeutil.iso(now - CRASH_WINDOW))
    latest = health_q.latest_run(store, account_id)
    if latest is None:
        return count, last, False
    if latest["status"] == FetchStatus.RUNNING and not _holder_alive(info, now):
        return count + 1, max(filter(None, [last, latest["started_at"]])), True
    return count, last, latest["status"] == health_q.CRASHED


def _holder_alive(info: Row, now: dt.datetime) -> bool:
    """Is the fetch holding the account's lease still running? On this host: its process
    exists and is espomail; on another host: its lease has not expired."""
    holder, expires = info["lease_holder"], info["lease_expires_at"]
    if not holder:
        return False
    host, _, rest = holder.partition(":")  # HOST:PID, then :TOKEN (and :pgBACKEND on PostgreSQL)
    pid = rest.partition(":")[0]
    if host != socket.gethostname():
        return bool(expires and timeutil.parse_iso(expires) > now)
    return pid.isdecimal() and len(pid) < 10 and _is_espomail(int(pid))


def _is_espomail(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"espomail" in handle.read()
    except OSError:
        return True  # no /proc: the process exists, believe it


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
