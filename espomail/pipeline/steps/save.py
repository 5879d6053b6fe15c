"""save: buffer what processing decided (new emails) and the relations (every delivery)."""

from __future__ import annotations

from espomail.model import DeliveryState
from espomail.pipeline.context import Context
from espomail.store import emails as emails_q

NAME = "save"


def run(ctx: Context) -> None:
    writes = ctx.writes
    if ctx.is_new:
        writes.email(ctx.email_id, _fields(ctx))
        writes.add_attachments(ctx.email_id, ctx.parsed.attachments)
    elif ctx.group_folder_id and not ctx.email["group_folder_id"]:
        emails_q.save_parsed(ctx.store, ctx.email_id, {"group_folder_id": ctx.group_folder_id})
    writes.add_users(ctx.email_id, ctx.email["date_sent"], ctx.users)
    writes.add_teams(ctx.email_id, ctx.teams)
    writes.finish(ctx.delivery["id"], DeliveryState.DONE)
    ctx.count("new" if ctx.is_new else "duplicates")


def _fields(ctx: Context) -> dict:
    """What processing decided; the header fields were stored with the raw message."""
    return {
        "parent_type": ctx.parent[0] if ctx.parent else None,
        "parent_id": ctx.parent[1] if ctx.parent else None,
        "crm_account_id": ctx.crm_account_id,
        "replied_id": ctx.replied_id,
        "assigned_user_id": ctx.assigned_user_id,
        "group_folder_id": ctx.group_folder_id,
    }
