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
from espomail.pipeline.context import Context
from espomail.pipeline.registry import IMPORT_PIPELINE, STEPS
from espomail.store import emails as emails_q
from espomail.store.db import Row, Store

log = logging.getLogger("espomail.pipeline")


def process_delivery(
    store: Store, settings: Settings, delivery: Row, raw: bytes | None = None, parsed=None
) -> Context | None:
    """Process one pending or failed delivery. Returns the context, or None when it failed."""
    email = emails_q.email_by_id(store, delivery["email_id"])
    account = emails_q.account_of(store, delivery)
    raw = raw if raw is not None else emails_q.raw_of(store, email["id"])
    ctx = Context(
        store=store,
        settings=settings,
        email=email,
        delivery=delivery,
        account=account,
        raw=raw or b"",
        is_new=email["state"] != "processed",
        parsed=parsed,
    )
    try:
        with store.atomic():
            run_steps(ctx)
            emails_q.insert_events(store, ctx.email_id, delivery["id"], ctx.events)
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
