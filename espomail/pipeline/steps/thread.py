"""thread: find the email this one replies to (In-Reply-To, then References)."""

from __future__ import annotations

from espomail.pipeline.context import Context

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
            row, teams = ctx.lookups.email(found[message_id])
            replied = dict(row)
            replied.update(ctx.batch.pending_fields(replied["id"]) or {})  # processed earlier in this batch
            ctx.replied_id = replied["id"]
            if replied["parent_type"]:
                ctx.replied_parent = (replied["parent_type"], replied["parent_id"])
            ctx.teams.update(teams | ctx.batch.pending_teams(replied["id"]))
            header = "In-Reply-To" if message_id == parsed.in_reply_to else "References"
            ctx.decide(NAME, "reply", f"replies to email {replied['id']} ({message_id}, from {header})")
            return
    ctx.decide(NAME, "no thread", "no In-Reply-To or References matches a stored email" if candidates else None)
