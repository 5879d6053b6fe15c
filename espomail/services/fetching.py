"""``espomail fetch``: every active account, concurrently, store first, never lose a message.

Per account: take its lock; log in; for each monitored folder look at STATUS (one round
trip: an unchanged folder costs nothing more), find the candidate UIDs (above the cursor;
by date on the first run or after a UIDVALIDITY change), download them in pipelined
batches on a reader thread, and for each batch commit the raw messages together with the
advanced cursor, then process them. Accounts run on ``workers`` threads; all database
work goes through one lock (one writer).

Isolation (SPEC 11): a message that cannot be stored as parsed is stored as a stub and
fails alone; a folder's failure is recorded and the other folders go on; an account's
failure (whatever raised it) is recorded on the account and the others go on. A failing
account is retried with backoff (1, 2, 4 ... 60 minutes; naming it forces a try), and its
error is announced once per change, so that cron does not mail it every minute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor

from espomail import timeutil
from espomail.config import Settings
from espomail.errors import EspomailError, NotFound, StoreError
from espomail.failures import MachineError, describe, translate
from espomail.mail import msgid
from espomail.mail.imap import FolderStatus, ImapSession, internaldate
from espomail.mail.limits import ParseLimits
from espomail.mail.parse import ParsedEmail
from espomail.model import FetchStatus, MailAccount
from espomail.policy import access
from espomail.services import outbox, preparing
from espomail.services.ingest import (
    COUNTS,
    Incoming,
    Processed,
    Stored,
    process,
    retry_unfinished,
    store_messages,
)
from espomail.services.locks import AccountLock
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store import engine
from espomail.store import health as health_q
from espomail.store.db import Row, Store

log = logging.getLogger("espomail.fetch")
MAX_BATCH_BYTES = 32 * 1024 * 1024  # memory is bounded by a few batches, whatever the mailbox

MAX_IMAP_NUMBER = 2**32 - 1  # UIDs and UIDVALIDITY are 32-bit (RFC 3501); a server sending more is broken
MAX_BACKOFF_MIN = 60
BACKOFF_SLACK_S = 5  # a cron start a little early still counts as "one minute later"

Progress = Callable[[str, int, int], None]  # (account, done, total)

# The columns of a fetch_runs row that an AccountResult fills.
RUN_COLUMNS = ("status", "new", "duplicates", "filtered", "failed", "cases_created", "auto_replies", "backlog", "error")


@dataclasses.dataclass
class AccountResult:
    name: str
    status: FetchStatus = FetchStatus.OK
    new: int = 0
    duplicates: int = 0
    filtered: int = 0
    failed: int = 0
    cases_created: int = 0
    auto_replies: int = 0
    auto_replies_failed: int = 0
    backlog: int = 0
    error: str | None = None
    failures: int = 0  # fetches of this account that failed in a row (this one included)
    next_attempt_at: str | None = None  # when failing: the next automatic attempt
    announce: bool = False  # a new error (or one asked for): print it; a repeated one is not

    def add(self, processed: Processed) -> None:
        for field in COUNTS:
            setattr(self, field, getattr(self, field) + getattr(processed, field))

    @property
    def failing(self) -> bool:
        """Failed now, or skipped while backing off after failures."""
        return self.status == FetchStatus.ERROR or (self.status == FetchStatus.SKIPPED and self.failures > 0)

    def run_values(self) -> dict:
        return {column: getattr(self, column) for column in RUN_COLUMNS}

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        del data["announce"]
        return data


@dataclasses.dataclass
class Summary:
    accounts: list[AccountResult]
    retried: Processed

    errors: list[str] = dataclasses.field(default_factory=list)  # failures outside any account

    @property
    def failed_accounts(self) -> list[AccountResult]:
        return [a for a in self.accounts if a.failing]

    def as_dict(self) -> dict:
        return {
            "accounts": [a.as_dict() for a in self.accounts],
            "new": sum(a.new for a in self.accounts) + self.retried.new,
            "duplicates": sum(a.duplicates for a in self.accounts) + self.retried.duplicates,
            "failed": sum(a.failed for a in self.accounts) + self.retried.failed,
            "retried": self.retried.new + self.retried.duplicates + self.retried.filtered,
            "errors": list(self.errors),
        }


class Writer:
    """The single database writer: every store access of every fetch thread holds it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Store]:
        with self._lock:
            yield self.store

    def guard(self) -> contextlib.AbstractContextManager:
        return self._lock


