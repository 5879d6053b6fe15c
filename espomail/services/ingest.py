"""Store first, process second: the two halves of importing mail, for fetch and import.

``store_messages`` commits raw messages (new emails, or a new delivery of a known one)
in one transaction together with whatever cursor the caller advances. ``process``
then runs the pipeline over each pending delivery, one savepoint each, so a failure is
kept as ``failed`` and the rest goes on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

from espomail import timeutil
from espomail.config import Settings
from espomail.mail.parse import key_for, parse_headers
from espomail.pipeline.runner import process_delivery
from espomail.store import emails as emails_q
from espomail.store.db import Row, Store

log = logging.getLogger("espomail.ingest")


@dataclasses.dataclass
class Incoming:
    raw: bytes
    uid: int | None = None
    truncated: bool = False


@dataclasses.dataclass
class Stored:
    delivery_ids: list[int] = dataclasses.field(default_factory=list)
    already: int = 0  # messages this account had brought before: nothing to do


def store_messages(store: Store, account_id: int | None, folder: str | None, messages: Iterable[Incoming]) -> Stored:
    """Insert the raw messages and their deliveries. The caller owns the transaction."""
    result = Stored()
    keyed = []
    for item in messages:
        parsed = parse_headers(item.raw)
        key, has_id = key_for(parsed, item.raw)
        keyed.append((item, parsed, key, has_id))
    known = emails_q.ids_by_message_ids(store, [k for _, _, k, _ in keyed])
    seen_here = emails_q.delivered_to_account(store, list(known.values()), account_id)
    for item, parsed, key, has_id in keyed:
        email_id = known.get(key)
        if email_id is None:
            email_id = emails_q.insert_raw_email(store, _first_fields(parsed, key, has_id, item), item.raw)
            known[key] = email_id
        elif email_id in seen_here:
            result.already += 1
            continue
        seen_here.add(email_id)
        result.delivery_ids.append(emails_q.insert_delivery(store, email_id, account_id, folder, item.uid))
    return result


def _first_fields(parsed, key: str, has_id: bool, item: Incoming) -> dict:  # noqa: ANN001
    """What is known before processing: enough to list and explain a failed email."""
    return {
        "message_id": key,
        "has_message_id": has_id,
        "subject": parsed.subject[:998],
        "from_address": parsed.from_.address if parsed.from_ else None,
        "from_name": parsed.from_.name if parsed.from_ else None,
        "date_sent": timeutil.iso(parsed.date) if parsed.date else timeutil.now_iso(),
        "raw_size": len(item.raw),
        "truncated": item.truncated,
    }


@dataclasses.dataclass
class Processed:
    new: int = 0
    duplicates: int = 0
    filtered: int = 0
    failed: int = 0
    cases_created: int = 0
    auto_replies: int = 0
    outbox: list[int] = dataclasses.field(default_factory=list)

    def add(self, other: Processed) -> None:
        for field in ("new", "duplicates", "filtered", "failed", "cases_created", "auto_replies"):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.outbox.extend(other.outbox)


def process(
    store: Store,
    settings: Settings,
    delivery_ids: Iterable[int],
    raws: dict[int, bytes] | None = None,
    on_done: Callable[[], None] | None = None,
) -> Processed:
    """Run the pipeline over deliveries (one transaction, one savepoint per delivery)."""
    result = Processed()
    with store.atomic():
        for delivery_id in delivery_ids:
            delivery = emails_q.delivery_by_id(store, delivery_id)
            if delivery is None or delivery["state"] not in ("pending", "failed"):
                continue
            raw = (raws or {}).get(delivery["email_id"])
            _count(result, process_delivery(store, settings, delivery, raw))
            if on_done:
                on_done()
    return result


def _count(result: Processed, ctx) -> None:  # noqa: ANN001 - a Context or None
    if ctx is None:
        result.failed += 1
        return
    for field in ("new", "duplicates", "filtered", "cases_created", "auto_replies"):
        setattr(result, field, getattr(result, field) + ctx.counters.get(field, 0))
    if ctx.auto_reply_id:
        result.outbox.append(ctx.auto_reply_id)


def retry_unfinished(store: Store, settings: Settings, account_ids=None) -> Processed:  # noqa: ANN001
    """Deliveries left pending by a crash, and failed ones with tries left."""
    rows: list[Row] = emails_q.unfinished_deliveries(store, settings.failed_retries, account_ids)
    if not rows:
        return Processed()
    log.info("retrying %d unfinished deliveries", len(rows))
    return process(store, settings, [r["id"] for r in rows])
