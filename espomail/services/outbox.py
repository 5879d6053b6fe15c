"""Outgoing system mail: queued in the import transaction, sent after it commits.

An auto-reply is stored first (status Sending) in the same transaction as the email that
caused it, then sent. A failure leaves it Failed with the error; later fetch runs retry it
(``send_retries`` tries, default 3). It is never lost silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable

from espomail import timeutil
from espomail.config import Settings
from espomail.errors import EspomailError
from espomail.mail import smtp
from espomail.model import EmailStatus, MailAccount
from espomail.services.accounts import smtp_config
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store import settings as settings_q
from espomail.store.db import Row, Store

log = logging.getLogger("espomail.outbox")
Guard = Callable[[], contextlib.AbstractContextManager]


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


def deliver(store: Store, settings: Settings, email_ids: Iterable[int], guard: Guard | None = None) -> int:
    """Send queued system mail; returns how many were sent. ``guard`` serialises DB access."""
    guard = guard or contextlib.nullcontext
    sent = 0
    for email_id in email_ids:
        with guard():
            email = emails_q.email_by_id(store, email_id)
            if email is None or email["status"] not in (EmailStatus.SENDING, EmailStatus.FAILED):
                continue
            account = smtp_account_for(store, _account(store, email))
            raw = emails_q.raw_of(store, email_id)
        error = _send(settings, account, email, raw)
        with guard(), store.atomic():
            _record(store, email_id, account, error)
        sent += error is None
    return sent


def _account(store: Store, email: Row) -> MailAccount | None:
    if email["sent_account_id"] is None:
        return None
    return accounts_q.account_by_id(store, email["sent_account_id"])


def _send(settings: Settings, account: MailAccount | None, email: Row, raw: bytes) -> str | None:
    if account is None:
        return "no SMTP: give the account --smtp-host, or set a system sender with 'espomail outbound set'"
    recipients = json.loads(email["to_list"]) + json.loads(email["cc_list"]) + json.loads(email["bcc_list"])
    try:
        smtp.send(smtp_config(account, settings.timeout_s), settings.timeout_s, account.address, recipients, raw)
    except EspomailError as exc:
        log.warning("sending email %s failed: %s", email["id"], exc.message)
        return exc.message
    return None


def _record(store: Store, email_id: int, account: MailAccount | None, error: str | None) -> None:
    if error is None:
        emails_q.mark_sent(store, email_id, account.id if account else None)
        emails_q.insert_events(store, email_id, None, [("send", "sent", f"via {account.name}")])
    else:
        emails_q.mark_send_failed(store, email_id, error)
        emails_q.insert_events(store, email_id, None, [("send", "failed", error)])


def retry_failed(store: Store, settings: Settings, guard: Guard | None = None) -> int:
    """System mail left Failed (or Sending by a crash) with tries left. Each is claimed first,
    so that runs retrying at the same time (cron fetches, ``watch``) never send one twice; one
    still Sending is some run's own unless it is older than a few network timeouts."""
    guard = guard or contextlib.nullcontext
    stale_before = timeutil.iso(timeutil.now() - dt.timedelta(seconds=5 * settings.timeout_s))
    with guard():
        ids = emails_q.unsent_system_ids(store, settings.send_retries, stale_before)
    claimed = []
    for email_id in ids:
        with guard(), store.atomic():
            if emails_q.claim_unsent(store, email_id, stale_before):
                claimed.append(email_id)
    return deliver(store, settings, claimed, guard) if claimed else 0
