"""The outbox (SPEC 6, 7, 11): outgoing mail is stored first, then sent by whoever claims it.

Every outgoing email (an auto-reply, an ``email send``, a resend) is stored with its raw
source and an outbox row before anything goes to a server. Sending one is an *attempt*:

1. claim it in a transaction (``store.outbox.claim``): only when it is due, has tries left
   and no live sender holds it; the claim counts the attempt, so even a crash mid-send
   spends one try. Two overlapping runs never send the same email twice.
2. send the stored raw source as it is (a resend after a crash carries the same
   Message-ID, so receivers de-duplicate it);
3. record the outcome: Sent (and no more outbox row), or Failed with the error and the
   next attempt after 1, 2, 4 ... minutes (at most 60), or given up after ``send_retries``
   attempts or a permanent refusal (5xx, SMTPUTF8 missing) until ``email resend``.

Any exception while sending one email is caught and recorded on it; the run goes on. A
server that cannot be reached is not tried again for a minute by the same run (its other
emails wait, untried, for a later run). Sent mail is appended to its account's
``--store-sent`` folder; a failure there is recorded on the email and changes nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import logging
import os
import secrets
import socket
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterable

from espomail import timeutil
from espomail.config import Settings
from espomail.errors import EspomailError, InvalidInput
from espomail.mail import smtp
from espomail.model import EmailStatus, MailAccount
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services.accounts import smtp_config
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store import outbox as outbox_q
from espomail.store import settings as settings_q
from espomail.store.db import Row, Store

log = logging.getLogger("espomail.outbox")
Guard = Callable[[], contextlib.AbstractContextManager]

HOST = socket.gethostname()
_TOKEN = secrets.token_hex(4)
DUE_SLACK_S = 15  # a cron run a minute after a failure finds the 1-minute retry due
MAX_BACKOFF_S = 3600
PAUSE_S = 60  # a server found unreachable is left alone this long by the same run
RETRY_BATCH = 500  # due emails one run takes at most
RECENT_S = 86400  # failed_for_good_recent: given up in the last day
OVERDUE_S = 900  # due for longer than this without a run taking it: stuck


class Outcome(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"  # tried; Failed, tried again later
    GAVE_UP = "gave-up"  # tried; Failed for good until 'email resend'
    DEFERRED = "deferred"  # not tried: its server was found unreachable moments ago
    SKIPPED = "skipped"  # not ours to send: sent, not due, or claimed by another run


@dataclasses.dataclass
class Attempt:
    email_id: int
    outcome: Outcome
    error: str | None = None
    attempts: int = 0
    next_attempt_at: str | None = None
    stored_in_sent_folder: bool | None = None
    account: MailAccount | None = None  # the account that owns the email (its Sent folder)


@dataclasses.dataclass
class Delivered:
    """What one ``deliver`` did."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0

    @property
    def not_sent(self) -> int:
        return self.failed + self.deferred

    def count(self, attempt: Attempt) -> None:
        if attempt.outcome == Outcome.SENT:
            self.sent += 1
        elif attempt.outcome in (Outcome.FAILED, Outcome.GAVE_UP):
            self.failed += 1
        elif attempt.outcome == Outcome.DEFERRED:
            self.deferred += 1
        else:
            self.skipped += 1


@dataclasses.dataclass
class OutboxHealth:
    """The outbox for ``espomail status``; ``stuck`` is what needs a person."""

    queued: int = 0  # waiting for their first attempt
    sending: int = 0  # claimed by a live run right now
    retrying: int = 0  # Failed, with a next attempt planned
    overdue: int = 0  # due for over 15 minutes (no fetch running?) or held by a stale claim
    failed_for_good: int = 0  # given up: 'espomail email resend ID' or delete them
    failed_for_good_recent: int = 0  # of those, given up in the last 24 hours
    oldest_overdue_at: str | None = None

    @property
    def stuck(self) -> int:
        return self.overdue + self.failed_for_good

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "stuck": self.stuck}


# -- accounts ------------------------------------------------------------------------------------


def system_account(store: Store) -> MailAccount | None:
    """The group account with SMTP whose address is the outbound (system) address."""
    address = settings_q.get(store, "outbound_address")
    if not address:
        return None
    return accounts_q.system_account(store, address)