def fetch(
    store: Store,
    settings: Settings,
    account_names: list[str] | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    after_batch: Callable[[Processed], None] | None = None,
    actor: access.Actor | None = None,
) -> Summary:
    """Fetch the named accounts (default: every active one the actor may manage)."""
    accounts = _select_accounts(store, account_names)
    if actor is not None and not actor.is_admin:
        accounts = manageable(store, actor, accounts, explicit=bool(account_names))
    writer = Writer(store)
    retried, errors = Processed(), []
    if not dry_run:
        retried = _isolated(errors, "retrying unfinished imports", retry_unfinished, store, settings) or retried
        _isolated(errors, "sending queued mail", retried.send_queued, store, settings)
        _isolated(errors, "retrying failed outgoing mail", outbox.retry_failed, store, settings)
    results: list[AccountResult] = []
    runnable = []
    for account in accounts:
        if not account.is_active:
            results.append(AccountResult(account.name, status=FetchStatus.SKIPPED, error="inactive"))
        elif not dry_run and not account_names and (waiting := _backing_off(store, account)) is not None:
            results.append(waiting)
        else:
            runnable.append(account)
    job = _AccountFetch.factory(writer, settings, limit, dry_run, progress, after_batch, bool(account_names))
    if len(runnable) <= 1:
        results.extend(job(a) for a in runnable)
    else:
        with ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="fetch") as pool:
            results.extend(pool.map(job, runnable))
    order = {a.name: i for i, a in enumerate(accounts)}
    results.sort(key=lambda r: order[r.name])
    return Summary(results, retried, errors)


def _isolated(errors: list[str], what: str, func: Callable, store: Store, *args: object) -> object:
    """Run a step of the run that concerns no single account: its failure is logged and
    reported, and the accounts are fetched all the same."""
    try:
        return func(store, *args)
    except Exception as exc:  # noqa: BLE001 - nothing may stop the accounts' fetch
        reason = describe(exc, store.path)
        log.error("%s failed: %s", what, reason, exc_info=not _expected(exc))
        errors.append(f"{what} failed: {reason}")
        return None


def _backing_off(store: Store, account: MailAccount) -> AccountResult | None:
    """A failing account whose next automatic attempt is not due: skipped this run."""
    health = health_q.account_health(store, account.id)
    if health is None or not health["next_attempt_at"] or health["next_attempt_at"] <= timeutil.now_iso():
        return None
    log.debug(
        "account %s: backing off after %d failure(s); next attempt at %s",
        account.name,
        health["failures"],
        health["next_attempt_at"],
    )
    return AccountResult(
        account.name,
        status=FetchStatus.SKIPPED,
        error=account.last_error,
        failures=health["failures"],
        next_attempt_at=health["next_attempt_at"],
    )


def backoff_minutes(failures: int) -> int:
    """Minutes to wait after ``failures`` failed fetches in a row: 1, 2, 4 ... 60."""
    return min(MAX_BACKOFF_MIN, 2 ** min(max(failures, 1) - 1, 6))


def fetch_account(
    writer: Writer,
    settings: Settings,
    account: MailAccount,
    folders: Collection[str] | None = None,
    limit: int | None = None,
) -> AccountResult:
    """Fetch one account now (only ``folders`` of it when given) with the lock, cursors and
    pipeline of ``fetch``: ``espomail watch`` calls it when a folder reports new mail, so
    watch and cron fetches never import a message twice. LOCKED when another run has it."""
    if not account.is_active:
        return AccountResult(account.name, status=FetchStatus.SKIPPED, error="inactive")
    if folders is not None:
        account = dataclasses.replace(account, folders=tuple(f for f in account.folders if f in folders))
    return _AccountFetch(writer, settings, limit, False, None, None, False, account).run_isolated()


def manageable(store: Store, actor: access.Actor, accounts: list[MailAccount], explicit: bool) -> list[MailAccount]:
    """A user fetches only accounts they manage (their own personal ones)."""
    from espomail.services.accounts import account_facts

    allowed = []
    for account in accounts:
        facts = account_facts(store, account)
        if access.allowed(actor, "account.manage", facts):
            allowed.append(account)
        elif explicit:
            access.require(actor, "account.manage", facts, f"fetch mail account '{account.name}'")
    return allowed


