"""``email send`` (SPEC 7): pick the SMTP, check From, build, send, store, append to Sent.

As user U with From address F, the SMTP is, in this order: U's personal account whose
address is F and has SMTP; a group account whose address is F, with shared SMTP, that U's
group-send permission allows; the system outbound account when the system SMTP is shared
and F is the system address or one of U's addresses. Administrators (and the system
administrator) may send through any account with SMTP whose address is F.

With a case as parent the subject gets ``[#N] `` and Reply-To is the case's group account
reply-to address, or its address, so the customer's answer returns to the group mailbox.
The generated Message-ID encodes the parent, so answers link back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from espomail import timeutil, validate
from espomail.config import Settings
from espomail.errors import EspomailError, InvalidInput, NotFound
from espomail.mail import compose, copies, msgid
from espomail.mail.parse import ParsedEmail, parse_message
from espomail.model import AccountKind, EmailStatus, MailAccount, ProcessingState, UserState
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.policy.cases import with_number
from espomail.policy.parents import Parent, crm_account_of, record_exists
from espomail.services import outbox
from espomail.services.cases import require_case_access
from espomail.services.emails import email_dict, readable_email
from espomail.store import accounts as accounts_q
from espomail.store import cases as cases_q
from espomail.store import emails as emails_q
from espomail.store import notifications as notes_q
from espomail.store import people as people_q
from espomail.store import settings as settings_q
from espomail.store.db import Row, Store

log = logging.getLogger("espomail.send")


@dataclasses.dataclass
class Draft:
    sender: str
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    html: bool = False
    parent: str | None = None
    reply_to_email: int | None = None
    attachments: Sequence[Path] = ()


SendFailed = outbox.SendFailed


def send(store: Store, actor: Actor, settings: Settings, draft: Draft) -> dict:
    access.require(actor, "email.create", None, "send email")
    sender = validate.email_address(draft.sender)
    recipients = [validate.email_address(a) for a in draft.to]
    cc = [validate.email_address(a) for a in draft.cc]
    if not recipients:
        raise InvalidInput("give at least one --to address")
    replied = readable_email(store, actor, draft.reply_to_email, "reply to") if draft.reply_to_email else None
    parent = _parent(store, actor, draft.parent, replied)
    account = choose_account(store, actor, sender)
    subject, reply_to = _case_rules(store, parent, validate.name(draft.subject, "--subject", 998))
    files = [(p.name, _read(p)) for p in draft.attachments]
    message_id = msgid.generate(settings.message_id_domain, parent=parent)
    references = _references(replied)
    raw = compose.build(
        (_from_name(store, actor, account), sender),
        recipients,
        subject,
        draft.body,
        message_id,
        cc=cc,
        html=draft.html,
        reply_to=reply_to,
        in_reply_to=copies.base_key(replied["message_id"]) if replied else None,
        references=references,
        attachments=files,
    )
    with store.atomic():
        email_id = _store(store, actor, settings, raw, account, parent, replied)
        outbox.queue(store, email_id)
    attempt = outbox.send_now(store, settings, email_id)
    if attempt.outcome != outbox.Outcome.SENT:
        raise SendFailed(failure_message(attempt, settings))
    return sent_result(store, actor, attempt)


def failure_message(attempt: outbox.Attempt, settings: Settings) -> str:
    """The one line of a send that did not go out: why, and what happens next."""
    email_id = attempt.email_id
    if attempt.outcome == outbox.Outcome.FAILED:
        then = (
            f"later fetches try again ({attempt.attempts} of {settings.send_retries} attempts made; "
            f"next after {attempt.next_attempt_at}), or 'espomail email resend {email_id}'"
        )
    elif attempt.outcome == outbox.Outcome.GAVE_UP:
        then = f"no automatic retry; 'espomail email resend {email_id}' tries again"
    else:
        then = f"another run is sending it; see 'espomail email show {email_id}'"
    return f"{attempt.error or 'not sent'}; the email is stored as Failed (id {email_id}): {then}"


def sent_result(store: Store, actor: Actor, attempt: outbox.Attempt) -> dict:
    result = email_dict(store, emails_q.email_by_id(store, attempt.email_id), actor)
    result["send_attempts"] = attempt.attempts
    result["stored_in_sent_folder"] = attempt.stored_in_sent_folder
    if attempt.error:  # sent, but the server refused some recipients
        result["refused"] = attempt.error
    return result


# -- choosing the account -----------------------------------------------------------------------


def choose_account(store: Store, actor: Actor, sender: str) -> MailAccount:
    """The account whose SMTP sends mail from ``sender`` for ``actor`` (SPEC 7)."""
    candidates = [a for a in accounts_q.accounts_by_address(store, sender) if a.smtp_host and a.is_active]
    if actor.is_admin:
        if candidates:
            return candidates[0]
        return _system_or_fail(store, sender, "no mail account with SMTP has this address")
    own = set(a.lower() for a in people_q.addresses_of(store, "user", actor.user_id))
    for account in candidates:
        if account.kind == AccountKind.PERSONAL and account.owner_id == actor.user_id and sender.lower() in own:
            return account
    shared = [a for a in candidates if a.kind == AccountKind.GROUP and a.smtp_shared]
    for account in shared:
        if access.allowed(actor, "account.send", _facts(store, account)):
            return account
    if shared:
        access.require(
            actor,
            "account.send",
            _facts(store, shared[0]),
            f"send through the shared group account '{shared[0].name}'",
        )
    system = _system_if_shared(store)
    system_address = settings_q.get(store, "outbound_address") or ""
    if system is not None and sender.lower() in own | {system_address.lower()}:
        return system
    facts = access.SenderFacts(sender.lower() in own, sender.lower() == system_address.lower())
    access.require(actor, "email.from", facts, f"send from {sender}")
    raise EspomailError(
        f"no SMTP to send from {sender}: add SMTP to your personal account (--smtp-host), or ask an "
        "administrator to share a group account's SMTP or the system SMTP ('espomail outbound set --shared')"
    )


def _facts(store: Store, account: MailAccount) -> access.AccountFacts:
    return access.AccountFacts(account.kind, account.owner_id, frozenset(accounts_q.team_ids(store, account.id)))


def _system_if_shared(store: Store) -> MailAccount | None:
    shared = settings_q.get(store, "outbound_shared")
    return outbox.system_account(store) if shared == "1" else None


def _system_or_fail(store: Store, sender: str, why: str) -> MailAccount:
    system = outbox.system_account(store)
    address = settings_q.get(store, "outbound_address") or ""
    if system is not None and sender.lower() == address.lower():
        return system
    raise EspomailError(f"cannot send from {sender}: {why}; add --smtp-host to that account")


# -- parent, case rules, references ---------------------------------------------------------------


def _parent(store: Store, actor: Actor, ref: str | None, replied: Row | None) -> Parent | None:
    if ref:
        kind, number = validate.record_ref(ref)
        record_id = cases_q.case_id_by_number(store, number) if kind == "case" else number
        if record_id is None or not record_exists(store, kind, record_id):
            raise NotFound(f"no {kind} {number}")
        if kind == "case":
            require_case_access(store, actor, record_id, "send into")
        return kind, record_id
    if replied is not None and replied["parent_type"]:
        return replied["parent_type"], replied["parent_id"]
    return None


def _case_rules(store: Store, parent: Parent | None, subject: str) -> tuple[str, str | None]:
    if parent is None or parent[0] != "case":
        return subject, None
    case = cases_q.case_by_id(store, parent[1])
    reply_to = None
    if case["inbound_account_id"]:
        inbound = accounts_q.account_by_id(store, case["inbound_account_id"])
        if inbound is not None:
            reply_to = inbound.reply_to_address or inbound.address
    return with_number(subject, case["number"]), reply_to


def _references(replied: Row | None) -> list[str]:
    if replied is None or not replied["has_message_id"]:
        return []
    return [*json.loads(replied["references_list"]), copies.base_key(replied["message_id"])][-20:]


def _from_name(store: Store, actor: Actor, account: MailAccount) -> str | None:
    if account.kind == AccountKind.GROUP and not actor.user_id:
        return account.reply_from_name or account.name
    if actor.user_id:
        return people_q.user_by_id(store, actor.user_id)["name"]
    name = settings_q.get(store, "outbound_name")
    return name or None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no file {path} (given to --attach)") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


# -- storing and sending ---------------------------------------------------------------------------


def _store(
    store: Store,
    actor: Actor,
    settings: Settings,
    raw: bytes,
    account: MailAccount,
    parent: Parent | None,
    replied: Row | None,
) -> int:
    parsed = parse_message(raw)
    stamp = timeutil.now_iso()
    email_id = emails_q.insert_raw_email(
        store,
        {
            "message_id": parsed.message_id,
            "subject": parsed.subject,
            "from_address": parsed.from_.address,
            "from_name": parsed.from_.name,
            "date_sent": stamp,
            "raw_size": len(raw),
            "truncated": False,
        },
        raw,
    )
    emails_q.save_parsed(
        store,
        email_id,
        {
            "to_list": emails_q.as_json_list(a.address for a in parsed.to),
            "cc_list": emails_q.as_json_list(a.address for a in parsed.cc),
            "reply_to_list": emails_q.as_json_list(a.address for a in parsed.reply_to),
            "in_reply_to": parsed.in_reply_to,
            "references_list": parsed.references,
            "parent_type": parent[0] if parent else None,
            "parent_id": parent[1] if parent else None,
            "crm_account_id": crm_account_of(store, *parent) if parent else None,
            "replied_id": replied["id"] if replied else None,
            "status": EmailStatus.SENDING,
            "created_by_id": actor.user_id,
            "sent_account_id": account.id,
            "state": ProcessingState.PROCESSED,
        },
    )
    emails_q.add_attachments(store, email_id, parsed.attachments)
    _relations(store, actor, email_id, stamp, parsed, account, parent)
    return email_id


def _relations(
    store: Store,
    actor: Actor,
    email_id: int,
    stamp: str,
    parsed: ParsedEmail,
    account: MailAccount,
    parent: Parent | None,
) -> None:
    users: dict[int, UserState] = {}
    if actor.user_id:
        users[actor.user_id] = UserState(reason="sent it", is_sender=True, is_read=True)
    addresses = [a.address for a in [*parsed.to, *parsed.cc]]
    for user_id in people_q.users_by_addresses(store, addresses).values():
        users.setdefault(user_id, UserState(reason="address in To/Cc"))
    emails_q.add_users(store, email_id, stamp, users)
    teams = set(accounts_q.team_ids(store, account.id)) if account.kind == AccountKind.GROUP else set()
    teams |= set(actor.team_ids)
    emails_q.add_teams(store, email_id, teams)
    notes_q.insert_notifications(
        store, [{"user_id": u, "type": "email-received", "email_id": email_id} for u in users if u != actor.user_id]
    )
    if parent:
        notes_q.insert_note(store, parent[0], parent[1], "email-sent", email_id, (parsed.body_text or "")[:500])
