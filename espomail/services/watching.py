"""``espomail watch``: new mail stored and cased the moment it arrives (IMAP IDLE, SPEC 14).

Threads, because imapclient blocks:
- one ``FolderWatch`` per monitored folder of each watched account: a logged-in connection
  in IDLE (RFC 2177), blocked in ``poll()`` until the server reports something, so an idle
  account costs no CPU; for a server without IDLE, no connection, a fetch every
  ``poll_interval_s``. After an error it reconnects with backoff (1, 2, 4 ... 60 s) and
  fetches what arrived meanwhile;
- ``workers`` fetch threads taking requests from a ``FetchQueue`` (one request per account
  at a time; requests for an account already queued or running are merged). A request runs
  ``fetching.fetch_account``: the very fetch of ``espomail fetch``, its per-account lock and
  lease, its cursors, store first. An account that a cron fetch holds at that moment is
  tried again a second later (the cron run may have looked at the folder before the new
  message came). One fetch takes at most ``batch_size`` messages per folder, and a backlog
  is requested again at once: a stop never waits for more than one batch;
- the main thread: every ``poll_interval_s`` it reads the accounts (one query) and starts,
  restarts or stops folder watches for accounts added, changed or removed, and renews the
  heartbeat rows that ``espomail status`` reads; an outbox thread retries unsent system mail
  on the same period.

All database access goes through one ``fetching.Writer`` (one connection, one writer).
``stop()`` (SIGTERM, SIGINT): no new fetch starts, the fetches in hand finish and commit,
the connections close, the heartbeat rows go; ``kill -9`` loses nothing either, because a
fetch commits each message with the cursor that passes it (store first).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Collection

from espomail import timeutil
from espomail.config import Settings
from espomail.errors import EspomailError, NotFound
from espomail.mail.idle import IdleFolder, supports_idle
from espomail.model import FetchStatus, MailAccount, WatchMode
from espomail.policy import access
from espomail.services import fetching, outbox
from espomail.services.fetching import AccountResult, Writer
from espomail.store import accounts as accounts_q
from espomail.store import watch as watch_q
from espomail.store.db import Store

log = logging.getLogger("espomail.watch")

LOCKED_RETRY_S = 1.0  # an account held by another fetch (cron) is asked for again this soon
MAX_BACKOFF_S = 60.0
MAX_WAIT_S = 5.0  # the main thread looks at the stop flag at least this often


@dataclasses.dataclass(frozen=True)
class Target:
    """One watched folder of one account."""

    account_id: int
    folder: str


def connection_key(account: MailAccount) -> tuple:
    """What a folder's connection depends on: a change here means a new connection."""
    return (account.host, account.port, account.security, account.insecure, account.username, account.secret_ref)


