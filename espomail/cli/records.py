"""``espomail record``: CRM accounts, contacts, leads and opportunities, and followers."""

from __future__ import annotations

from pathlib import Path

import click

from espomail import validate
from espomail.cli.app import get_app
from espomail.cli.output import Paging, emit, json_option, key, message, paging_options, short, show_list, text
from espomail.cli.types import NonEmptyPath
from espomail.errors import InvalidInput
from espomail.services import records

TYPES = click.Choice(["account", "contact", "lead", "opportunity"], case_sensitive=False)
FOLLOWABLE = click.Choice(["account", "contact", "lead", "opportunity", "case"], case_sensitive=False)
COLUMNS = [
    short("type", priority=4),
    key("id"),
    text("name", priority=9, weight=3),
    text("emails", priority=8, weight=2),
    short("account_id", "account", priority=5),
    text("followers", priority=3),
]


def _record_id(kind: str, ref: str) -> int:
    """The id of a record given by id or by name (a case by its number)."""
    if kind.lower() == "case":
        if not validate.is_whole_number(ref.strip()):
            raise InvalidInput(f"a case is given by its number, not '{ref}'; see 'espomail case list'")
        return validate.whole_number(ref, "the case number")
    return records.resolve_record(get_app().store, kind, ref)["id"]


@click.group()
def record() -> None:
    """CRM records that incoming mail is linked to, and who follows them.

    A record is given by its id or its exact name (a name of digits only: use the id).

    \b
    Examples:
      espomail record add account --name "Acme Ltd" --email info@acme.example
      espomail record show account "Acme Ltd"
    """


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
def record_list(kind: str, paging: Paging) -> None:
    """List records of one TYPE.

    \b
    Examples:
      espomail record list contact
      espomail record list account --all --nl > accounts.jsonl
    """
    app = get_app()
    show_list(lambda limit, offset: records.list_records(app.store, app.actor, kind, limit, offset), COLUMNS, paging)


@record.command("show")
@click.argument("kind", metavar="TYPE", type=TYPES)
@click.argument("ref", metavar="ID|NAME")
@json_option
def record_show(kind: str, ref: str) -> None:
    """Show one record (by id or name) with its stream.

    \b
    Examples:
      espomail record show account 3
      espomail record show account "Acme Ltd"
    """
    app = get_app()
    emit(records.show_record(app.store, app.actor, kind, _record_id(kind, ref)))


@record.command("import")
@click.argument("kind", metavar="TYPE", type=TYPES)
@click.argument("path", metavar="FILE.csv", type=NonEmptyPath(path_type=Path))
@json_option
def record_import(kind: str, path: Path) -> None:
    """Import records from a CSV file (all rows or none); running it again changes nothing.

    The header row names the columns: name (required), email (several separated by ';'),
    account (name or id, for contacts and opportunities). A row whose address belongs to a
    record of TYPE updates it (name, account, new addresses); a row without an address
    updates the record of that exact name; other rows add records. The records are printed
    (--json: each with "imported": added, updated or unchanged), the counts on stderr.

    \b
    Example:
      espomail record import contact contacts.csv
    """
    app = get_app()
    imported = records.import_records(app.store, app.actor, kind, path)
    emit(imported.records, [*COLUMNS, short("imported", priority=7)])
    message(imported.summary())


@record.command("follow")
@click.argument("kind", metavar="TYPE", type=FOLLOWABLE)
@click.argument("ref", metavar="ID|NAME")
@click.option("--user", "username", required=True, metavar="U", help="The user who follows.")
@json_option
def record_follow(kind: str, ref: str, username: str) -> None:
    """Make a user follow a record: they hear of every email linked to it.

    \b
    Examples:
      espomail record follow account "Acme Ltd" --user alice
      espomail record follow case 12 --user bob
    """
    app = get_app()
    record_id = _record_id(kind, ref)
    result = records.follow(app.store, app.actor, kind, record_id, username)
    _done(result, f"{username} follows {kind.lower()} {record_id}")


@record.command("unfollow")
@click.argument("kind", metavar="TYPE", type=FOLLOWABLE)
@click.argument("ref", metavar="ID|NAME")
@click.option("--user", "username", required=True, metavar="U", help="The user who stops following.")
@json_option
def record_unfollow(kind: str, ref: str, username: str) -> None:
    """Stop a user following a record.

    \b
    Example:
      espomail record unfollow account "Acme Ltd" --user alice
    """
    app = get_app()
    record_id = _record_id(kind, ref)
    result = records.unfollow(app.store, app.actor, kind, record_id, username)
    _done(result, f"{username} no longer follows {kind.lower()} {record_id}")


def _done(result: dict, line: str) -> None:
    if get_app().json:
        emit(result)
    else:
        message(line)


COMMANDS = [record]
