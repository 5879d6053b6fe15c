"""account-filter: global filters, then the account's own; the first match decides.

Skip means this account does not import the message (another account may). For a group
account, move-to-group-folder puts the email in that group folder (its teams and their
users are added by users-teams).
"""

from __future__ import annotations

from espomail.model import DeliveryState, FilterAction
from espomail.pipeline.context import Context
from espomail.policy.filters import first_match, needs_body

NAME = "account-filter"


def run(ctx: Context) -> None:
    account_id = ctx.account.id if ctx.account is not None else None
    rows = ctx.lookups.account_filters(account_id)
    parsed = ctx.complete() if needs_body(rows) else ctx.parsed
    hit = first_match(rows, parsed)
    if hit is None:
        ctx.decide(NAME, "import", "no global or account filter matches")
        return
    row, reasons = hit
    detail = {"filter": row["name"], "scope": row["scope"], "why": reasons}
    if row["action"] == FilterAction.SKIP:
        ctx.decide(NAME, "skipped", detail)
        ctx.stop(DeliveryState.FILTERED)
        return
    if row["action"] == FilterAction.MOVE_TO_GROUP_FOLDER:
        ctx.group_folder_id = row["folder_id"]
        ctx.decide(NAME, "group folder", detail)
