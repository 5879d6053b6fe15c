"""SQL for cases, their teams and attachments, and the figures distribution needs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from espomail.model import NOT_ACTUAL
from espomail.store.db import Row, Store, rows_by_id, values_by_id
from espomail.timeutil import now_iso


def case_by_number(store: Store, number: int) -> Row | None:
    return store.row("SELECT * FROM cases WHERE number = ?", [number])


def case_by_id(store: Store, case_id: int) -> Row | None:
    return store.row("SELECT * FROM cases WHERE id = ?", [case_id])


def case_id_by_number(store: Store, number: int) -> int | None:
    return store.value("SELECT id FROM cases WHERE number = ?", [number])


def case_numbers(store: Store, case_ids: Iterable[int | None]) -> dict[int, int]:
    return values_by_id(store, "cases", "number", case_ids)


def team_ids_of(store: Store, case_ids: Iterable[int]) -> dict[int, list[int]]:
    """``team_ids`` of several cases at once."""
    rows = rows_by_id(store, "SELECT case_id, team_id FROM case_teams WHERE case_id IN", case_ids, key="case_id")
    return {case_id: sorted(r["team_id"] for r in found) for case_id, found in rows.items()}


def email_ids_of(store: Store, case_ids: Iterable[int]) -> dict[int, list[int]]:
    """``email_ids`` of several cases at once, each in the same order."""
    rows = rows_by_id(
        store,
        "SELECT parent_id, id FROM emails WHERE parent_type = 'case' AND parent_id IN",
        case_ids,
        key="parent_id",
        order="ORDER BY date_sent NULLS FIRST, id",
    )
    return {case_id: [r["id"] for r in found] for case_id, found in rows.items()}


def case_number(store: Store, case_id: int) -> int | None:
    return store.value("SELECT number FROM cases WHERE id = ?", [case_id])


def case_exists(store: Store, case_id: int) -> bool:
    return store.value("SELECT 1 FROM cases WHERE id = ?", [case_id]) is not None


def account_of(store: Store, case_id: int) -> int | None:
    """The CRM account of a case."""
    return store.value("SELECT account_id FROM cases WHERE id = ?", [case_id])


# The advisory lock that makes case numbers consecutive on PostgreSQL (SQLite's write lock does it there).
CASE_NUMBER_LOCK = 0x6573706F_63617365


def insert_case(store: Store, values: dict) -> int:
    """A new case; its id and number are the next number (1, 2, 3 ...).

    The caller holds the transaction; on PostgreSQL an advisory lock held until it ends
    keeps two hosts from taking the same number (no gaps, as on SQLite)."""
    if store.engine == "postgresql":
        store.execute("SELECT pg_advisory_xact_lock(?)", [CASE_NUMBER_LOCK])
    number = (store.value("SELECT MAX(number) FROM cases") or 0) + 1
    stamp = now_iso()
    store.insert("cases", {**values, "id": number, "number": number, "created_at": stamp, "updated_at": stamp})
    return number


def update_case(store: Store, case_id: int, values: dict) -> None:
    store.update("cases", case_id, {**values, "updated_at": now_iso()})


def team_ids(store: Store, case_id: int) -> list[int]:
    return store.column("SELECT team_id FROM case_teams WHERE case_id = ? ORDER BY team_id", [case_id])


def add_teams(store: Store, case_id: int, ids: Iterable[int]) -> None:
    store.executemany(
        "INSERT INTO case_teams (case_id, team_id) VALUES (?, ?) ON CONFLICT (case_id, team_id) DO NOTHING",
        [(case_id, t) for t in ids],
    )


def copy_attachments(store: Store, case_id: int, email_id: int, attachments: Iterable) -> None:
    store.executemany(
        """INSERT INTO attachments (case_id, source_email_id, part, filename, content_type, size, is_inline,
           content_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (case_id, email_id, a.part, a.filename, a.content_type, a.size, int(a.is_inline), a.content_id)
            for a in attachments
        ],
    )


def attachments_of(store: Store, case_id: int) -> list[Row]:
    return store.rows("SELECT * FROM attachments WHERE case_id = ? ORDER BY id", [case_id])


def last_assignee_among(store: Store, user_ids: Sequence[int]) -> int | None:
    """The assignee of the newest case (highest number) assigned to one of ``user_ids``:
    one index lookup per candidate, whatever the number of cases."""
    newest: dict[int, int] = {}
    for user_id in user_ids:
        number = store.value("SELECT MAX(number) FROM cases WHERE assigned_user_id = ?", [user_id])
        if number is not None:
            newest[user_id] = number
    return max(newest, key=newest.get) if newest else None


def open_case_counts(store: Store, user_ids: Sequence[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    marks = ", ".join("?" for _ in user_ids)
    closed = ", ".join("?" for _ in NOT_ACTUAL)
    rows = store.rows(
        f"""SELECT assigned_user_id, COUNT(*) AS n FROM cases WHERE assigned_user_id IN ({marks})
            AND status NOT IN ({closed}) GROUP BY assigned_user_id""",
        [*user_ids, *NOT_ACTUAL],
    )
    return {r["assigned_user_id"]: r["n"] for r in rows}


def team_candidates(store: Store, team_id: int, position: str | None) -> list[int]:
    """Active members of a team (in ``position`` when given), by user id."""
    sql = """SELECT u.id FROM user_teams ut JOIN users u ON u.id = ut.user_id
             WHERE ut.team_id = ? AND u.is_active = 1"""
    params: list = [team_id]
    if position:
        sql += " AND ut.position = ?"
        params.append(position)
    return store.column(sql + " ORDER BY u.id", params)


def list_cases(
    store: Store,
    status: str | None,
    assigned_user_id: int | None,
    limit: int,
    offset: int,
    visible_to: tuple[int, Sequence[int]] | None = None,
) -> list[Row]:
    where, params = _case_filter(status, assigned_user_id, visible_to)
    return store.rows(f"SELECT * FROM cases{where} ORDER BY number DESC LIMIT ? OFFSET ?", [*params, limit, offset])


def count_cases(
    store: Store, status: str | None, assigned_user_id: int | None, visible_to: tuple[int, Sequence[int]] | None = None
) -> int:
    """How many cases ``list_cases`` lists in all (cases_by_status, cases_by_assignee)."""
    where, params = _case_filter(status, assigned_user_id, visible_to)
    return store.value(f"SELECT COUNT(*) FROM cases{where}", params)


def _case_filter(
    status: str | None, assigned_user_id: int | None, visible_to: tuple[int, Sequence[int]] | None
) -> tuple[str, list]:
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if assigned_user_id is not None:
        where.append("assigned_user_id = ?")
        params.append(assigned_user_id)
    if visible_to is not None:
        user_id, teams = visible_to
        clause = "assigned_user_id = ?"
        params.append(user_id)
        if teams:
            marks = ", ".join("?" for _ in teams)
            clause += f" OR id IN (SELECT case_id FROM case_teams WHERE team_id IN ({marks}))"
            params.extend(teams)
        where.append(f"({clause})")
    return (f" WHERE {' AND '.join(where)}" if where else ""), params
