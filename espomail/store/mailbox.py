"""SQL for listing emails: folders per user, read scopes, parents, accounts, pages.

Every list is ``ORDER BY date DESC NULLS LAST, id DESC`` over an index, read with
LIMIT/OFFSET or, to go on after a page (``--all``), with a keyset (``Query.after``: the
date and id of the last row; undated emails come last on every engine): a user's folders
go through ``email_users_mailbox``; the administrator's "all" through ``emails_by_date``; a
parent through ``emails_by_parent``. ``count_emails`` gives a list's total. The inbox orders
by ``folder_id`` (always NULL there) first: it tells PostgreSQL that the index is in date
order under that condition (SQLite sees it from ``IS NULL``).
"""

from __future__ import annotations

import dataclasses

from espomail.model import AccessLevel, ProcessingState
from espomail.store.db import Row, Store

SPECIAL_FOLDERS = ("inbox", "sent", "archive", "trash", "all")


@dataclasses.dataclass
class Query:
    user_id: int | None = None  # the acting user (None: the system administrator)
    scope: AccessLevel = AccessLevel.ALL  # the read level: all, team or own
    team_ids: tuple[int, ...] = ()
    folder: str = "all"  # inbox | sent | archive | trash | all
    folder_id: int | None = None  # a personal folder of the user
    group_folder_id: int | None = None
    parent: tuple[str, int] | None = None
    account_id: int | None = None
    state: ProcessingState = ProcessingState.PROCESSED
    limit: int = 50
    offset: int = 0
    after: tuple[str | None, int] | None = None  # keyset: the (sort date, id) of the row to continue after


def list_emails(store: Store, query: Query) -> list[Row]:
    """A page of the list, newest first; each row is an email with its ``sort_key`` (the date
    the list is ordered by). With ``query.after`` the page starts after that row (keyset)."""
    selected, params, when, ident = _selected(query)
    sql = f"SELECT e.*, {when} AS sort_key {selected}"
    if query.after is None:
        order = f" ORDER BY {_lead(query)}{when} DESC NULLS LAST, {ident} DESC LIMIT ? OFFSET ?"
        return store.rows(sql + order, [*params, query.limit, query.offset])
    last_date, last_id = query.after
    if last_date is None:  # among the undated ones, which come last
        return store.rows(
            sql + f" AND {when} IS NULL AND {ident} < ? ORDER BY {ident} DESC LIMIT ?", [*params, last_id, query.limit]
        )
    rows = store.rows(
        sql + f" AND {when} <= ? AND NOT ({when} = ? AND {ident} >= ?) ORDER BY {when} DESC, {ident} DESC LIMIT ?",
        [*params, last_date, last_date, last_id, query.limit],
    )
    if len(rows) < query.limit:
        rows += store.rows(
            sql + f" AND {when} IS NULL ORDER BY {ident} DESC LIMIT ?", [*params, query.limit - len(rows)]
        )
    return rows


def count_emails(store: Store, query: Query, at_most: int) -> tuple[int, bool]:
    """How many emails the query's whole list has: ``(n, True)``, or ``(at_most, False)`` when
    it has more. The administrator's whole store is counted exactly from indexes; any other
    list by reading at most ``at_most + 1`` of its rows in list order (a user's inbox of 40,000
    emails costs 256 ms to count whole on the million-email store, 8 ms up to 1,000)."""
    if _whole_store(query):
        if query.state == ProcessingState.PROCESSED:  # all minus the few unfinished (emails_unfinished)
            sql = "SELECT (SELECT COUNT(*) FROM emails) - (SELECT COUNT(*) FROM emails WHERE state <> 'processed')"
            return store.value(sql), True
        sql = "SELECT COUNT(*) FROM emails WHERE state = ? AND state <> 'processed'"  # emails_unfinished
        return store.value(sql, [query.state]), True
    selected, params, when, ident = _selected(query)
    counted = store.value(
        f"SELECT COUNT(*) FROM (SELECT 1 {selected} ORDER BY {_lead(query)}{when} DESC NULLS LAST, {ident} DESC"
        " LIMIT ?) AS page",
        [*params, at_most + 1],
    )
    return (counted, True) if counted <= at_most else (at_most, False)


