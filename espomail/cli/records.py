"""``espomail record``: CRM accounts, contacts, leads and opportunities, and followers."""

from __future__ import annotations

from pathlib import Path

import click

from espomail.cli.app import get_app
from espomail.cli.output import emit, json_option, paging_options
from espomail.services import records

TYPES = click.Choice(["account", "contact", "lead", "opportunity"], case_sensitive=False)
FOLLOWABLE = click.Choice(["account", "contact", "lead", "opportunity", "case"], case_sensitive=False)
COLUMNS = [
    ("type", "type"),
    ("id", "id"),
    ("name", "name"),
    ("emails", "emails"),
    ("account_id", "account"),
    ("followers", "followers"),
]


@click.group()
def record() -> None:
    """CRM records that incoming mail is linked to, and who follows them."""


@record.command("add")
@click.argument("kind", metavar="TYPE", type=TYPES)
@click.option("--name", required=True, help="The record's name.")
@click.option("--email", "emails", multiple=True, metavar="ADDR", help="An address (repeatable).")
@click.option("--account", metavar="NAME_OR_ID", help="The account of a contact or opportunity.")
@json_option
def record_add(kind: str, name: str, emails: tuple[str, ...], account: str | None) -> None:
    """Add an account, contact, lead or opportunity.

    \b
    Examples:
      espomail record add account --name "Acme Ltd" --email info@acme.example
      espomail record add contact --name "Jane Roe" --email jane@acme.example --account "Acme Ltd"
    """
    app = get_app()
    emit(records.add_record(app.store, app.actor, kind, name, emails, account))


@record.command("list")
@click.argument("kind", metavar="TYPE", type=TYPES)
@paging_options
@json_option
def record_list(kind: str, limit: int, offset: int) -> None:
    """List records of one TYPE."""
    app = get_app()
    emit(records.list_records(app.store, app.actor, kind, limit, offset), COLUMNS)


@record.command("show")
@click.argument("kind", metavar="TYPE", type=TYPES)
@click.argument("record_id", metavar="ID", type=int)
@json_option
def record_show(kind: str, record_id: int) -> None:
    """Show one record."""
    app = get_app()
    emit(records.show_record(app.store, app.actor, kind, record_id))


@record.command("import")
@click.argument("kind", metavar="TYPE", type=TYPES)
@click.argument("path", metavar="FILE.csv", type=click.Path(path_type=Path))
@json_option
def record_import(kind: str, path: Path) -> None:
    """Import records from a CSV file (all rows or none).

    The header row names the columns: name (required), email (several separated by ';'),
    account (name or id, for contacts and opportunities).
    """
    app = get_app()
    emit(records.import_records(app.store, app.actor, kind, path), COLUMNS)


@record.command("follow")
@click.argument("kind", metavar="TYPE", type=FOLLOWABLE)
@click.argument("record_id", metavar="ID", type=int)
@click.option("--user", "username", required=True, metavar="U", help="The user who follows.")
@json_option
def record_follow(kind: str, record_id: int, username: str) -> None:
    """Make a user follow a record: they hear of every email linked to it."""
    app = get_app()
    emit(records.follow(app.store, app.actor, kind, record_id, username))


@record.command("unfollow")
@click.argument("kind", metavar="TYPE", type=FOLLOWABLE)
@click.argument("record_id", metavar="ID", type=int)
@click.option("--user", "username", required=True, metavar="U", help="The user who stops following.")
@json_option
def record_unfollow(kind: str, record_id: int, username: str) -> None:
    """Stop a user following a record."""
    app = get_app()
    emit(records.unfollow(app.store, app.actor, kind, record_id, username))


COMMANDS = [record]