def _select_accounts(store: Store, names: list[str] | None) -> list[MailAccount]:
    if not names:
        return accounts_q.accounts(store)
    found = []
    for name in names:
        account = accounts_q.account_by_name(store, name)
        if account is None:
            raise NotFound(f"no mail account named '{name}'; see 'espomail account list'")
        found.append(account)
    return found


class _AccountFetch:
    """Fetch one account: lock, log in, each folder, record the outcome."""

    def __init__(self, writer, settings, limit, dry_run, progress, after_batch, explicit, account) -> None:  # noqa: ANN001
        self.writer, self.settings, self.account = writer, settings, account
        self.limit = settings.max_per_run if limit is None else limit
        self.dry_run, self.progress, self.after_batch = dry_run, progress, after_batch
        self.explicit = explicit  # named with --account: its error is always announced
        self.result = AccountResult(account.name)

    @classmethod
    def factory(cls, *args) -> Callable[[MailAccount], AccountResult]:  # noqa: ANN002
        return lambda account: cls(*args, account).run_isolated()

    def run_isolated(self) -> AccountResult:
        """``run``, and whatever it raises (the store full or locked ...) is this account's error."""
        try:
            return self.run()
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the others
            reason = describe(exc, self.writer.store.path)
            log.error("account %s: %s", self.account.name, reason, exc_info=not _expected(exc))
            self.result.status, self.result.error, self.result.announce = FetchStatus.ERROR, reason, True
            return self.result

    def run(self) -> AccountResult:
        lock = AccountLock(self.settings.data_dir, self.account.id, self.settings.lease_s)
        with self.writer() as store:
            if not lock.acquire(store):
                self.result.status = FetchStatus.LOCKED
                log.info("account %s is being fetched by another run; skipped", self.account.name)
                return self.result
        try:
            self._run_locked()
        finally:
            with self.writer() as store:
                lock.release(store)
        return self.result

    def _run_locked(self) -> None:
        started = time.monotonic()
        run_id = None
        if not self.dry_run:
            with self.writer() as store:  # its own transaction: it may wait for a dying host's last one
                dropped = store.raw.drop_abandoned(self.account.id)  # we hold the lease: they are dead
            if dropped:
                log.info("account %s: deleted %d raw sources of batches never stored", self.account.name, dropped)
            with self.writer() as store, store.atomic():
                crashed = health_q.close_crashed_runs(store, self.account.id)  # we hold the lease: they are dead
                run_id = accounts_q.start_run(store, self.account.id)
            if crashed:
                log.warning(
                    "account %s: %d earlier run(s) ended without finishing (crashed)", self.account.name, crashed
                )
        failure = self._attempt()
        error = describe(failure, self.writer.store.path) if failure else None
        if error:
            self.result.status, self.result.error = FetchStatus.ERROR, error
            log.error("account %s: %s", self.account.name, error)
        # The machine (a full disk, a locked store, a database server gone) is not the
        # account's fault: no backoff, the next run tries again as soon as it is fixed. An
        # account another host took over is that host's now: only this run's log says so.
        backoff = not isinstance(translate(failure, self.writer.store.path), MachineError | StoreError)
        if run_id is not None:
            with self.writer() as store, store.atomic():
                if isinstance(failure, accounts_q.LeaseLost):
                    accounts_q.finish_run(store, run_id, self.result.run_values())
                else:
                    self._record(store, run_id, error, backoff)
            self._log_counts(time.monotonic() - started)

    def _attempt(self) -> Exception | None:
        """Retry this account's unfinished imports, then fetch its folders; what failed, if anything."""
        try:
            if not self.dry_run:
                with self.writer() as store, store.atomic():
                    retried = retry_unfinished(store, self.settings, [self.account.id])
                retried.send_queued(self.writer.store, self.settings, self.writer.guard)
                self.result.add(retried)
            self._fetch_folders()
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the others
            if not _expected(exc):
                log.exception("fetching account %s failed", self.account.name)
            return exc
        return None

    def _record(self, store: Store, run_id: int, error: str | None, backoff: bool) -> None:
        """The outcome on the account (last success or error, backoff) and the run log."""
        accounts_q.record_outcome(store, self.account.id, error)
        if error is None:
            health_q.record_success(store, self.account.id)
        else:
            health = health_q.account_health(store, self.account.id)
            failures = (health["failures"] if health else 0) + 1
            shown = health["error_shown"] if health else None
            wait = dt.timedelta(minutes=backoff_minutes(failures), seconds=-BACKOFF_SLACK_S)
            next_attempt = timeutil.iso(timeutil.now() + wait) if backoff else None
            health_q.record_failure(store, self.account.id, failures, next_attempt, error)
            self.result.failures, self.result.next_attempt_at = failures, next_attempt
            self.result.announce = self.explicit or error != shown
        accounts_q.finish_run(store, run_id, self.result.run_values())
        if run_id % 50 == 0:  # keep the run log short without a DELETE on every run
            accounts_q.prune_runs(store, self.account.id)

    def _log_counts(self, seconds: float) -> None:
        r = self.result
        log.info(
            "account %s: %s, %d new, %d duplicates, %d filtered, %d failed, %d cases, %d auto-replies, "
            "backlog %d (%.1f s)",
            r.name,
            r.status,
            r.new,
            r.duplicates,
            r.filtered,
            r.failed,
            r.cases_created,
            r.auto_replies,
            r.backlog,
            seconds,
        )

    def _fetch_folders(self) -> None:
        """Each folder alone: one that fails is recorded and the next one is fetched."""
        from espomail.services.accounts import open_imap

        account = self.account
        failed: list[tuple[str, str]] = []
        with open_imap(account, self.settings) as session:
            for folder in account.folders:
                try:
                    _FolderFetch(self, session, folder).run()
                except Exception as exc:  # noqa: BLE001 - the other folders go on
                    if isinstance(translate(exc), MachineError | StoreError):
                        # the disk, the store, or another host that took the account over: no
                        # other folder would do better, and none of it is the account's fault
                        raise
                    if not _expected(exc):
                        log.exception("account %s folder %s failed", account.name, folder)
                    reason = describe(exc, self.writer.store.path)
                    log.warning("account %s folder %s: %s", account.name, folder, reason)
                    failed.append((folder, reason))
        if failed:
            if len(account.folders) == 1:
                raise _FolderFailed(failed[0][1])
            raise _FolderFailed("; ".join(f"folder '{folder}': {reason}" for folder, reason in failed))