def smtp_account_for(store: Store, account: MailAccount | None) -> MailAccount | None:
    """An account's own SMTP, else the system outbound account."""
    if account is not None and account.smtp_host:
        return account
    return system_account(store)


# -- queueing and sending ------------------------------------------------------------------------


def queue(store: Store, email_id: int) -> None:
    """Owe ``email_id`` a send, due now (in the caller's transaction, with the email)."""
    now = timeutil.now_iso()
    outbox_q.enqueue(store, email_id, now, now)


def deliver(store: Store, settings: Settings, email_ids: Iterable[int], guard: Guard | None = None) -> Delivered:
    """Try each due email of ``email_ids`` once; never raises for one email's sake."""
    guard = guard or contextlib.nullcontext
    result = Delivered()
    attempts = [_attempt(store, settings, email_id, guard) for email_id in email_ids]
    _store_sent(store, settings, [a for a in attempts if a.outcome == Outcome.SENT], guard)
    for attempt in attempts:
        result.count(attempt)
    return result


def retry_failed(store: Store, settings: Settings, guard: Guard | None = None) -> Delivered:
    """Outgoing mail whose next attempt is due (Failed with tries left, or left Sending by a
    run that died)."""
    guard = guard or contextlib.nullcontext
    with guard():
        _release_dead_claims(store)
        now = timeutil.now()
        ids = outbox_q.due_ids(store, _due_by(now), _stale_before(now, settings), settings.send_retries, RETRY_BATCH)
    if ids:
        log.info("retrying %d outgoing email(s)", len(ids))
    return deliver(store, settings, ids, guard) if ids else Delivered()


def send_now(store: Store, settings: Settings, email_id: int) -> Attempt:
    """One attempt at once (``email send``, ``email resend``), ignoring a pause."""
    attempt = _attempt(store, settings, email_id, contextlib.nullcontext, ignore_pause=True)
    if attempt.outcome == Outcome.SENT:
        _store_sent(store, settings, [attempt], contextlib.nullcontext)
    return attempt


def _attempt(store: Store, settings: Settings, email_id: int, guard: Guard, ignore_pause: bool = False) -> Attempt:
    try:
        with guard():
            email = emails_q.email_by_id(store, email_id)
            if email is None:
                return Attempt(email_id, Outcome.SKIPPED)
            owner = _account(store, email)
            account = smtp_account_for(store, owner)
            if account is not None and not ignore_pause and _paused(store, account.id):
                return Attempt(email_id, Outcome.DEFERRED, account=owner)
            if not _claim(store, settings, email_id):
                return Attempt(email_id, Outcome.SKIPPED, account=owner)
            email = emails_q.email_by_id(store, email_id)
    except Exception as exc:  # noqa: BLE001 - one email must not stop the run
        log.warning("outgoing email %s could not be claimed: %s: %s", email_id, type(exc).__name__, exc)
        return Attempt(email_id, Outcome.SKIPPED, error=str(exc))
    error, permanent, note = _send(store, settings, account, email, guard)
    try:
        with guard(), store.atomic():
            attempt = _record(store, settings, email, account, error, permanent, note)
    except Exception as exc:  # noqa: BLE001 - the claim goes stale and a later run tries again
        log.warning("recording the send of email %s failed: %s: %s", email_id, type(exc).__name__, exc)
        return Attempt(email_id, Outcome.FAILED, error=str(exc), account=owner)
    attempt.account = owner
    return attempt


def _claim(store: Store, settings: Settings, email_id: int) -> bool:
    now = timeutil.now()
    with store.atomic():
        return outbox_q.claim(
            store,
            email_id,
            _holder(),
            timeutil.iso(now),
            _due_by(now),
            _stale_before(now, settings),
            settings.send_retries,
        )


def _account(store: Store, email: Row) -> MailAccount | None:
    if email["sent_account_id"] is None:
        return None
    return accounts_q.account_by_id(store, email["sent_account_id"])


