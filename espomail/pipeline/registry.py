"""The steps by name, and the import pipeline as data: the order is the specification.

Each line says why the step sits where it does (SPEC 4). Parsing comes before the
filters (unlike SPEC 4's numbering) because it is cheap, never raises, and the filters
need decoded subjects and bodies; nothing is written before the filters decide.
"""

from __future__ import annotations

from collections.abc import Callable

from espomail.pipeline.context import Context
from espomail.pipeline.steps import (
    account_filter,
    assign_notice,
    auto_reply,
    email_to_case,
    finish_stopped,
    loop_guard,
    notify,
    parent,
    parse,
    save,
    thread,
    user_filter,
    users_teams,
)

IMPORT_PIPELINE: tuple[str, ...] = (
    "parse",  # cheap, never raises; every later step needs decoded values
    "loop-guard",  # our own system mail coming back is dropped before anything is written
    "account-filter",  # global, then the account's filters: skip means this account does not import it
    "thread",  # In-Reply-To/References among stored emails: the replied email and its teams
    "parent",  # the CRM record: our generated References, the replied email's parent, addresses
    "users-teams",  # who the email reaches: addresses, the account's users and teams
    "email-to-case",  # before user filters: a case's assignee is a user the email reaches too
    "user-filter",  # each reached user's own filters: trash, folder, read, no notification
    "save",  # fields (new emails) and relations (every delivery) in one transaction
    "auto-reply",  # after the case exists: its number goes in the subject; queued, sent after commit
    "assign-notice",  # the new case's assignee, if they opted in, is mailed (queued like auto-replies)
    "notify",  # stream note on the parent; followers and newly reached users are told once
)

_MODULES = (
    parse,
    loop_guard,
    account_filter,
    thread,
    parent,
    users_teams,
    email_to_case,
    user_filter,
    save,
    auto_reply,
    assign_notice,
    notify,
    finish_stopped,
)
STEPS: dict[str, Callable[[Context], None]] = {module.NAME: module.run for module in _MODULES}
