"""Which filters apply, in which order, and whether one matches (SPEC 4).

Scopes are checked in order: global, then the account's, then (per reached user) the
user's. Within one scope the first match decides, skip filters first, then the moves,
then the rest (``in_order``); ties by id. Matching itself (wildcards, body phrases) is
``espomail.mail.filters``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from espomail.mail.filters import Criteria, match
from espomail.mail.parse import ParsedEmail
from espomail.model import AccountKind, FilterAction, FilterScope
from espomail.store.db import Row

ACTIONS = tuple(action.value for action in FilterAction)
# The rank of each action within a scope (lower is tried first).
ACTION_RANK = {FilterAction.SKIP: 0, FilterAction.MOVE_TO_GROUP_FOLDER: 1, FilterAction.MOVE_TO_FOLDER: 1}
Hit = tuple[Row, list[str]]  # the filter and why it matched


def allowed_actions(scope: str, account_kind: str | None) -> tuple[FilterAction, ...]:
    """The actions a filter of ``scope`` may take (an account filter: by the account's kind)."""
    if scope == FilterScope.GLOBAL:
        return (FilterAction.SKIP,)
    if scope == FilterScope.ACCOUNT:
        if account_kind == AccountKind.GROUP:
            return (FilterAction.SKIP, FilterAction.MOVE_TO_GROUP_FOLDER)
        return (FilterAction.SKIP,)
    return (FilterAction.SKIP, FilterAction.MOVE_TO_FOLDER, FilterAction.NONE)


def in_order(rows: Iterable[Row]) -> list[Row]:
    """The filters of one scope in the order they are tried."""
    return sorted(rows, key=lambda row: (ACTION_RANK.get(row["action"], 2), row["id"]))


def needs_body(rows: Iterable[Row]) -> bool:
    """Whether any of these filters looks at the body (then a full parse is needed)."""
    return any(Criteria.from_row(row).needs_body for row in rows)


def matches(row: Row, parsed: ParsedEmail) -> tuple[bool, list[str]]:
    return match(Criteria.from_row(row), parsed)


def first_match(rows: Sequence[Row], parsed: ParsedEmail) -> Hit | None:
    """The first filter of ``rows`` (already in order) that matches, and why."""
    for row in rows:
        matched, reasons = matches(row, parsed)
        if matched:
            return row, reasons
    return None
