"""user-filter: each newly reached user's own filters (SPEC 4.7).

Skip trashes the email for that user only; move-to-folder files it in one of their
folders; mark-read and skip-notification act for that user. The sender's own mail is
not filtered for them.
"""

from __future__ import annotations

from espomail.pipeline.context import Context
from espomail.services.filters import first_user_match
from espomail.store import filters as filters_q
from espomail.store import people as people_q

NAME = "user-filter"


def run(ctx: Context) -> None:
    candidates = [uid for uid, state in ctx.users.items() if not state.is_sender]
    for user_id in sorted(filters_q.users_with_filters(ctx.store, candidates)):
        hit = first_user_match(ctx.store, user_id, ctx.parsed)
        if hit is None:
            continue
        row, reasons = hit
        state = ctx.users[user_id]
        if row["action"] == "skip":
            state.in_trash = True
        elif row["action"] == "move-to-folder":
            state.folder_id = row["folder_id"]
        state.is_read = state.is_read or bool(row["mark_read"])
        state.skip_notification = state.skip_notification or bool(row["skip_notification"])
        username = people_q.user_by_id(ctx.store, user_id)["username"]
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
