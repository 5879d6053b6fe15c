"""save: write the parsed fields (new emails) and the relations (every delivery)."""

from __future__ import annotations

from espomail import timeutil
from espomail.pipeline.context import Context
from espomail.store import emails as emails_q

NAME = "save"
MAX_SUBJECT = 998


def run(ctx: Context) -> None:
    if ctx.is_new:
        emails_q.save_parsed(ctx.store, ctx.email_id, _fields(ctx))
        emails_q.add_attachments(ctx.store, ctx.email_id, ctx.parsed.attachments)
        emails_q.set_state(ctx.store, ctx.email_id, "processed")
        sort_date = _date(ctx)
    else:
        sort_date = ctx.email["date_sent"]
        if ctx.group_folder_id and not ctx.email["group_folder_id"]:
            emails_q.save_parsed(ctx.store, ctx.email_id, {"group_folder_id": ctx.group_folder_id})
    emails_q.add_users(ctx.store, ctx.email_id, sort_date, ctx.users)
    emails_q.add_teams(ctx.store, ctx.email_id, ctx.teams)
    emails_q.finish_delivery(ctx.store, ctx.delivery["id"], "done")
    ctx.count("new" if ctx.is_new else "duplicates")


def _date(ctx: Context) -> str:
    parsed = ctx.parsed
    return timeutil.iso(parsed.date) if parsed.date else ctx.email["date_sent"] or timeutil.now_iso()


def _fields(ctx: Context) -> dict:
    parsed = ctx.parsed

    def addresses(items):
        return emails_q.as_json_list(a.address for a in items)

    names = {a.lower: a.name for a in [parsed.from_, *parsed.to, *parsed.cc, *parsed.reply_to] if a and a.name}
    return {
        "subject": parsed.subject[:MAX_SUBJECT],
        "from_address": parsed.from_.address if parsed.from_ else None,
        "from_name": parsed.from_.name if parsed.from_ else None,
        "to_list": addresses(parsed.to),
        "cc_list": addresses(parsed.cc),
        "bcc_list": addresses(parsed.bcc),
        "reply_to_list": addresses(parsed.reply_to),
        "address_names": names,
        "date_sent": _date(ctx),
        "in_reply_to": parsed.in_reply_to,
        "references_list": parsed.references,
        "body_text": parsed.body_text,
        "body_html": parsed.body_html,
        "truncated": parsed.truncated,
        "parent_type": ctx.parent[0] if ctx.parent else None,
        "parent_id": ctx.parent[1] if ctx.parent else None,
        "crm_account_id": ctx.crm_account_id,
        "replied_id": ctx.replied_id,
        "is_auto_reply": parsed.is_auto_reply,
        "is_auto_submitted": parsed.is_auto_submitted,
        "is_bounce": parsed.is_bounce,
        "assigned_user_id": ctx.assigned_user_id,
        "group_folder_id": ctx.group_folder_id,
    }
