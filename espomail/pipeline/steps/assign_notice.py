"""assign-notice: mail the assignee of a new case, when they opted in (issue 17).

After save and auto-reply: the case exists and the customer's acknowledgement is queued
first. Only a case this delivery created (Email-to-Case distribution) is announced; never
for old mail (SPEC 11) or ``email import`` without ``--create-cases`` (no case is created).
The rules of the notice itself are policy/assignment_notices.py. A notice that cannot be
built is recorded and the email is processed as usual; it counts in no auto-reply figure.
"""

from __future__ import annotations

import logging

from espomail.pipeline.context import Context
from espomail.policy import assignment_notices
from espomail.policy.assignment_notices import Assigned, Assignment
from espomail.store import cases as cases_q

NAME = "assign-notice"
log = logging.getLogger("espomail.pipeline")


def run(ctx: Context) -> None:
    if not ctx.case_created or not ctx.assigned_user_id:
        return
    old = ctx.old_mail()
    if old:
        ctx.decide(NAME, "not sent", old)
        return
    try:
        with ctx.store.savepoint():
            notice = assignment_notices.notify(ctx.store, _assignment(ctx), ctx.settings.message_id_domain)
    except Exception as exc:  # noqa: BLE001 - a notice never stops the import of the email
        log.warning("assignment notice for email %s could not be queued: %s: %s", ctx.email_id, type(exc).__name__, exc)
        ctx.decide(NAME, "failed", f"the notice could not be built: {type(exc).__name__}: {exc}")
        return
    if notice.email_id is None:
        ctx.decide(NAME, "not sent", notice.detail)
        return
    ctx.notice_ids.append(notice.email_id)
    ctx.decide(NAME, "queued", notice.detail)


def _assignment(ctx: Context) -> Assignment:
    case = cases_q.case_by_id(ctx.store, ctx.case_id)
    sender = ctx.parsed.from_ if ctx.parsed is not None else None
    shown = None
    if sender is not None:
        shown = f"{sender.name} <{sender.address}>" if sender.name else sender.address
    return Assignment(
        kind=Assigned.CASE,
        number=case["number"],
        name=case["name"],
        assignee_id=ctx.assigned_user_id,
        by=f"{ctx.account.distribution} distribution of account {ctx.account.name}",
        sender=shown,
        account=ctx.account,
    )