class _FolderFailed(EspomailError):
    """One or more folders of an account failed (each already logged)."""


def _expected(exc: BaseException) -> bool:
    """A failure with a known cause (no traceback in the log): ours, the network, the disk, the store."""
    return isinstance(exc, EspomailError | OSError) or engine.is_engine_failure(exc)


class _FolderFetch:
    """One monitored folder of one account."""

    def __init__(self, owner: _AccountFetch, session: ImapSession, folder: str) -> None:
        self.owner, self.session, self.folder = owner, session, folder
        self.account = owner.account
        self.writer = owner.writer
        self.settings = owner.settings

    def run(self) -> None:
        status = _checked(self.session.status(self.folder))
        with self.writer() as store:
            state = accounts_q.folder_state(store, self.account.id, self.folder)
        if _unchanged(state, status):
            log.debug("account %s folder %s: unchanged (UIDNEXT %s)", self.account.name, self.folder, status.uidnext)
            return
        selected = _checked(self.session.select(self.folder, readonly=not self.account.mark_seen))
        uids, mode = self._candidates(state, selected)
        uids = [uid for uid in uids if 0 < uid <= MAX_IMAP_NUMBER]
        if mode != "incremental" and uids and self._store_has_mail():
            uids = self._skip_known(uids)
        limit = self.owner.limit
        backlog = max(0, len(uids) - limit)
        uids = uids[:limit]
        self.owner.result.backlog += backlog
        log.debug(
            "account %s folder %s: %d to fetch (%s), %d left for later runs",
            self.account.name,
            self.folder,
            len(uids),
            mode,
            backlog,
        )
        if self.owner.dry_run:
            self.owner.result.new += len(uids)
            return
        self._download_and_import(uids)
        with self.writer() as store, store.atomic():
            values = {"uidvalidity": selected.uidvalidity, "messages": selected.messages, "by_date": 0}
            # Remember UIDNEXT only when everything below it was taken: then an unchanged
            # STATUS next time proves there is nothing to do.
            values["uidnext"] = selected.uidnext if backlog == 0 else None
            accounts_q.save_folder_state(store, self.account.id, self.folder, values)

    # -- which UIDs -----------------------------------------------------------------------
    def _candidates(self, state: Row | None, selected: FolderStatus) -> tuple[list[int], str]:
        if state is None or state["uidvalidity"] is None:
            since = timeutil.parse_date(self.account.fetch_since or timeutil.now().date().isoformat())
            return self.session.uids_since(since), "first"
        if state["uidvalidity"] != selected.uidvalidity:
            log.warning(
                "account %s folder %s: UIDVALIDITY changed from %s to %s; fetching by date, "
                "known messages are recognised and skipped",
                self.account.name,
                self.folder,
                state["uidvalidity"],
                selected.uidvalidity,
            )
            with self.writer() as store, store.atomic():
                accounts_q.save_folder_state(
                    store,
                    self.account.id,
                    self.folder,
                    {"uidvalidity": selected.uidvalidity, "last_uid": 0, "by_date": 1, "uidnext": None},
                )
            return self.session.uids_since(self._resume_day(state)), "by-date"
        if state["by_date"]:
            return self.session.uids_since(self._resume_day(state)), "by-date"
        return self.session.uids_above(state["last_uid"]), "incremental"

    def _resume_day(self, state: Row) -> dt.date:
        if state["last_date"]:
            return (timeutil.parse_iso(state["last_date"]) - dt.timedelta(days=1)).date()
        return timeutil.parse_date(self.account.fetch_since or "1970-01-01")

    def _store_has_mail(self) -> bool:
        with self.writer() as store:
            return emails_q.has_emails(store)

    def _skip_known(self, uids: list[int]) -> list[int]:
        """On a first or by-date run, do not download what this account brought already.
        A message known only from other accounts is downloaded: a Message-ID alone never
        shares a stored email (docs/access.md, "De-duplication")."""
        headers = self.session.message_ids(uids)
        ids = {uid: msgid.normalize(_header_value(raw)) for uid, raw in headers.items()}
        with self.writer() as store:
            known = emails_q.ids_by_message_ids(store, [m for m in ids.values() if m])
            mine = emails_q.delivered_to_account(store, list(known.values()), self.account.id)
        return [uid for uid in uids if known.get(ids.get(uid) or "") not in mine]

    # -- downloading and importing ---------------------------------------------------------------
    def _download_and_import(self, uids: list[int]) -> None:
        if not uids:
            return
        sizes = self.session.sizes(uids)
        max_bytes = int(self.settings.max_message_size_mb * 1024 * 1024)
        big = {uid for uid, (size, _) in sizes.items() if size > max_bytes}
        batches = list(_batches(uids, sizes, self.settings.batch_size, MAX_BATCH_BYTES, big))
        done = 0
        self._show_progress(done, len(uids))
        use_worker = len(uids) >= preparing.WORKER_THRESHOLD
        raw = self.writer.store.raw
        # Uploading ahead (PostgreSQL) pays for its connection only when a batch is stored meanwhile.
        uploader = raw.uploader(self.account.id) if len(batches) > 1 else None
        preparer = preparing.Preparer(raw.directory, use_worker, ParseLimits.from_settings(self.settings), uploader)
        try:
            for batch, incoming in _prefetch(self.session, batches, big, not self.account.mark_seen, preparer):
                self._import_batch(batch, incoming, sizes)
                done += len(batch)
                self._show_progress(done, len(uids))
        finally:
            preparer.close()

    def _show_progress(self, done: int, total: int) -> None:
        if self.owner.progress:
            self.owner.progress(self.account.name, done, total)

    def _import_batch(self, batch: list[int], incoming: list[Incoming], sizes: dict) -> None:
        last_uid = max(batch)
        last_date = internaldate(sizes.get(last_uid, (0, None))[1])
        for item in incoming:  # the arrival time decides whether old mail gets side effects
            item.arrived_at = timeutil.iso(internaldate(sizes.get(item.uid, (0, None))[1]))
        with self.writer() as store:
            with store.atomic():
                stored = self._store(store, incoming)
                # The cursor moves only past what this very transaction commits.
                values = {"last_uid": last_uid}
                if last_date:
                    values["last_date"] = timeutil.iso(last_date)
                accounts_q.save_folder_state(store, self.account.id, self.folder, values)
            self.owner.result.duplicates += stored.already
        log.debug(
            "account %s folder %s: stored UIDs %d-%d (%d new deliveries, %d already here)",
            self.account.name,
            self.folder,
            min(batch),
            last_uid,
            len(stored.delivery_ids),
            stored.already,
        )
        self._process(stored.delivery_ids, stored.prepared)

    def _store(self, store: Store, incoming: list[Incoming]) -> Stored:
        """Store a batch; if its data cannot be stored (not the store failing: a value
        from a message), store the messages one by one, each failing one as a stub that
        fails alone in processing. The cursor then moves on: one message never blocks a folder."""
        try:
            with store.savepoint():
                return store_messages(store, self.account.id, self.folder, incoming)
        except (OSError, EspomailError):
            raise  # the disk, not the data: the whole batch waits for the next run
        except Exception as exc:  # noqa: BLE001
            if engine.is_engine_failure(exc):
                raise  # the store, not the data
            if len(incoming) == 1:
                return self._store_stub(store, incoming[0], exc)
            log.warning("account %s: a batch could not be stored (%s); storing one by one", self.account.name, exc)
        stored = Stored()
        for item in incoming:
            one = self._store(store, [item])
            stored.delivery_ids += one.delivery_ids
            stored.already += one.already
            stored.prepared.update(one.prepared)
        return stored

    def _store_stub(self, store: Store, item: Incoming, exc: Exception) -> Stored:
        reason = f"could not be stored as parsed ({type(exc).__name__}: {str(exc)[:200]})"
        log.warning("account %s folder %s UID %s: %s", self.account.name, self.folder, item.uid, reason)
        stub = dataclasses.replace(
            item,
            parsed=ParsedEmail(defects=[reason]),
            key=f"<unstorable.{item.sha256}@espomail.invalid>",
            has_id=False,
        )
        with store.savepoint():
            stored = store_messages(store, self.account.id, self.folder, [stub])
        # Processing reads the source back and parses it again; a step that fails on it
        # leaves the email failed with its error.
        stored.prepared.clear()
        return stored

    def _process(self, delivery_ids: list[int], prepared: dict) -> None:
        if not delivery_ids:
            return
        with self.writer() as store:
            processed = process(store, self.settings, delivery_ids, prepared)
        # Auto-replies were stored with the emails; they go out now, outside the transaction.
        processed.send_queued(self.writer.store, self.settings, self.writer.guard)
        self.owner.result.add(processed)
        if self.owner.after_batch:
            self.owner.after_batch(processed)


