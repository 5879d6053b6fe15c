"""Assignment notices (issue 17): a user who opted in is mailed when a case or an email is
assigned to them, as EspoCRM does through its system account.

The notice is system mail stored with its outbox row in the caller's transaction and sent
by the outbox (claims, backoff, retries, ``email resend``), from the system sender
(``outbound set``): subject ``[#N] Assigned to you: NAME`` (for an email: ``Assigned to you:
SUBJECT``), a short plain body, ``Auto-Submitted: auto-generated``,
``X-Auto-Response-Suppress: All`` and a system Message-ID, which the loop guard drops should
it come back. It belongs to nobody's mailbox and to no record; administrators see it with
``email show``.

None is queued when the user has not opted in, is inactive, has no address that is not one of our mail
accounts' addresses, assigned it to themself, or when no system sender is configured (said
once per run in the log, at INFO). The callers decide the rest: the pipeline skips old mail and
imports without ``--create-cases`` (no case is created then).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import weakref

from espomail import timeutil
from espomail.mail import compose, msgid
from espomail.mail.addresses import header_text
from espomail.model import EmailStatus, MailAccount, ProcessingState
from espomail.policy.cases import with_number
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store import outbox as outbox_q
from espomail.store import people as people_q
from espomail.store import settings as settings_q
from espomail.store.db import Row, Store

log = logging.getLogger("espomail.notices")
HEADERS = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
_told: weakref.WeakSet[Store] = weakref.WeakSet()  # stores (runs) whose log says there is no system sender


class Assigned(enum.StrEnum):
    CASE = "case"
    EMAIL = "email"


@dataclasses.dataclass(frozen=True)
class Assignment:
    """What was assigned to whom, by whom, and where it came from."""

    kind: Assigned
    number: int  # the case number, or the email id
    name: str  # the case name, or the email subject
    assignee_id: int
    by: str  # who or what assigned it ("round-robin distribution", "alice (Alice Smith)")
    actor_id: int | None = None  # the user who assigned it, if one did
    sender: str | None = None  # who wrote the mail behind it
    account: MailAccount | None = None  # the account that brought it


@dataclasses.dataclass(frozen=True)
class Notice:
    """The outcome: the queued email's id, or why none was queued."""

    email_id: int | None
    detail: str


def notify(store: Store, assignment: Assignment, message_id_domain: str | None) -> Notice:
    """Queue the notice of ``assignment`` (in the caller's transaction), or say why not."""
    user = people_q.user_by_id(store, assignment.assignee_id)
    if user is None or not user["email_notifications"]:
        return Notice(None, "the assignee has not opted in to email notifications")
    if not user["is_active"]:
        return Notice(None, "the assignee is inactive")
    if assignment.actor_id == assignment.assignee_id:
        return Notice(None, "assigned to themself")
    address, why = _address(store, user["id"])
    if address is None:
        return Notice(None, why)
    system = _system_sender(store)
    if system is None:
        return Notice(None, "no system sender: set one with 'espomail outbound set'")
    email_id = _queue(store, assignment, user, address, system, message_id_domain)
    return Notice(email_id, f"to {user['username']} <{address}> (email {email_id})")


def _address(store: Store, user_id: int) -> tuple[str | None, str]:
    """The user's first address that is not one of our accounts' (mail to those is fetched back)."""
    addresses = people_q.addresses_of(store, "user", user_id)
    if not addresses:
        return None, "the assignee has no email address"
    ours = accounts_q.all_addresses(store)
    usable = [a for a in addresses if a.lower() not in ours]
    if not usable:
        return None, f"the assignee's address {addresses[0]} is one of our mail accounts' addresses"
    return usable[0], ""


def _system_sender(store: Store) -> MailAccount | None:
    address = settings_q.get(store, "outbound_address")
    account = accounts_q.system_account(store, address) if address else None
    if account is None and store not in _told:
        _told.add(store)
        log.info("assignment notices are not sent: no system sender ('espomail outbound set')")
    return account


def subject_of(assignment: Assignment) -> str:
    subject = f"Assigned to you: {header_text(assignment.name)}".strip()
    return with_number(subject, assignment.number) if assignment.kind == Assigned.CASE else subject


def body_of(assignment: Assignment, assignee_name: str) -> str:
    what = f"Case {assignment.number}" if assignment.kind == Assigned.CASE else f"Email {assignment.number}"
    lines = [
        f"Hello {assignee_name},",
        "",
        f"{what} has been assigned to you: {header_text(assignment.name)}",
        "",
        f"Assigned by: {header_text(assignment.by)}",
    ]
    if assignment.sender:
        lines.append(f"From: {header_text(assignment.sender)}")
    if assignment.account is not None:
        lines.append(f"Account: {assignment.account.name} <{assignment.account.address}>")
    lines += ["", f"See it with: espomail {assignment.kind} show {assignment.number}", ""]
    return "\n".join(lines)


def _queue(
    store: Store, assignment: Assignment, user: Row, address: str, system: MailAccount, domain: str | None
) -> int:
    name = settings_q.get(store, "outbound_name") or system.name
    sender = (name, system.address)
    message_id = msgid.generate(msgid.domain_for(system.address, domain, system.address), system=True)
    subject = subject_of(assignment)
    raw = compose.build(sender, [address], subject, body_of(assignment, user["name"]), message_id, headers=HEADERS)
    email_id = emails_q.insert_raw_email(
        store,
        {
            "message_id": message_id,
            "subject": subject,
            "from_address": system.address,
            "from_name": name,
            "to_list": emails_q.as_json_list([address]),
            "date_sent": timeutil.now_iso(),
            "raw_size": len(raw),
            "is_auto_submitted": True,
            "is_system": True,
            "status": EmailStatus.SENDING,
            "sent_account_id": system.id,
        },
        raw,
    )
    emails_q.set_state(store, email_id, ProcessingState.PROCESSED)
    detail = f"{assignment.kind} {assignment.number} assigned to {user['username']}"
    emails_q.insert_events(store, email_id, None, [("assign-notice", "queued", detail)])
    stamp = timeutil.now_iso()
    outbox_q.enqueue(store, email_id, stamp, stamp)
    return email_id
