"""parent: link the email to a CRM record; the first hit wins (SPEC 4.5).

(a) References (or In-Reply-To) holding a Message-ID this system generated for a record;
(b) the parent of the email this one replies to; (c) the From address, then the first
Reply-To, then the first To: a contact with that address (its account unless b2c_mode),
else an account, else a lead. Several records sharing an address: the lowest id wins.
Opportunities and cases are reached only through threads and ``[#N]``.
"""

from __future__ import annotations

from espomail.mail import msgid
from espomail.pipeline.context import Context
from espomail.policy.parents import Parent, crm_account_of, pick_record, record_exists
from espomail.store import cases as cases_q

NAME = "parent"
Found = tuple[Parent, str]  # the parent and why


def run(ctx: Context) -> None:
    if not ctx.is_new:
        return
    found = _generated_reference(ctx) or _replied(ctx) or _by_address(ctx)
    if found is None:
        ctx.decide(NAME, "none", "no generated reference, no linked thread, no known address")
        return
    (kind, record_id), why = found
    ctx.parent = (kind, record_id)
    ctx.crm_account_id = crm_account_of(ctx.store, kind, record_id)
    ctx.decide(NAME, f"{kind}:{_shown(ctx, kind, record_id)}", why)


def _shown(ctx: Context, kind: str, record_id: int) -> int:
    if kind == "case":
        return cases_q.case_number(ctx.store, record_id) or record_id
    return record_id


def _generated_reference(ctx: Context) -> Found | None:
    parsed = ctx.parsed
    ids = list(reversed(parsed.references)) + ([parsed.in_reply_to] if parsed.in_reply_to else [])
    domains = ctx.lookups.message_id_domains(ctx.settings.message_id_domain)
    for message_id in ids:
        found = msgid.parse_generated(message_id, domains)
        if found and "type" in found and record_exists(ctx.store, found["type"], found["id"]):
            return (found["type"], found["id"]), f"References holds {message_id}, generated here for this record"
    return None


def _replied(ctx: Context) -> Found | None:
    if ctx.replied_parent is None:
        return None
    kind, record_id = ctx.replied_parent
    return (kind, record_id), f"the parent of email {ctx.replied_id}, which this one replies to"


def _by_address(ctx: Context) -> Found | None:
    parsed = ctx.parsed
    candidates = [("From", parsed.from_)] if parsed.from_ else []
    candidates += [("Reply-To", parsed.reply_to[0])] if parsed.reply_to else []
    candidates += [("To", parsed.to[0])] if parsed.to else []
    owners = ctx.lookups.records_for(address.address for _, address in candidates)
    for header, address in candidates:
        found = pick_record(owners[address.lower], ctx.settings.b2c_mode)
        if found is not None:
            (kind, record_id), owner = found
            return (kind, record_id), f"{header} {address.address} belongs to {owner}"
    return None