def _lead(query: Query) -> str:
    """The first ORDER BY column of the inbox (see the module's docstring), else nothing."""
    inbox = query.folder == "inbox" and query.folder_id is None and query.group_folder_id is None
    return "eu.folder_id DESC NULLS LAST, " if inbox and _by_user(query) else ""


def _by_user(query: Query) -> bool:
    return (query.user_id is not None and query.folder != "all") or bool(query.folder_id or query.group_folder_id)


def _whole_store(query: Query) -> bool:
    unscoped = query.user_id is None or query.scope == AccessLevel.ALL
    filtered = query.parent or query.account_id is not None
    return unscoped and not _by_user(query) and not filtered


def _selected(query: Query) -> tuple[str, list, str, str]:
    """``FROM ... WHERE ...`` of the query's list, its parameters, and the two columns it is
    ordered by (the date, then the email id)."""
    where, params = [], []
    if _by_user(query):
        sql = "FROM email_users eu JOIN emails e ON e.id = eu.email_id"
        where.append("eu.user_id = ?")
        params.append(query.user_id)
        where.extend(_folder_conditions(query, params))
        when, ident = "eu.sort_date", "eu.email_id"
    else:
        sql = "FROM emails e"
        where.extend(_scope_conditions(query, params))
        when, ident = "e.date_sent", "e.id"
    where.append("e.state = ?")
    params.append(query.state)
    if query.parent:
        kind, record_id = query.parent
        if kind == "account":
            # crm_account_id is the account itself for an account parent, and the account
            # of a contact/opportunity/case parent: one index, read in date order.
            where.append("e.crm_account_id = ?")
            params.append(record_id)
        else:
            where.append("e.parent_type = ? AND e.parent_id = ?")
            params += [kind, record_id]
    if query.account_id is not None:
        where.append(
            "EXISTS (SELECT 1 FROM email_deliveries d"
            " WHERE d.email_id = e.id AND d.account_id = ? AND d.state = 'done')"
        )
        params.append(query.account_id)
    return f"{sql} WHERE {' AND '.join(where)}", params, when, ident


def _folder_conditions(query: Query, params: list) -> list[str]:
    if query.folder_id is not None:
        params.append(query.folder_id)
        return ["eu.folder_id = ?", "eu.in_trash = 0"]
    if query.group_folder_id is not None:
        params.append(query.group_folder_id)
        return ["e.group_folder_id = ?", "eu.in_trash = 0"]
    if query.folder == "inbox":
        return [
            "eu.in_trash = 0",
            "eu.in_archive = 0",
            "eu.folder_id IS NULL",
            "eu.is_sender = 0",
            "e.group_folder_id IS NULL",
        ]
    if query.folder == "sent":
        return ["eu.in_trash = 0", "eu.is_sender = 1"]
    if query.folder == "archive":
        return ["eu.in_trash = 0", "eu.in_archive = 1"]
    if query.folder == "trash":
        return ["eu.in_trash = 1"]
    return []


def _scope_conditions(query: Query, params: list) -> list[str]:
    if query.user_id is None or query.scope == AccessLevel.ALL:
        return []
    if query.scope == AccessLevel.OWN or not query.team_ids:
        params.append(query.user_id)
        return ["EXISTS (SELECT 1 FROM email_users eu WHERE eu.email_id = e.id AND eu.user_id = ?)"]
    marks = ", ".join("?" for _ in query.team_ids)
    params.append(query.user_id)
    params.extend(query.team_ids)
    # LIMIT 1 OFFSET 0: each EXISTS stays a probe of one index per email read in list order.
    # Without it PostgreSQL hashes every email of the user and of the teams first (all of
    # them, however short the page): 1.2 s for a team reader on the million-email store,
    # 41 ms instead at 200,000 emails for the 1,001-row count. SQLite probes either way.
    return [
        "(EXISTS (SELECT 1 FROM email_users eu WHERE eu.email_id = e.id AND eu.user_id = ? LIMIT 1 OFFSET 0)"
        f" OR EXISTS (SELECT 1 FROM email_teams et WHERE et.email_id = e.id AND et.team_id IN ({marks})"
        " LIMIT 1 OFFSET 0))"
    ]
