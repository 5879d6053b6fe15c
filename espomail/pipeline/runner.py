"""Run the import steps over one delivery; record the trail; keep failures, never lose them.

Each delivery runs inside its own savepoint: when a step raises, only that delivery is
rolled back, then marked ``failed`` with the error (``email reprocess`` and later fetches
retry it). The runner itself is a short loop; the order of steps is data
(``pipeline.registry.IMPORT_PIPELINE``).
"""

from __future__ import annotations

import logging
import traceback

from espomail.config import Settings
from espomail.mail.parse import ParsedEmail
from espomail.model import ProcessingState
from espomail.pipeline.context import Context
from espomail.pipeline.lookups import Lookups
from espomail.pipeline.registry import IMPORT_PIPELINE, STEPS
from espomail.pipeline.writes import BatchWriter
from espomail.store import emails as emails_q
from espomail.store.db import Row, Store

log = logging.getLogger("espomail.pipeline")


def process_delivery(
    store: Store,
    settings: Settings,
    delivery: Row,
    raw: bytes | None = None,
    parsed: ParsedEmail | None = None,
    lookups: Lookups | None = None,
    email: Row | None = None,
    batch: BatchWriter | None = None,
) -> Context | None:
    """Process one pending or failed delivery. Returns the context, or None when it failed.

    ``raw`` and ``parsed`` are passed by a fetch that has them in memory already; otherwise
    the raw source is read back from the store and parsed again.
    """
    lookups = lookups or Lookups(store)
    batch = batch or BatchWriter(store)
    email = email or emails_q.email_by_id(store, delivery["email_id"])
    account = lookups.account(delivery["account_id"]) if delivery["account_id"] else None
    if raw is None:
        raw, parsed = emails_q.raw_of(store, email["id"]), None
    ctx = Context(
        store=store,
        settings=settings,
        email=email,
        delivery=delivery,
        account=account,
        raw=raw or b"",
        is_new=email["state"] != ProcessingState.PROCESSED,
        lookups=lookups,
        batch=batch,
        parsed=parsed,
    )
    try:
        with store.savepoint():
            run_steps(ctx)
        ctx.writes.add_events(ctx.email_id, delivery["id"], ctx.events)
        batch.absorb(ctx.writes, ctx.email_id)
        return ctx
    except Exception as exc:  # noqa: BLE001 - any failure is kept, not lost
        log.warning("processing email %s failed: %s", email["id"], exc)
        log.debug("%s", traceback.format_exc())
        with store.atomic():
            emails_q.mark_failed(store, delivery, f"{type(exc).__name__}: {exc}", ctx.is_new)
            step = ctx.events[-1][0] if ctx.events else "start"
            emails_q.insert_events(
                store, ctx.email_id, delivery["id"], [("failed", "error", f"after step {step}: {exc}")]
            )
        return None


def run_steps(ctx: Context, names: tuple[str, ...] = IMPORT_PIPELINE) -> None:
    for name in names:
        STEPS[name](ctx)
        if ctx.stopped:
            STEPS["finish-stopped"](ctx)
            return