def _checked(status: FolderStatus) -> FolderStatus:
    if not 0 < status.uidvalidity <= MAX_IMAP_NUMBER:
        raise EspomailError(f"the server sent an invalid UIDVALIDITY ({status.uidvalidity}); the folder is skipped")
    if status.uidnext is not None and not 0 < status.uidnext <= MAX_IMAP_NUMBER + 1:
        return dataclasses.replace(status, uidnext=None)
    return status


def _unchanged(state: Row | None, status: FolderStatus) -> bool:
    return bool(
        state is not None
        and not state["by_date"]
        and state["uidnext"] is not None
        and state["uidvalidity"] == status.uidvalidity
        and state["uidnext"] == status.uidnext
    )


def _header_value(raw: bytes) -> str:
    text = raw.decode("latin-1")
    _, _, value = text.partition(":")
    return value


def _batches(uids: list[int], sizes: dict, count: int, max_bytes: int, big: set[int]) -> Iterator[list[int]]:
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = 0 if uid in big else sizes.get(uid, (0, None))[0]
        if batch and (len(batch) >= count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


_DONE = object()


def _prefetch(
    session: ImapSession, batches: list[list[int]], big: set[int], peek: bool, preparer: preparing.Preparer
) -> Iterator[tuple[list[int], list[Incoming]]]:
    """Download the next batches while the current one is stored: a download thread hands
    each batch to the preparer (parse, hash, commit the raw sources; a worker process for
    large fetches) and queues the pending result; the main thread takes them in order.
    The queue holds two batches, so memory does not grow with the mailbox."""
    channel: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def reader() -> None:
        try:
            for batch in batches:
                downloaded = session.download(batch, big & set(batch), peek=peek)
                pending = preparer.submit((f.raw, f.uid, f.truncated) for f in downloaded)
                while not stop.is_set():
                    try:
                        channel.put((batch, pending), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            channel.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            channel.put(exc)

    thread = threading.Thread(target=reader, name="imap-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = channel.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            batch, pending = item
            yield batch, pending()
    finally:
        stop.set()
        thread.join(timeout=5)
