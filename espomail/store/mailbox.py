"""SQL for listing emails: folders per user, read scopes, parents, accounts, pages.

Every list is a keyset-friendly ``ORDER BY date DESC, id DESC LIMIT/OFFSET`` over an
index: a user's folders go through ``email_users_mailbox``; the administrator's "all"
through ``emails_by_date``; a parent through ``emails_by_parent``. Dates may be NULL: the
order says where NULLs go (last, as SQLite puts them), which PostgreSQL's indexes of
these columns match (NULLS FIRST, read backwards). The inbox orders by ``folder_id``
(always NULL there) first: it tells PostgreSQL that the index is in date order under that
condition (SQLite sees it from ``IS NULL``).
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


def list_emails(store: Store, query: Query) -> list[Row]:
    where, params = [], []
    if (query.user_id is not None and query.folder != "all") or query.folder_id or query.group_folder_id:
        sql = "SELECT e.* FROM email_users eu JOIN emails e ON e.id = eu.email_id"
        where.append("eu.user_id = ?")
        params.append(query.user_id)
        where.extend(_folder_conditions(query, params))
        order = "eu.sort_date DESC NULLS LAST, eu.email_id DESC"
        if query.folder == "inbox" and query.folder_id is None and query.group_folder_id is None:
            order = "eu.folder_id DESC NULLS LAST, " + order
    else:
        sql = "SELECT e.* FROM emails e"
        where.extend(_scope_conditions(query, params))
        order = "e.date_sent DESC NULLS LAST, e.id DESC"
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
    sql += " WHERE " + " AND ".join(where) + f" ORDER BY {order} LIMIT ? OFFSET ?"
    return store.rows(sql, [*params, query.limit, query.offset])


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
    return [
        "(EXISTS (SELECT 1 FROM email_users eu WHERE eu.email_id = e.id AND eu.user_id = ?)"
        f" OR EXISTS (SELECT 1 FROM email_teams et WHERE et.email_id = e.id AND et.team_id IN ({marks})))"
    ]
