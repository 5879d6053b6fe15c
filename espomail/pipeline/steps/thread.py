"""thread: find the email this one replies to (In-Reply-To, then References)."""

from __future__ import annotations

from espomail.pipeline.context import Context
from espomail.store import emails as emails_q

NAME = "thread"


def run(ctx: Context) -> None:
    if not ctx.is_new:
        return
    parsed = ctx.parsed
    candidates = ([parsed.in_reply_to] if parsed.in_reply_to else []) + list(reversed(parsed.references))
    candidates = [c for c in dict.fromkeys(candidates) if c != parsed.message_id]
    found = ctx.lookups.email_ids_for(candidates) if candidates else {}
    for message_id in candidates:
        if message_id in found:
            replied = dict(emails_q.email_by_id(ctx.store, found[message_id]))
            replied.update(ctx.batch.pending_fields(replied["id"]) or {})  # processed earlier in this batch
            ctx.replied_id = replied["id"]
            if replied["parent_type"]:
                ctx.replied_parent = (replied["parent_type"], replied["parent_id"])
            ctx.teams.update(emails_q.team_ids_of(ctx.store, replied["id"]) | ctx.batch.pending_teams(replied["id"]))
            header = "In-Reply-To" if message_id == parsed.in_reply_to else "References"
            ctx.decide(NAME, "reply", f"replies to email {replied['id']} ({message_id}, from {header})")
            return
    ctx.decide(NAME, "no thread", "no In-Reply-To or References matches a stored email" if candidates else None)
