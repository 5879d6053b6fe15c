"""``email import`` (files, mbox, Maildir: migrations from other systems) and ``email reprocess``.

Import runs the same store-first pipeline as fetch, without IMAP, and by default without
side effects on the outside world (SPEC 11): no auto-replies unless
``--send-auto-replies``, no new cases unless ``--create-cases`` (mail is still linked to
existing cases); notifications only for recent mail. The deliveries remember this, so a
later retry of a failed one keeps to it. Files of a directory that are not mail are
skipped and listed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from espomail.config import Settings
from espomail.errors import InvalidInput
from espomail.mail.limits import ParseLimits
from espomail.mail.parse import parse_message
from espomail.mail.sources import Source, read_source
from espomail.model import UNFINISHED, ProcessingState
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services import outbox
from espomail.services.accounts import get_account
from espomail.services.emails import get_email
from espomail.services.ingest import Incoming, Processed, SideEffects, process, store_messages
from espomail.store import emails as emails_q
from espomail.store.db import Store

SHOWN_SKIPPED = 10  # names an error message lists before "and N more"
SILENT = SideEffects(auto_replies=False, cases=False)  # the default of 'email import'


@dataclasses.dataclass
class _Run:
    store: Store
    settings: Settings
    account_id: int | None
    folder: str
    side_effects: SideEffects
    total: Processed = dataclasses.field(default_factory=Processed)
    count: int = 0
    already: int = 0
    skipped: list[Source] = dataclasses.field(default_factory=list)


def import_path(
    store: Store,
    actor: Actor,
    settings: Settings,
    path: Path,
    account: str | None = None,
    side_effects: SideEffects = SILENT,
) -> dict:
    access.require(actor, "admin", None, "import mail")
    account_row = get_account(store, account) if account else None
    run = _Run(store, settings, account_row.id if account_row else None, f"import:{path.name}", side_effects)
    batch: list[Incoming] = []
    for source in read_source(path):
        if source.skipped:
            run.skipped.append(source)
            continue
        batch.append(Incoming(source.raw))
        run.count += 1
        if len(batch) >= settings.batch_size:
            _import_batch(run, batch)
            batch = []
    if batch:
        _import_batch(run, batch)
    if run.count == 0:
        raise InvalidInput(_no_messages(path, run.skipped))
    total = run.total
    return {
        "messages": run.count,
        "new": total.new,
        "duplicates": total.duplicates + run.already,
        "filtered": total.filtered,
        "failed": total.failed,
        "cases_created": total.cases_created,
        "auto_replies": total.auto_replies,
        "auto_replies_failed": total.auto_replies_failed,
        "skipped": [source.name for source in run.skipped],
    }


def _no_messages(path: Path, skipped: list[Source]) -> str:
    if not skipped:
        return f"{path} holds no messages"
    names = ", ".join(f"{s.name} ({s.skipped})" for s in skipped[:SHOWN_SKIPPED])
    more = f" and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
    return f"{path} holds no mail: skipped {len(skipped)} file(s) that do not look like mail: {names}{more}"


def _import_batch(run: _Run, batch: list[Incoming]) -> None:
    limits = ParseLimits.from_settings(run.settings)
    with run.store.atomic():
        stored = store_messages(run.store, run.account_id, run.folder, batch, limits, run.side_effects)
    processed = process(run.store, run.settings, stored.delivery_ids, stored.prepared)
    processed.settle(outbox.deliver(run.store, run.settings, processed.outbox))
    run.total.add(processed)
    run.already += stored.already


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
