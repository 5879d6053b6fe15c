"""``espomail store``: the store itself (copy it into another engine or onto another host)."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import emit, json_option, message, short, text
from espomail.cli.types import NonEmptyPath
from espomail.services import store_copy

COLUMNS = [
    text("table", priority=9, weight=2),
    short("source", priority=8),
    short("target", priority=8),
    short("ok", priority=7),
]


@click.group()
def store() -> None:
    """The store itself: copy it into an empty one (SQLite <-> PostgreSQL).

    \b
    Examples:
      espomail store copy --to postgresql://espomail@db.example.com/espomail
      espomail --db postgresql://espomail@db.example.com/espomail store copy --to ~/espomail.db
    """


@store.command("copy")
@click.option(
    "--to",
    "to",
    required=True,
    type=NonEmptyPath(),  # '' is refused, never read as the current directory
    metavar="URL|PATH",
    help="The empty target: a PostgreSQL URL (a bare database, or one just made by 'init') or a new SQLite file.",
)
@click.option(
    "--to-password-cmd",
    metavar="CMD",
    help="Command printing the target PostgreSQL password (default: PGPASSWORD, ~/.pgpass).",
)
@json_option
def copy(to: str, to_password_cmd: str | None) -> None:
    """Copy the whole store into an empty one, then compare every table's row count.

    Every table with its ids (users, teams, roles, records, accounts and their cursors,
    filters, folders, emails with their raw sources byte for byte and per-user state, cases,
    notifications, the run log). The source is read in one snapshot; stop cron's fetches
    while you switch over, so that nothing is fetched into the old store afterwards. A
    target holding data is refused. A count that differs is an error (exit 1).

    \b
    Examples:
      espomail store copy --to postgresql://espomail@db.example.com/espomail
      espomail --db postgresql://espomail@db.example.com/espomail store copy --to ./espomail.db --json
    """
    app = get_app()
    report = store_copy.copy_store(app.store, app.settings, app.actor, to, to_password_cmd)
    if app.json:
        emit(report.as_dict())
    else:
        emit([{"table": t.table, "source": t.source, "target": t.target, "ok": t.ok} for t in report.tables], COLUMNS)
    if not report.ok:
        differ = ", ".join(t.table for t in report.tables if not t.ok)
        message(f"Error: the copy in {report.target} differs from the source in {differ}; do not use it")
        click.get_current_context().exit(1)
    elif not app.json:
        message(f"Copied {report.source} to {report.target}: every table's count matches")


COMMANDS = [store]
