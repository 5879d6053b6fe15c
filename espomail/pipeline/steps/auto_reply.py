"""auto-reply: acknowledge new mail (or new cases) once, and never start a loop (SPEC 6).

In case mode only a newly created case is acknowledged; otherwise every newly imported
email. Never for duplicates, machine-made mail, lists, bounces, no-reply senders, our own
addresses or Message-IDs, nor beyond ``auto_reply_limit`` system messages to one address
per ``auto_reply_period``; nor for old mail (SPEC 11, ``side_effects_max_age_days``), nor
for ``email import`` without ``--send-auto-replies``. The reply is stored here (status
Sending, with its outbox row) in the same transaction and sent after it commits (see
services.outbox). A reply that cannot be built is recorded as a failed auto-reply on the
incoming email, which is processed as usual.
"""

from __future__ import annotations

import datetime as dt
import logging

from espomail import timeutil
from espomail.mail import compose, msgid, templates
from espomail.mail.loops import auto_reply_blocker
from espomail.model import AccountKind, EmailStatus, ProcessingState
from espomail.pipeline.context import Context
from espomail.policy.cases import with_number
from espomail.store import cases as cases_q
from espomail.store import emails as emails_q
from espomail.store import outbox as outbox_q
from espomail.store import people as people_q

NAME = "auto-reply"
log = logging.getLogger("espomail.pipeline")


def run(ctx: Context) -> None:
    account = ctx.account
    if not ctx.is_new or account is None or account.kind != AccountKind.GROUP or not account.auto_reply:
        return
    blocker = _blocker(ctx)
    if blocker:
        ctx.decide(NAME, "not sent", blocker)
        return
    try:
        with ctx.store.savepoint():
            ctx.auto_reply_id = _queue(ctx)
    except Exception as exc:  # noqa: BLE001 - a reply that cannot be built fails alone
        log.warning("auto-reply to email %s could not be built: %s: %s", ctx.email_id, type(exc).__name__, exc)
        ctx.count("auto_replies_failed")
        ctx.decide(NAME, "failed", f"the auto-reply could not be built: {type(exc).__name__}: {exc}")
        return
    ctx.count("auto_replies")
    ctx.decide(NAME, "queued", {"to": ctx.parsed.from_.address, "email_id": ctx.auto_reply_id})


def _blocker(ctx: Context) -> str | None:
    """Why no auto-reply goes out for this email, or None."""
    if not ctx.allows("auto_reply"):
        return "imported without --send-auto-replies"
    if ctx.account.create_case and not ctx.case_created:
        return "case mode: only a new case is acknowledged"
    old = ctx.old_mail()
    if old:
        return old
    parsed, settings = ctx.parsed, ctx.settings
    own = set(ctx.lookups.own_addresses)
    blocker = auto_reply_blocker(parsed, settings.no_reply_pattern, own, settings.message_id_domain)
    return blocker or _rate_limited(ctx, parsed.from_.lower)


def _rate_limited(ctx: Context, address: str) -> str | None:
    since = timeutil.iso(timeutil.now() - dt.timedelta(seconds=ctx.settings.auto_reply_period))
    sent = emails_q.count_system_sends(ctx.store, address, since)
    if sent >= ctx.settings.auto_reply_limit:
        return (
            f"rate limit: {sent} system messages to {address} in the last "
            f"{ctx.settings.auto_reply_period // 60} minutes (auto_reply_limit {ctx.settings.auto_reply_limit})"
        )
    return None


def _values(ctx: Context) -> dict:
    parsed, account = ctx.parsed, ctx.account
    case = cases_q.case_by_id(ctx.store, ctx.case_id) if ctx.case_id else None
    assignee = people_q.user_by_id(ctx.store, ctx.assigned_user_id) if ctx.assigned_user_id else None
    return {
        "case_number": case["number"] if case else "",
        "case_name": case["name"] if case else "",
        "sender_name": parsed.from_.name or parsed.from_.address,
        "sender_address": parsed.from_.address,
        "subject": parsed.subject,
        "assignee_name": assignee["name"] if assignee else "",
        "account_name": account.name,
        "account_address": account.address,
    }


def _queue(ctx: Context) -> int:
    account, parsed = ctx.account, ctx.parsed
    values = _values(ctx)
    subject = templates.render_line(account.reply_subject, values)
    if ctx.case_created:
        subject = with_number(subject, values["case_number"])
    body = templates.render(account.reply_body, values)
    message_id = msgid.generate(ctx.settings.message_id_domain, system=True)
    sender = (account.reply_from_name or account.name, account.reply_from_address or account.address)
    references = [*parsed.references, parsed.message_id] if parsed.message_id else list(parsed.references)
    raw = compose.build(
        sender,
        [parsed.from_.address],
        subject,
        body,
        message_id,
        reply_to=account.reply_to_address,
        in_reply_to=parsed.message_id,
        references=references,
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All", "Precedence": "auto_reply"},
    )
    return store_outgoing(ctx, raw, message_id, subject, body, sender)


def store_outgoing(ctx: Context, raw: bytes, message_id: str, subject: str, body: str, sender) -> int:  # noqa: ANN001
    stamp = timeutil.now_iso()
    email_id = emails_q.insert_raw_email(
        ctx.store,
        {
            "message_id": message_id,
            "subject": subject,
            "from_address": sender[1],
            "from_name": sender[0],
            "to_list": emails_q.as_json_list([ctx.parsed.from_.address]),
            "date_sent": stamp,
            "raw_size": len(raw),
            "in_reply_to": ctx.parsed.message_id,
            "parent_type": ctx.parent[0] if ctx.parent else None,
            "parent_id": ctx.parent[1] if ctx.parent else None,
            "crm_account_id": ctx.crm_account_id,
            "replied_id": ctx.email_id,
            "is_auto_reply": True,
            "is_auto_submitted": True,
            "is_system": True,
            "status": EmailStatus.SENDING,
            "sent_account_id": ctx.account.id,
        },
        raw,
    )
    emails_q.set_state(ctx.store, email_id, ProcessingState.PROCESSED)
    emails_q.add_teams(ctx.store, email_id, ctx.teams)
    emails_q.record_system_send(ctx.store, ctx.parsed.from_.lower, email_id, stamp)
    emails_q.insert_events(ctx.store, email_id, None, [("auto-reply", "queued", f"to email {ctx.email_id}")])
    outbox_q.enqueue(ctx.store, email_id, stamp, stamp)
    return email_id
