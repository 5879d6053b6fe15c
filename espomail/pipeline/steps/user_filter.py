"""user-filter: each newly reached user's own filters (SPEC 4.7).

Skip trashes the email for that user only; move-to-folder files it in one of their
folders; mark-read and skip-notification act for that user. The sender's own mail is
not filtered for them.
"""

from __future__ import annotations

from espomail.model import FilterAction
from espomail.pipeline.context import Context
from espomail.policy.filters import first_match, needs_body

NAME = "user-filter"


def run(ctx: Context) -> None:
    candidates = [uid for uid, state in ctx.users.items() if not state.is_sender]
    for user_id in sorted(set(candidates) & ctx.lookups.users_with_filters):
        rows = ctx.lookups.user_filters(user_id)
        hit = first_match(rows, ctx.complete() if needs_body(rows) else ctx.parsed)
        if hit is None:
            continue
        row, reasons = hit
        state = ctx.users[user_id]
        if row["action"] == FilterAction.SKIP:
            state.in_trash = True
        elif row["action"] == FilterAction.MOVE_TO_FOLDER:
            state.folder_id = row["folder_id"]
        state.is_read = state.is_read or bool(row["mark_read"])
        state.skip_notification = state.skip_notification or bool(row["skip_notification"])
        username = ctx.lookups.username(user_id)
        ctx.decide(
            NAME,
            row["action"],
            {
                "user": username,
                "filter": row["name"],
                "why": reasons,
                "mark_read": bool(row["mark_read"]),
                "skip_notification": bool(row["skip_notification"]),
            },
        )
