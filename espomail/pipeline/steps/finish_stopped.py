"""finish-stopped: a delivery that a step stopped (loop guard, account filter) is closed."""

from __future__ import annotations

from espomail.model import DeliveryState, ProcessingState
from espomail.pipeline.context import Context
from espomail.store import emails as emails_q

NAME = "finish-stopped"


def run(ctx: Context) -> None:
    state = DeliveryState.DROPPED if ctx.stopped == DeliveryState.DROPPED else DeliveryState.FILTERED
    emails_q.finish_delivery(ctx.store, ctx.delivery["id"], state)
    if ctx.is_new:
        emails_q.set_state(ctx.store, ctx.email_id, ProcessingState.FILTERED)
    ctx.count("filtered")
