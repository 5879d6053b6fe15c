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
from espomail.mail import copies
from espomail.mail.limits import DEFAULT, ParseLimits
from espomail.mail.parse import ParsedEmail, key_for, parse_stored
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
    arrived_at: str | None = None  # the server's INTERNALDATE (ISO), for the side-effects age rule


@dataclasses.dataclass(frozen=True)
class SideEffects:
    """What the deliveries of one store may cause (``email import`` without its flags: neither)."""

    auto_replies: bool = True
    cases: bool = True


FETCHED = SideEffects()


def prepare(raw: bytes, uid: int | None = None, truncated: bool = False, limits: ParseLimits = DEFAULT) -> Incoming:
    """Parse, hash and key a message before it is stored (see services.preparing)."""
    parsed = parse_stored(raw, truncated, limits)
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


def store_messages(
    store: Store,
    account_id: int | None,
    folder: str | None,
    messages: Iterable[Incoming],
    limits: ParseLimits = DEFAULT,
    side_effects: SideEffects = FETCHED,
) -> Stored:
    """Insert the raw messages and their deliveries. The caller owns the transaction."""
    result = Stored()
    items = [
        item if item.parsed is not None else prepare(item.raw, item.uid, item.truncated, limits) for item in messages
    ]
    write_raw(store.raw.writer, items)
    separate = _key_other_content(store, items)
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
    store.raw.settle([item.location for item in items if item.location], _unused(items, [i for _e, i in wanted]))
    delivery_ids = emails_q.insert_deliveries(
        store,
        [
            (
                email_id,
                account_id,
                folder,
                item.uid,
                item.location.pack,
                item.location.offset,
                item.location.size,
                item.arrived_at,
                int(side_effects.auto_replies),
                int(side_effects.cases),
            )
            for email_id, item in wanted
        ],
    )
    for delivery_id, (email_id, item) in zip(delivery_ids, wanted, strict=True):
        result.delivery_ids.append(delivery_id)
        result.prepared[delivery_id] = (item.raw, item.parsed)
        if id(item) in separate:
            emails_q.insert_events(store, email_id, delivery_id, [SEPARATE_EVENT])
    return result


def _unused(items: list[Incoming], wanted: list[Incoming]) -> list[blobs.Location]:
    """The sources uploaded ahead for copies that are not stored (this account had them)."""
    kept = {id(item) for item in wanted}
    return [item.location for item in items if id(item) not in kept and item.location is not None]


SEPARATE_EVENT = (
    "store",
    "separate email",
    "another email has this Message-ID but other content: this copy is stored on its own (docs/access.md)",
)


def _key_other_content(store: Store, items: list[Incoming]) -> set[int]:
    """A copy may share the email stored under its Message-ID (or the first copy of this
    batch with it) only when its content is the same (mail/copies.py); any other copy gets a
    variant key of its own. Returns the ``id()`` of the copies so keyed."""
    stored = emails_q.stored_under(store, [item.key for item in items])
    first: dict[str, Incoming] = {}
    digests = _Digests(store)
    separate = set()
    for item in items:
        row = stored.get(item.key)
        if row is not None:
            same = row["raw_sha256"] == item.sha256 or digests.of_email(row) == digests.of(item)
        else:
            other = first.setdefault(item.key, item)
            same = other is item or other.sha256 == item.sha256 or digests.of(other) == digests.of(item)
        if not same:
            item.key = copies.variant_key(item.key, digests.of(item))
            separate.add(id(item))
    return separate


class _Digests:
    """Content digests of incoming copies and stored emails, each computed once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.items: dict[int, str] = {}
        self.emails: dict[int, str] = {}

    def of(self, item: Incoming) -> str:
        if id(item) not in self.items:
            self.items[id(item)] = copies.content_digest(item.raw or self.store.raw.read(item.location))
        return self.items[id(item)]

    def of_email(self, row: Row) -> str:
        if row["id"] not in self.emails:
            place = (row["raw_pack"], row["raw_offset"], row["raw_size"])
            self.emails[row["id"]] = copies.content_digest(self.store.raw.read(place) if row["raw_pack"] else b"")
        return self.emails[row["id"]]


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
COUNTS = ("new", "duplicates", "filtered", "failed", "cases_created", "auto_replies", "auto_replies_failed")


@dataclasses.dataclass
class Processed:
    new: int = 0
    duplicates: int = 0
    filtered: int = 0
    failed: int = 0
    cases_created: int = 0
    auto_replies: int = 0  # queued; once delivered (``settle``): accepted by the server
    auto_replies_failed: int = 0  # not built, or not sent (Failed, retried later within send_retries)
    outbox: list[int] = dataclasses.field(default_factory=list)  # the auto-replies queued
    notices: list[int] = dataclasses.field(default_factory=list)  # assignment notices queued (counted nowhere)

    def add(self, other: Processed) -> None:
        for field in COUNTS:
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.outbox.extend(other.outbox)
        self.notices.extend(other.notices)

    def send_queued(self, store: Store, settings: Settings, guard=None) -> None:  # noqa: ANN001 - outbox.Guard
        """Send what this batch queued, after its commit: the auto-replies (then ``settle``)
        and the assignment notices, whose outcome changes no figure."""
        from espomail.services import outbox

        self.settle(outbox.deliver(store, settings, self.outbox, guard))
        if self.notices:
            outbox.deliver(store, settings, self.notices, guard)

    def settle(self, delivered) -> None:  # noqa: ANN001 - services.outbox.Delivered
        """After the outbox tried this batch's auto-replies: those not sent move from
        ``auto_replies`` to ``auto_replies_failed``."""
        not_sent = min(self.auto_replies, delivered.not_sent)
        self.auto_replies -= not_sent
        self.auto_replies_failed += not_sent


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
    for field in COUNTS:
        setattr(result, field, getattr(result, field) + ctx.counters.get(field, 0))
    if ctx.auto_reply_id:
        result.outbox.append(ctx.auto_reply_id)
    result.notices.extend(ctx.notice_ids)


def retry_unfinished(store: Store, settings: Settings, account_ids=None) -> Processed:  # noqa: ANN001
    """Deliveries left pending by a crash, and failed ones with tries left."""
    rows: list[Row] = emails_q.unfinished_deliveries(store, settings.failed_retries, account_ids)
    if not rows:
        return Processed()
    log.info("retrying %d unfinished deliveries", len(rows))
    return process(store, settings, [r["id"] for r in rows])
