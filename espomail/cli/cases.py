"""``espomail case``: cases created from support mail."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import Paging, date, emit, json_option, key, paging_options, short, show_list, text
from espomail.cli.types import ID
from espomail.services import cases

COLUMNS = [
    key("number"),
    text("name", priority=9, weight=3),
    short("status", priority=8),
    short("priority", priority=4),
    text("assigned_user", "assignee", priority=7),
    text("teams", priority=3),
    text("inbound_account", "mail account", priority=2),
    text("email_ids", "emails", priority=1),
    date("created_at", "created", priority=5),
]
STATUS = click.Choice(list(cases.STATUSES), case_sensitive=False)
PRIORITY = click.Choice(list(cases.PRIORITIES), case_sensitive=False)


@click.group()
def case() -> None:
    """Cases: each new customer email to a group account with --create-case opens one.

    \b
    Examples:
      espomail case list --status new --assignee bob
      espomail case update 12 --status pending --assignee alice
    """


@case.command("list")
@click.option("--status", type=STATUS, help="Only cases with this status.")
@click.option("--assignee", metavar="U", help="Only cases assigned to this user.")
@click.option("--assigned", metavar="U", hidden=True, help="Old spelling of --assignee.")
@paging_options
@json_option
def list_(status: str | None, assignee: str | None, assigned: str | None, paging: Paging) -> None:
    """List cases, newest first.

    \b
    Examples:
      espomail case list --status new
      espomail case list --assignee bob --json
    """
    app = get_app()
    who = assignee if assignee is not None else assigned
    show_list(lambda limit, offset: cases.list_cases(app.store, app.actor, status, who, limit, offset), COLUMNS, paging)


@case.command("show")
@click.argument("number", metavar="N", type=ID)
@json_option
def show(number: int) -> None:
    """Show a case with its emails, attachments and stream.

    \b
    Example:
      espomail case show 12
    """
    app = get_app()
    emit(cases.show_case(app.store, app.actor, number))


@case.command("update")
@click.argument("number", metavar="N", type=ID)
@click.option("--status", type=STATUS, help="New status.")
@click.option("--assignee", metavar="U", help="Assign to this user ('' to unassign).")
@click.option("--assign", metavar="U", hidden=True, help="Old spelling of --assignee.")
@click.option("--priority", type=PRIORITY, help="New priority.")
@json_option
def update(number: int, status: str | None, assignee: str | None, assign: str | None, priority: str | None) -> None:
    """Change a case's status, assignee or priority.

    \b
    Example:
      espomail case update 12 --status pending --assignee bob --priority high
    """
    app = get_app()
    who = assignee if assignee is not None else assign
    emit(cases.update_case(app.store, app.actor, number, status, who, priority))


COMMANDS = [case]
