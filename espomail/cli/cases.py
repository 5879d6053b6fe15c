"""``espomail case``: cases created from support mail."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import emit, json_option, paging_options
from espomail.services import cases

COLUMNS = [
    ("number", "number"),
    ("name", "name"),
    ("status", "status"),
    ("priority", "priority"),
    ("assigned_user", "assigned"),
    ("teams", "teams"),
    ("inbound_account", "mail account"),
    ("email_ids", "emails"),
    ("created_at", "created"),
]


@click.group()
def case() -> None:
    """Cases: each new customer email to a group account with --create-case opens one."""


@case.command("list")
@click.option("--status", type=click.Choice(list(cases.STATUSES)), help="Only cases with this status.")
@click.option("--assigned", metavar="U", help="Only cases assigned to this user.")
@paging_options
@json_option
def list_(status: str | None, assigned: str | None, limit: int, offset: int) -> None:
    """List cases, newest first."""
    app = get_app()
    emit(cases.list_cases(app.store, app.actor, status, assigned, limit, offset), COLUMNS)


@case.command("show")
@click.argument("number", metavar="N", type=int)
@json_option
def show(number: int) -> None:
    """Show a case with its emails, attachments and stream."""
    app = get_app()
    emit(cases.show_case(app.store, app.actor, number))


@case.command("update")
@click.argument("number", metavar="N", type=int)
@click.option("--status", type=click.Choice(list(cases.STATUSES)), help="New status.")
@click.option("--assign", metavar="U", help="Assign to this user ('' to unassign).")
@click.option("--priority", type=click.Choice(list(cases.PRIORITIES)), help="New priority.")
@json_option
def update(number: int, status: str | None, assign: str | None, priority: str | None) -> None:
    """Change a case's status, assignee or priority."""
    app = get_app()
    emit(cases.update_case(app.store, app.actor, number, status, assign, priority))


COMMANDS = [case]
