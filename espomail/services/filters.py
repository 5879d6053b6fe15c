"""Email filters: global, per mail account, per user inbox (SPEC 2, 4, 8).

Allowed actions: global filters skip; group account filters skip or move-to-group-folder;
personal account filters skip; user filters skip, move-to-folder or none (mark-read and
skip-notification are for user filters). Users manage filters of their own inbox and of
their own personal accounts; global and group account filters are for administrators.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from espomail import validate
from espomail.errors import InvalidInput, NotFound
from espomail.mail.filters import MAX_PATTERN_LENGTH, Criteria, check_pattern
from espomail.mail.parse import parse_message
from espomail.model import FilterAction, FilterScope, MailAccount
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.policy.filters import ACTIONS, Hit, allowed_actions, first_match, in_order, matches
from espomail.services.accounts import get_account
from espomail.services.folders import resolve_group, resolve_personal
from espomail.services.people import get_user
from espomail.store import accounts as accounts_q
from espomail.store import filters as q
from espomail.store import folders as folders_q
from espomail.store import people as people_q
from espomail.store.db import Row, Store


def filter_dict(store: Store, row: Row) -> dict:
    account = accounts_q.account_by_id(store, row["account_id"]) if row["account_id"] else None
    user = people_q.user_by_id(store, row["user_id"]) if row["user_id"] else None
    folder = folders_q.folder(store, row["folder_id"]) if row["folder_id"] else None
    return {
        "id": row["id"],
        "name": row["name"],
        "scope": row["scope"],
        "account": account.name if account else None,
        "user": user["username"] if user else None,
        "from": row["from_pattern"],
        "to": row["to_pattern"],
        "subject": row["subject_pattern"],
        "body_contains": json.loads(row["body_contains"]),
        "body_contains_all": json.loads(row["body_contains_all"]),
        "action": row["action"],
        "folder": folder["name"] if folder else None,
        "mark_read": bool(row["mark_read"]),
        "skip_notification": bool(row["skip_notification"]),
    }


def _facts(store: Store, scope: str, account: MailAccount | None, user_id: int | None) -> access.FilterFacts:
    account_facts = access.AccountFacts(account.kind, account.owner_id) if account is not None else None
    return access.FilterFacts(scope, account_facts, user_id)


def _require_manage(store: Store, actor: Actor, scope: str, account: MailAccount | None, user: Row | None) -> None:
    where = {
        FilterScope.GLOBAL: "global filters",
        FilterScope.ACCOUNT: f"filters of account '{account.name}'" if account else "",
        FilterScope.USER: f"filters of user '{user['username']}'" if user else "",
    }[scope]
    access.require(
        actor, "filter.manage", _facts(store, scope, account, user["id"] if user else None), f"manage {where}"
    )


def _check_patterns(max_length: int, **given: str | Sequence[str] | None) -> None:
    """Refuse a pattern or phrase that is too long or holds a line break (exit 2)."""
    for option, values in given.items():
        for value in [values] if isinstance(values, str) else values or ():
            reason = check_pattern(value, max_length)
            if reason:
                raise InvalidInput(f"--{option.rstrip('_')}: {reason}")


def add_filter(
    store: Store,
    actor: Actor,
    name: str,
    scope: str,
    account: str | None = None,
    user: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    subject: str | None = None,
    body_contains: Sequence[str] = (),
    body_contains_all: Sequence[str] = (),
    action: str = FilterAction.SKIP,
    folder: str | None = None,
    mark_read: bool = False,
    skip_notification: bool = False,
    max_pattern_length: int = MAX_PATTERN_LENGTH,
) -> dict:
    name = validate.name(name, "filter name", 100)
    action = validate.choice(action, ACTIONS, "--action")
    _check_patterns(max_pattern_length, from_=from_, to=to, subject=subject)
    _check_patterns(max_pattern_length, **{"body-contains": body_contains, "body-contains-all": body_contains_all})
    with store.atomic():
        account_row = get_account(store, account) if scope == FilterScope.ACCOUNT else None
        user_row = get_user(store, user) if scope == FilterScope.USER else None
        _require_manage(store, actor, scope, account_row, user_row)
        allowed = allowed_actions(scope, account_row.kind if account_row else None)
        if action not in allowed:
            where = {FilterScope.GLOBAL: "a global filter", FilterScope.USER: "a user filter"}.get(
                scope, f"a filter of {account_row.kind if account_row else ''} account"
            )
            raise InvalidInput(f"--action {action} is not allowed for {where}; allowed: {', '.join(allowed)}")
        if (mark_read or skip_notification) and scope != FilterScope.USER:
            raise InvalidInput("--mark-read and --skip-notification apply to user filters (--user U)")
        criteria = Criteria(from_, to, subject, tuple(body_contains), tuple(body_contains_all))
        if criteria.empty:
            raise InvalidInput("a filter needs at least one of --from, --to, --subject, --body-contains(-all)")
        folder_id = _folder(store, action, folder, user_row)
        filter_id = q.insert_filter(
            store,
            {
                "name": name,
                "scope": scope,
                "account_id": account_row.id if account_row else None,
                "user_id": user_row["id"] if user_row else None,
                "from_pattern": from_ or None,
                "to_pattern": to or None,
                "subject_pattern": subject or None,
                "body_contains": json.dumps(list(body_contains)),
                "body_contains_all": json.dumps(list(body_contains_all)),
                "action": action,
                "folder_id": folder_id,
                "mark_read": mark_read,
                "skip_notification": skip_notification,
            },
        )
        return filter_dict(store, q.filter_by_id(store, filter_id))


def _folder(store: Store, action: str, folder: str | None, user: Row | None) -> int | None:
    if action == FilterAction.MOVE_TO_FOLDER:
        if not folder:
            raise InvalidInput("--action move-to-folder needs --folder F (one of the user's folders)")
        return resolve_personal(store, user["id"], folder)["id"]
    if action == FilterAction.MOVE_TO_GROUP_FOLDER:
        if not folder:
            raise InvalidInput("--action move-to-group-folder needs --folder F (a group folder)")
        return resolve_group(store, folder)["id"]
    if folder:
        raise InvalidInput("--folder goes with --action move-to-folder or move-to-group-folder")
    return None


def get_filter(store: Store, ref: str) -> Row:
    if (filter_id := validate.as_id(ref)) is not None:
        row = q.filter_by_id(store, filter_id)
        if row is not None:
            return row
    rows = q.filters_by_name(store, ref)
    if not rows:
        raise NotFound(f"no filter '{ref}'; see 'espomail filter list'")
    if len(rows) > 1:
        raise InvalidInput(f"several filters are named '{ref}'; give the id ({', '.join(str(r['id']) for r in rows)})")
    return rows[0]


def _visible(actor: Actor, row: Row, store: Store) -> bool:
    if row["scope"] == FilterScope.GLOBAL:
        return True
    account = accounts_q.account_by_id(store, row["account_id"]) if row["account_id"] else None
    return access.allowed(actor, "filter.manage", _facts(store, row["scope"], account, row["user_id"]))


def list_filters(store: Store, actor: Actor) -> list[dict]:
    return [filter_dict(store, r) for r in q.all_filters(store) if _visible(actor, r, store)]


def show_filter(store: Store, actor: Actor, ref: str) -> dict:
    row = get_filter(store, ref)
    if not _visible(actor, row, store):
        access.require(actor, "admin", None, f"see filter '{ref}'")
    return filter_dict(store, row)


def filter_to_change(store: Store, actor: Actor, ref: str) -> Row:
    """The filter ``ref`` names, when ``actor`` may manage it."""
    row = get_filter(store, ref)
    account = accounts_q.account_by_id(store, row["account_id"]) if row["account_id"] else None
    user = people_q.user_by_id(store, row["user_id"]) if row["user_id"] else None
    _require_manage(store, actor, row["scope"], account, user)
    return row


def remove_filter(store: Store, actor: Actor, ref: str) -> dict:
    with store.atomic():
        row = filter_to_change(store, actor, ref)
        result = filter_dict(store, row)
        q.delete_filter(store, row["id"])
        return result


# -- applying filters (used by the pipeline and by `filter test`) -------------------------------


def _candidates(store: Store, account_id: int | None, user_id: int | None = None) -> list[Row]:
    """Global filters, then the account's, then the user's, each scope in the order tried."""
    candidates = in_order(q.global_filters(store))
    if account_id is not None:
        candidates += in_order(q.account_filters(store, account_id))
    if user_id is not None:
        candidates += in_order(q.user_filters(store, user_id))
    return candidates


def test_file(store: Store, actor: Actor, path: Path, account: str | None, user: str | None) -> dict:
    """What the filters would do with the message in ``path``; stores nothing."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no file {path}") from None
    parsed = parse_message(raw)
    account_row = get_account(store, account) if account else None
    user_row = get_user(store, user) if user else None
    if user_row is not None:
        access.require(actor, "user.self", access.OwnerFacts(user_row["id"]), f"test the filters of user '{user}'")
    if account_row is not None:
        facts = _facts(store, FilterScope.ACCOUNT, account_row, None)
        access.require(actor, "filter.manage", facts, f"test the filters of account '{account_row.name}'")
    result: dict = {"subject": parsed.subject, "from": parsed.from_.address if parsed.from_ else None}
    account_id = account_row.id if account_row else None
    hit = first_match(_candidates(store, account_id), parsed)
    result["account"] = account_row.name if account_row else None
    result["account_decision"] = _decision(store, hit, "import")
    if user_row is not None:
        result["user"] = user_row["username"]
        user_hit = first_match(in_order(q.user_filters(store, user_row["id"])), parsed)
        result["user_decision"] = _decision(store, user_hit, "inbox")
    result["matching_filters"] = [
        {**filter_dict(store, row), "reasons": reasons}
        for row in _candidates(store, account_id, user_row["id"] if user_row else None)
        for matched, reasons in [matches(row, parsed)]
        if matched
    ]
    return result


def _decision(store: Store, hit: Hit | None, default: str) -> dict:
    if hit is None:
        return {"action": default, "filter": None, "reasons": []}
    row, reasons = hit
    return {"action": row["action"], "filter": filter_dict(store, row)["name"], "reasons": reasons}