def _send(
    store: Store, settings: Settings, account: MailAccount | None, email: Row, guard: Guard
) -> tuple[str | None, bool, str | None]:
    """(error, permanent, note): one attempt; every exception becomes an error string."""
    if account is None:
        return "no SMTP: give the account --smtp-host, or set a system sender with 'espomail outbound set'", False, None
    try:
        with guard():
            raw = emails_q.raw_of(store, email["id"])
        recipients = [*json.loads(email["to_list"]), *json.loads(email["cc_list"]), *json.loads(email["bcc_list"])]
        envelope = account.address if email["is_system"] else email["from_address"] or account.address
        smtp.send(smtp_config(account, settings.timeout_s), settings.timeout_s, envelope, recipients, raw)
    except smtp.RefusedRecipients as exc:
        if exc.accepted:
            return None, False, exc.message
        return exc.message, exc.permanent, None
    except smtp.Rejected as exc:
        return exc.message, exc.permanent, None
    except smtp.ServerUnavailable as exc:
        _pause(store, account.id)
        return exc.message, False, None
    except EspomailError as exc:
        return exc.message, False, None
    except Exception as exc:  # noqa: BLE001 - whatever one email holds, the run goes on
        log.debug("%s", traceback.format_exc())
        return f"unexpected {type(exc).__name__}: {exc}", False, None
    return None, False, None


def _record(
    store: Store,
    settings: Settings,
    email: Row,
    account: MailAccount | None,
    error: str | None,
    permanent: bool,
    note: str | None,
) -> Attempt:
    email_id, attempts = email["id"], email["send_attempts"]
    now = timeutil.now()
    if error is None:
        emails_q.record_send(store, email_id, EmailStatus.SENT, note)
        outbox_q.sent(store, email_id)
        detail = f"via {account.name} (attempt {attempts})" + (f"; {note}" if note else "")
        emails_q.insert_events(store, email_id, None, [("send", "sent", detail)])
        return Attempt(email_id, Outcome.SENT, note, attempts)
    log.warning("sending email %s failed (attempt %s of %s): %s", email_id, attempts, settings.send_retries, error)
    emails_q.record_send(store, email_id, EmailStatus.FAILED, error)
    if permanent or attempts >= settings.send_retries:
        outbox_q.give_up(store, email_id, timeutil.iso(now))
        why = "a permanent refusal" if permanent else f"{attempts} attempt(s)"
        detail = f"{error}; given up after {why}: 'espomail email resend {email_id}' tries again"
        emails_q.insert_events(store, email_id, None, [("send", "failed", detail)])
        return Attempt(email_id, Outcome.GAVE_UP, error, attempts)
    next_at = timeutil.iso(now + dt.timedelta(seconds=backoff_s(attempts)))
    outbox_q.retry_at(store, email_id, next_at)
    detail = f"{error}; attempt {attempts} of {settings.send_retries}, next after {next_at}"
    emails_q.insert_events(store, email_id, None, [("send", "failed", detail)])
    return Attempt(email_id, Outcome.FAILED, error, attempts, next_at)


def backoff_s(attempts: int) -> int:
    """Seconds before the next attempt after ``attempts`` failed ones: 60, 120, 240 ... 3600."""
    return min(60 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S)


# -- the Sent folder --------------------------------------------------------------------------------


def _store_sent(store: Store, settings: Settings, attempts: list[Attempt], guard: Guard) -> None:
    """IMAP-APPEND sent mail to its account's ``--store-sent`` folder, one login per account."""
    by_account: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        account = attempt.account
        if account is not None and account.store_sent and account.host:
            by_account.setdefault(account.id, []).append(attempt)
    for group in by_account.values():
        _append_all(store, settings, group, guard)


def _append_all(store: Store, settings: Settings, attempts: list[Attempt], guard: Guard) -> None:
    from espomail.services.accounts import open_imap

    account = attempts[0].account
    events: list[tuple[int, str, str]] = []
    try:
        with guard():
            raws = [(a, emails_q.raw_of(store, a.email_id)) for a in attempts]
        with open_imap(account, settings) as session:
            for attempt, raw in raws:
                session.append(account.store_sent, raw)
                attempt.stored_in_sent_folder = True
                events.append((attempt.email_id, "stored", account.store_sent))
    except Exception as exc:  # noqa: BLE001 - the mail is sent; only the copy is missing
        reason = exc.message if isinstance(exc, EspomailError) else f"unexpected {type(exc).__name__}: {exc}"
        log.warning("storing sent mail in %s of account %s failed: %s", account.store_sent, account.name, reason)
        for attempt in attempts:
            if attempt.stored_in_sent_folder is None:
                attempt.stored_in_sent_folder = False
                events.append((attempt.email_id, "failed", f"{account.store_sent}: {reason}"))
    try:
        with guard(), store.atomic():
            for email_id, decision, detail in events:
                emails_q.insert_events(store, email_id, None, [("store-sent", decision, detail)])
    except Exception as exc:  # noqa: BLE001
        log.warning("recording the Sent-folder copies failed: %s", exc)


