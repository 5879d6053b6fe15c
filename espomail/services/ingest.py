"""Store first, process second: the two halves of importing mail, for fetch and import.

``store_messages`` commits raw messages (new emails, or a new delivery of a known one)
in one transaction together with whatever cursor the caller advances. ``process``
then runs the pipeline over each pending delivery, one savepoint each, so a failure is
kept as ``failed`` and the rest goes on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from espomail import timeutil
from espomail.config import Settings
from espomail.mail.parse import TRUNCATED_NOTE, ParsedEmail, key_for, parse_message
from espomail.model import UNFINISHED
from espomail.pipeline.lookups import Lookups
from espomail.pipeline.runner import process_delivery
from espomail.pipeline.writes import BatchWriter
from espomail.store import blobs
from espomail.store import emails as emails_q
from espomail.store.db import Row, Store, json_strings, to_json

log = logging.getLogger("espomail.ingest")


@dataclasses.dataclass
class Incoming:
    raw: bytes
    uid: int | None = None
    truncated: bool = False
    parsed: ParsedEmail | None = None
    sha256: str = ""
    location: blobs.Location | None = None  # where the raw source is, once it is written
    key: str = ""  # the de-duplication key: the Message-ID, or a fingerprint
    has_id: bool = True
    size: int = 0


def prepare(raw: bytes, uid: int | None = None, truncated: bool = False) -> Incoming:
    """Parse, hash and key a message before it is stored (see services.preparing)."""
    note = TRUNCATED_NOTE if truncated else None
    parsed = parse_message(raw, headers_only=truncated, note=note)
    key, has_id = key_for(parsed, raw)
    return Incoming(raw, uid, truncated, parsed, blobs.digest(raw), None, key, has_id, len(raw))


def write_raw(writer: blobs.PackWriter, items: list[Incoming]) -> None:
    """Append the raw sources not written yet to a pack and sync it."""
    missing = [item for item in items if item.location is None]
    for item, location in zip(missing, writer.append((item.sha256, item.raw) for item in missing), strict=True):
        item.location = location


@dataclasses.dataclass
class Stored:
    delivery_ids: list[int] = dataclasses.field(default_factory=list)
    already: int = 0  # messages this account had brought before: nothing to do
    # delivery id -> (raw, parsed): processing reuses them instead of reading back and parsing again
    prepared: dict[int, tuple[bytes, ParsedEmail]] = dataclasses.field(default_factory=dict)


def store_messages(store: Store, account_id: int | None, folder: str | None, messages: Iterable[Incoming]) -> Stored:
    """Insert the raw messages and their deliveries. The caller owns the transaction."""
    result = Stored()
    items = [item if item.parsed is not None else prepare(item.raw, item.uid, item.truncated) for item in messages]
    write_raw(store.raw.writer, items)
    known = emails_q.ids_by_message_ids(store, [item.key for item in items])
    fresh = {}
    for item in items:  # the first of several copies with one key is the one stored
        if item.key not in known:
            fresh.setdefault(item.key, item)
    known.update(
        emails_q.insert_fetched_many(store, [_first_fields(i.parsed, i.key, i.has_id, i) for i in fresh.values()])
    )
    seen_here = emails_q.delivered_to_account(store, list(known.values()), account_id)
    wanted = []
    for item in items:
        email_id = known[item.key]
        if email_id in seen_here:
            result.already += 1
            continue
        seen_here.add(email_id)
        wanted.append((email_id, item))
    delivery_ids = emails_q.insert_deliveries(
        store,
        [
            (email_id, account_id, folder, item.uid, item.location.pack, item.location.offset, item.location.size)
            for email_id, item in wanted
        ],
    )
    for delivery_id, (_email_id, item) in zip(delivery_ids, wanted, strict=True):
        result.delivery_ids.append(delivery_id)
        result.prepared[delivery_id] = (item.raw, item.parsed)
    return result


def _first_fields(parsed: ParsedEmail, key: str, has_id: bool, item: Incoming) -> tuple:
    """Every column its headers give, in the order of emails_q.FETCHED_COLUMNS."""
    names = {a.lower: a.name for a in [parsed.from_, *parsed.to, *parsed.cc, *parsed.reply_to] if a and a.name}
    return (
        key,
        int(has_id),
        parsed.subject[:998],
        parsed.from_.address if parsed.from_ else None,
        parsed.from_.name if parsed.from_ else None,
        _addresses(parsed.to),
        _addresses(parsed.cc),
        _addresses(parsed.bcc),
        _addresses(parsed.reply_to),
        to_json(names),
        timeutil.iso(parsed.date) if parsed.date else timeutil.now_iso(),
        parsed.in_reply_to,
        json_strings(parsed.references),
        item.size,
        int(item.truncated),
        item.sha256,
        item.location.pack,
        item.location.offset,
        int(parsed.is_auto_reply),
        int(parsed.is_auto_submitted),
        int(parsed.is_bounce),
    )


def _addresses(items) -> str:  # noqa: ANN001
    return json_strings([a.address for a in items])


# The counters of Processed, which a fetch's per-account result sums too.
COUNTS = ("new", "duplicates", "filtered", "failed", "cases_created", "auto_replies")


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
        for field in COUNTS:
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.outbox.extend(other.outbox)


def process(
    store: Store,
    settings: Settings,
    delivery_ids: Iterable[int],
    prepared: dict[int, tuple[bytes, ParsedEmail]] | None = None,
) -> Processed:
    """Run the pipeline over deliveries (one transaction, one savepoint per delivery)."""
    result = Processed()
    lookups = Lookups(store)
    delivery_ids = list(delivery_ids)
    with store.atomic():
        batch = BatchWriter(store)
        deliveries = emails_q.claim_deliveries(store, delivery_ids)  # another host's stay theirs
        emails = emails_q.lock_emails(store, {d["email_id"] for d in deliveries.values()})
        lookups.prefetch(parsed for _raw, parsed in (prepared or {}).values() if parsed is not None)
        for delivery_id in delivery_ids:
            delivery = deliveries.get(delivery_id)
            if delivery is None or delivery["state"] not in UNFINISHED:
                continue
            email = emails.pop(delivery["email_id"], None)
            if delivery["email_id"] in batch.touched:
                # The same email twice in one batch (a retry after a crash): the second
                # delivery must see what the first one wrote.
                batch.flush()
                lookups.forget_emails()
                email = None
            email = email or emails_q.email_by_id(store, delivery["email_id"])
            raw, parsed = (prepared or {}).get(delivery_id, (None, None))
            _count(result, process_delivery(store, settings, delivery, raw, parsed, lookups, email, batch))
        batch.flush()
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