class Backoff:
    """1, 2, 4 ... ``MAX_BACKOFF_S`` seconds."""

    def __init__(self) -> None:
        self.attempt = 0

    def next(self) -> float:
        delay = min(MAX_BACKOFF_S, 2.0**self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class FetchQueue:
    """Fetch requests per account: merged while queued, one at a time per account, and
    optionally not before a given time (a retry of a locked account)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._folders: dict[int, set[str] | None] = {}  # account id -> folders (None: all)
        self._due: dict[int, float] = {}
        self._running: set[int] = set()
        self._closed = False

    def put(self, account_id: int, folders: Collection[str] | None = None, delay: float = 0.0) -> None:
        with self._cond:
            if self._closed:
                return
            if account_id in self._folders:
                merged = self._folders[account_id]
                self._folders[account_id] = None if merged is None or folders is None else merged | set(folders)
            else:
                self._folders[account_id] = None if folders is None else set(folders)
            due = time.monotonic() + delay
            self._due[account_id] = min(self._due.get(account_id, due), due)
            self._cond.notify()

    def get(self) -> tuple[int, set[str] | None] | None:
        """The next request that is due and whose account is not being fetched; None once closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                ready = [a for a in self._folders if a not in self._running and self._due[a] <= now]
                if ready:
                    account_id = min(ready, key=self._due.__getitem__)
                    self._running.add(account_id)
                    del self._due[account_id]
                    return account_id, self._folders.pop(account_id)
                waiting = [self._due[a] - now for a in self._folders if a not in self._running]
                self._cond.wait(timeout=min(waiting) if waiting else None)
            return None

    def done(self, account_id: int) -> None:
        with self._cond:
            self._running.discard(account_id)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Watcher:
    """The watch service; ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        account_names: list[str] | None = None,
        actor: access.Actor | None = None,
    ) -> None:
        self.writer = Writer(store)
        self.settings = settings
        self.names = list(account_names or [])
        self.actor = actor
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.queue = FetchQueue()
        self.watches: dict[Target, FolderWatch] = {}
        self.accounts: dict[int, MailAccount] = {}
        self.fetch_limit = max(1, min(settings.batch_size, settings.max_per_run))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fetch_errors: dict[int, str | None] = {}
        with self.writer() as store:
            self._select(store, strict=True)  # a wrong name or a refused account fails now, before anything starts

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self) -> None:
        with self.writer() as db, db.atomic():
            watch_q.drop_holder(db, self.holder)
            watch_q.drop_expired(db, timeutil.iso(timeutil.now() - dt.timedelta(days=1)))
        for number in range(self.settings.workers):
            self._spawn(self._fetch_loop, f"watch-fetch-{number + 1}")
        self._spawn(self._outbox_loop, "watch-outbox")
        try:
            self._reconcile()
            next_check = time.monotonic() + self.settings.poll_interval_s
            log.info(
                "started (%s): %d account(s), %d folder(s); accounts and outbox checked every %g s",
                self.holder,
                len(self.accounts),
                len(self.watches),
                self.settings.poll_interval_s,
            )
            while not self._stop.is_set():
                if time.monotonic() >= next_check:
                    self._periodic()
                    next_check = time.monotonic() + self.settings.poll_interval_s
                self._stop.wait(min(MAX_WAIT_S, max(0.0, next_check - time.monotonic())))
        finally:
            self._shutdown()

    def _periodic(self) -> None:
        """Accounts and heartbeats; a failure (the database busy for longer than its timeout)
        is logged and tried again next period: the folder watches go on meanwhile."""
        interval = self.settings.poll_interval_s
        try:
            self._reconcile()
            self._heartbeat()
        except EspomailError as exc:
            log.warning("reading the accounts failed: %s; trying again in %g s", exc.message, interval)
        except Exception:  # noqa: BLE001
            log.exception("reading the accounts failed; trying again in %g s", interval)

    def stop(self) -> None:
        """Ask ``run()`` to return (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _shutdown(self) -> None:
        self._stop.set()
        self.queue.close()
        for watch in self.watches.values():
            watch.stop()
        for thread in self._threads:  # the fetches in hand finish and commit
            thread.join()
        deadline = time.monotonic() + 5  # a watch blocked in a connect is left behind (a daemon thread)
        for watch in self.watches.values():
            watch.join(timeout=max(0.0, deadline - time.monotonic()))
        with self.writer() as db, db.atomic():
            watch_q.drop_holder(db, self.holder)
        log.info("stopped: %d folder watch(es) closed", len(self.watches))

    def _spawn(self, target, name: str) -> None:  # noqa: ANN001
        thread = threading.Thread(target=target, name=name)
        thread.start()
        self._threads.append(thread)

    # -- accounts -------------------------------------------------------------------------------
    def _select(self, store: Store, strict: bool = False) -> list[MailAccount]:
        """The accounts to watch now: the named ones, else all; active ones the actor manages.
        ``strict`` (at start-up): a name that matches no account is an error."""
        if self.names:
            found = [accounts_q.account_by_name(store, name) for name in self.names]
            if strict:
                for name, account in zip(self.names, found, strict=True):
                    if account is None:
                        raise NotFound(f"no mail account named '{name}'; see 'espomail account list'")
            accounts = [a for a in found if a is not None]
        else:
            accounts = accounts_q.accounts(store)
        if self.actor is not None and not self.actor.is_admin:
            explicit = strict and bool(self.names)  # later, a refused account is just not watched
            accounts = fetching._manageable(store, self.actor, accounts, explicit=explicit)  # noqa: SLF001
        return [a for a in accounts if a.is_active]

    def _reconcile(self) -> None:
        """Start, restart or stop folder watches to match the accounts as they are now."""
        with self.writer() as store:
            accounts = self._select(store)
        self.accounts = {a.id: a for a in accounts}
        wanted = {Target(a.id, folder): a for a in accounts for folder in dict.fromkeys(a.folders)}
        for target, watch in list(self.watches.items()):
            account = wanted.get(target)
            if account is None:
                self._end_watch(target, self._why_gone(target))
            elif connection_key(account) != watch.key:
                self._end_watch(target, "account settings changed; reconnecting")
            else:
                watch.account = account
        for target, account in wanted.items():
            if target not in self.watches and not self.stopping:
                watch = FolderWatch(self, account, target.folder)
                self.watches[target] = watch
                watch.start()
        if not wanted and not self.watches:
            log.debug("no active account to watch; looking again in %g s", self.settings.poll_interval_s)

    def _why_gone(self, target: Target) -> str:
        account = self.accounts.get(target.account_id)
        if account is not None:
            return "folder no longer monitored"
        with self.writer() as store:
            account = accounts_q.account_by_id(store, target.account_id)
        if account is None:
            return "account removed"
        return "account inactive" if not account.is_active else "account no longer watched"

    def _end_watch(self, target: Target, reason: str) -> None:
        watch = self.watches.pop(target)
        watch.stop()
        self.event(watch.account, target.folder, "stopped watching (%s)", reason)
        with self.writer() as store, store.atomic():
            watch_q.drop_watch(store, target.account_id, target.folder, self.holder)

    # -- heartbeats ------------------------------------------------------------------------------
    def _expiry(self, now: dt.datetime) -> str:
        return timeutil.iso(now + dt.timedelta(seconds=max(3 * self.settings.poll_interval_s, 15)))

    def mark(self, watch: FolderWatch, mode: WatchMode, since: str | None) -> None:
        """A folder watch's state, for ``espomail status`` (not once the watch was ended)."""
        now = timeutil.now()
        target = watch.target
        try:
            with self.writer() as store:
                if self.watches.get(target) is not watch:
                    return
                with store.atomic():
                    watch_q.set_watch(
                        store, target.account_id, target.folder, self.holder, mode, since, timeutil.iso(now),
                        self._expiry(now),
                    )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - e.g. the account was removed a moment ago
            log.debug("heartbeat of account %s folder %s not written: %s", target.account_id, target.folder, exc)

    def _heartbeat(self) -> None:
        now = timeutil.now()
        with self.writer() as store, store.atomic():
            watch_q.renew_watches(store, self.holder, timeutil.iso(now), self._expiry(now))

    # -- fetching --------------------------------------------------------------------------------
    def request(self, account_id: int, folder: str | None = None, delay: float = 0.0) -> None:
        self.queue.put(account_id, None if folder is None else {folder}, delay)

    def _fetch_loop(self) -> None:
        while (job := self.queue.get()) is not None:
            account_id, folders = job
            try:
                self._fetch(account_id, folders)
            except Exception:  # noqa: BLE001 - a bug in one fetch must not stop the service
                log.exception("fetching account %s failed", account_id)
            finally:
                self.queue.done(account_id)

    def _fetch(self, account_id: int, folders: set[str] | None) -> None:
        with self.writer() as store:
            account = accounts_q.account_by_id(store, account_id)
        if account is None or not account.is_active or account_id not in self.accounts:
            return
        result = fetching.fetch_account(self.writer, self.settings, account, folders, self.fetch_limit)
        if result.status == FetchStatus.LOCKED:
            log.debug(
                "account '%s' is being fetched by another run; asking again in %g s", account.name, LOCKED_RETRY_S
            )
            self.queue.put(account_id, folders, LOCKED_RETRY_S)
            return
        self._report(account, result)
        if result.status == FetchStatus.ERROR:
            self.queue.put(account_id, folders, self.settings.poll_interval_s)
        elif result.backlog:
            self.queue.put(account_id, folders)

    def _report(self, account: MailAccount, result: AccountResult) -> None:
        if result.status == FetchStatus.ERROR:
            if self._fetch_errors.get(account.id) != result.error:
                self.event(account, None, "error: fetch failed: %s; trying again in %g s", result.error,
                           self.settings.poll_interval_s, level=logging.WARNING)  # fmt: skip
            self._fetch_errors[account.id] = result.error
            return
        if self._fetch_errors.pop(account.id, None):
            self.event(account, None, "fetch works again")
        if result.new or result.duplicates or result.filtered or result.failed:
            self.event(
                account,
                None,
                "new mail: %d new, %d duplicate(s), %d filtered, %d failed, %d case(s) created, %d auto-reply(ies)%s",
                result.new,
                result.duplicates,
                result.filtered,
                result.failed,
                result.cases_created,
                result.auto_replies,
                f", {result.backlog} more to fetch" if result.backlog else "",
            )

    def _outbox_loop(self) -> None:
        while True:
            try:
                outbox.retry_failed(self.writer.store, self.settings, self.writer.guard)
            except Exception:  # noqa: BLE001 - the outbox is tried again next period
                log.exception("retrying the outbox failed")
            if self._stop.wait(self.settings.poll_interval_s):
                return

    # -- the log ---------------------------------------------------------------------------------
    def event(
        self, account: MailAccount, folder: str | None, text: str, *args: object, level: int = logging.INFO
    ) -> None:
        """One line per account event, to the log and (through the CLI's handler) stderr."""
        where = f"account '{account.name}'" + (f" folder '{folder}'" if folder is not None else "")
        log.log(level, where + ": " + text, *args)


class FolderWatch(threading.Thread):
    """One folder of one account: IDLE on a connection of its own, or polling."""

    def __init__(self, hub: Watcher, account: MailAccount, folder: str) -> None:
        super().__init__(name=f"watch-{account.id}-{folder}"[:60], daemon=True)
        self.hub, self.account, self.folder = hub, account, folder
        self.target = Target(account.id, folder)
        self.key = connection_key(account)
        self._stopping = threading.Event()
        self._idle: IdleFolder | None = None
        self._last_error: tuple[str, float] | None = None

    def stop(self) -> None:
        self._stopping.set()
        idle = self._idle
        if idle is not None:
            idle.interrupt()

    def run(self) -> None:
        backoff = Backoff()
        connected_before = False
        self.hub.mark(self, WatchMode.CONNECTING, None)
        while not self._stopping.is_set():
            try:
                if not self._watch_once(connected_before, backoff):
                    self._poll()  # the server has no IDLE
                    return
            except EspomailError as exc:
                if self._stopping.is_set():
                    return
                self._failed(exc.message, backoff)
            except Exception as exc:  # noqa: BLE001 - a bug must not end the watch of this folder
                if self._stopping.is_set():
                    return
                log.exception("watching account %s folder %s failed", self.account.name, self.folder)
                self._failed(f"unexpected {type(exc).__name__}: {exc}", backoff)
            connected_before = True

    def _watch_once(self, reconnected: bool, backoff: Backoff) -> bool:
        """Connect and IDLE until the connection ends (an error) or a stop; False when the
        server does not offer IDLE."""
        from espomail.services.accounts import open_imap

        session = open_imap(self.account, self.hub.settings)
        if not supports_idle(session):
            session.close()
            return False
        idle = IdleFolder(session, self.folder)
        self._idle = idle
        try:
            if not self._stopping.is_set():
                self._idle_loop(idle, reconnected, backoff)
        finally:
            self._idle = None
            _close_quietly(session)
        return True

    def _idle_loop(self, idle: IdleFolder, reconnected: bool, backoff: Backoff) -> None:
        where = f"{idle.session.host}:{idle.session.port}"
        self.hub.event(self.account, self.folder, "%s to %s", "reconnected" if reconnected else "connected", where)
        idle.start()
        self.hub.mark(self, WatchMode.IDLE, timeutil.now_iso())
        self.hub.event(self.account, self.folder, "idle (IMAP IDLE; renewed every %d min)", idle.renew_s // 60)
        backoff.reset()
        self._last_error = None
        self.hub.request(self.account.id, self.folder)  # what came while nobody was listening
        while not self._stopping.is_set():
            changes = idle.wait(idle.renew_s)
            if changes.new_mail or changes.renewed:
                self.hub.request(self.account.id, self.folder)

    def _poll(self) -> None:
        interval = self.hub.settings.poll_interval_s
        self.hub.mark(self, WatchMode.POLL, timeutil.now_iso())
        self.hub.event(self.account, self.folder, "connected; the server has no IDLE: polling every %g s", interval)
        while not self._stopping.is_set():
            self.hub.request(self.account.id, self.folder)
            self._stopping.wait(interval)

    def _failed(self, error: str, backoff: Backoff) -> None:
        """Log the error (at most once per change once the backoff is at its longest), wait, retry."""
        delay = backoff.next()
        last = self._last_error
        if last is None or last[0] != error or last[1] < MAX_BACKOFF_S:
            self.hub.event(self.account, self.folder, "error: %s; reconnecting in %g s", error, delay,
                           level=logging.WARNING)  # fmt: skip
        self._last_error = (error, delay)
        self.hub.mark(self, WatchMode.CONNECTING, None)
        self._stopping.wait(delay)


def _close_quietly(session) -> None:  # noqa: ANN001 - an ImapSession
    """Close without LOGOUT: a connection in IDLE would take LOGOUT as a protocol error."""
    try:
        session.client.shutdown()
    except Exception:  # noqa: BLE001 - already closed
        pass
