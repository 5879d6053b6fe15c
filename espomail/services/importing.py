"""``email import`` (files, mbox, Maildir: migrations from other systems) and ``email reprocess``.

Import runs the same store-first pipeline as fetch, without IMAP.
"""

from __future__ import annotations

from pathlib import Path

from espomail.config import Settings
from espomail.errors import InvalidInput
from espomail.mail.limits import ParseLimits
from espomail.mail.parse import parse_message
from espomail.mail.sources import read_source
from espomail.model import UNFINISHED, ProcessingState
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services import outbox
from espomail.services.accounts import get_account
from espomail.services.emails import get_email
from espomail.services.ingest import Incoming, Processed, process, store_messages
from espomail.store import emails as emails_q
from espomail.store.db import Store


def import_path(store: Store, actor: Actor, settings: Settings, path: Path, account: str | None = None) -> dict:
    access.require(actor, "admin", None, "import mail")
    account_row = get_account(store, account) if account else None
    account_id = account_row.id if account_row else None
    total = Processed()
    count = already = 0
    batch: list[Incoming] = []
    skipped: list[str] = []
    for source in read_source(path):
        if source.skipped:
            skipped.append(source.name)
            continue
        batch.append(Incoming(source.raw))
        count += 1
        if len(batch) >= settings.batch_size:
            already += _import_batch(store, settings, account_id, path, batch, total)
            batch = []
    if batch:
        already += _import_batch(store, settings, account_id, path, batch, total)
    if count == 0:
        raise InvalidInput(f"{path} holds no messages")
    return {
        "messages": count,
        "new": total.new,
        "duplicates": total.duplicates + already,
        "filtered": total.filtered,
        "failed": total.failed,
        "cases_created": total.cases_created,
        "auto_replies": total.auto_replies,
        "skipped": skipped,
    }


def _import_batch(store, settings, account_id, path, batch, total) -> int:  # noqa: ANN001
    with store.atomic():
        stored = store_messages(store, account_id, f"import:{path.name}", batch, ParseLimits.from_settings(settings))
    processed = process(store, settings, stored.delivery_ids, stored.prepared)
    outbox.deliver(store, settings, processed.outbox)
    total.add(processed)
    return stored.already


def reprocess(store: Store, actor: Actor, settings: Settings, email_id: int | None, failed: bool) -> dict:
    """Retry failed (or pending) deliveries; for a processed email, refresh its parse."""
    access.require(actor, "admin", None, "reprocess emails")
    if (email_id is None) == (not failed):
        raise InvalidInput("give an email ID or --failed")
    if failed:
        rows = emails_q.failed_deliveries(store)
        result = process(store, settings, [r["id"] for r in rows])
        outbox.deliver(store, settings, result.outbox)
        return _summary(len(rows), result)
    email = get_email(store, email_id)
    rows = [d for d in emails_q.deliveries_of(store, email_id) if d["state"] in UNFINISHED]
    if rows:
        result = process(store, settings, [r["id"] for r in rows])
        outbox.deliver(store, settings, result.outbox)
        return _summary(len(rows), result)
    if email["state"] != ProcessingState.PROCESSED:
        raise InvalidInput(f"email {email_id} is {email['state']}: there is nothing to reprocess")
    return _reparse(store, email)


def _reparse(store: Store, email) -> dict:  # noqa: ANN001
    parsed = parse_message(emails_q.raw_of(store, email["id"]), headers_only=bool(email["truncated"]))
    with store.atomic():
        emails_q.replace_attachments(store, email["id"], parsed.attachments)
        emails_q.insert_events(store, email["id"], None, [("reprocess", "reparsed", "attachments")])
    return {"deliveries": 0, "new": 0, "duplicates": 0, "filtered": 0, "failed": 0, "reparsed": 1}


def _summary(count: int, result: Processed) -> dict:
    return {
        "deliveries": count,
        "new": result.new,
        "duplicates": result.duplicates,
        "filtered": result.filtered,
        "failed": result.failed,
    }