# -- email resend ------------------------------------------------------------------------------------


class SendFailed(EspomailError):
    """The server did not take the message; it is stored as Failed."""


def resend(store: Store, actor: Actor, settings: Settings, email_id: int) -> Attempt:
    """``email resend ID``: a new series of attempts for a Failed email, the first at once."""
    from espomail.services.emails import facts, get_email

    email = get_email(store, email_id)
    access.require(actor, "email.resend", facts(store, email), f"resend email {email_id}")
    with store.atomic():
        entry = outbox_q.entry(store, email_id)
        _check_resendable(store, settings, email, entry)
        emails_q.reset_send_attempts(store, email_id)
        queue(store, email_id)
        emails_q.insert_events(store, email_id, None, [("send", "resend", f"by {actor.username}")])
    return send_now(store, settings, email_id)


def _check_resendable(store: Store, settings: Settings, email: Row, entry: Row | None) -> None:
    email_id = email["id"]
    if email["status"] == EmailStatus.SENT:
        raise InvalidInput(f"email {email_id} was sent already; send a new one with 'espomail email send'")
    if entry is None or email["status"] not in (EmailStatus.FAILED, EmailStatus.SENDING):
        raise InvalidInput(f"email {email_id} is not an outgoing email waiting to be sent (status {email['status']})")
    if entry["claim_holder"] and entry["claimed_at"] >= _stale_before(timeutil.now(), settings):
        if not _dead(entry["claim_holder"]):
            raise EspomailError(
                f"email {email_id} is being sent by another run right now (since {entry['claimed_at']}); "
                "see 'espomail email show' in a minute"
            )


# -- health ------------------------------------------------------------------------------------------


def outbox_health(store: Store, settings: Settings) -> OutboxHealth:
    """Counts of the outbox for ``espomail status`` (stuck = given up, or overdue)."""
    now = timeutil.now()
    row = outbox_q.health(
        store,
        timeutil.iso(now - dt.timedelta(seconds=OVERDUE_S)),
        _stale_before(now, settings),
        timeutil.iso(now - dt.timedelta(seconds=RECENT_S)),
    )
    return OutboxHealth(**{key: row[key] for key in row.keys()})


# -- claims, pauses ------------------------------------------------------------------------------------


def _holder() -> str:
    return f"{HOST}:{os.getpid()}:{_TOKEN}"


def _due_by(now: dt.datetime) -> str:
    return timeutil.iso(now + dt.timedelta(seconds=DUE_SLACK_S))


def stale_after_s(settings: Settings) -> float:
    """A claim older than this is taken over (its sender died or hangs): longer than any send."""
    return max(settings.lease_s, 10 * settings.timeout_s)


def _stale_before(now: dt.datetime, settings: Settings) -> str:
    return timeutil.iso(now - dt.timedelta(seconds=stale_after_s(settings)))


def _dead(holder: str) -> bool:
    """A claim holder of this host whose process is gone (``kill -9``)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return rest.partition(":")[2] != _TOKEN  # an earlier process that had our pid
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _release_dead_claims(store: Store) -> None:
    dead = [h for h in outbox_q.holders_like(store, f"{HOST}:") if _dead(h)]
    if dead:
        with store.atomic():
            released = outbox_q.release_claims(store, dead)
        log.info("took back %d outgoing email(s) claimed by runs that died", released)


# Servers found unreachable, per open store (one run): account id -> monotonic time to try again.
_pauses: weakref.WeakKeyDictionary[Store, dict[int, float]] = weakref.WeakKeyDictionary()
_pauses_lock = threading.Lock()


def _pause(store: Store, account_id: int) -> None:
    with _pauses_lock:
        _pauses.setdefault(store, {})[account_id] = time.monotonic() + PAUSE_S


def _paused(store: Store, account_id: int) -> bool:
    with _pauses_lock:
        return _pauses.get(store, {}).get(account_id, 0.0) > time.monotonic()
