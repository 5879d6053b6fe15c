"""``espomail folder``: personal folders and team-shared group folders."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import emit, json_option, page, paging_options
from espomail.services import folders

COLUMNS = [
    ("id", "id"),
    ("kind", "kind"),
    ("name", "name"),
    ("owner", "owner"),
    ("teams", "teams"),
    ("skip_notifications", "skip notifications"),
]


@click.group()
def folder() -> None:
    """Folders that filters and users move email into."""


@folder.command("add")
@click.argument("name")
@click.option("--user", "username", metavar="U", help="A personal folder of user U.")
@click.option("--group", is_flag=True, help="A group folder shared with --team.")
@click.option("--team", "teams", multiple=True, metavar="T", help="Team of a group folder (repeatable).")
@click.option("--skip-notifications", is_flag=True, help="No notifications for mail filed here.")
@json_option
def folder_add(name, username, group, teams, skip_notifications) -> None:
    """Add a personal folder (--user U) or a group folder (--group --team T...).

    \b
    Examples:
      espomail folder add Invoices --user alice
      espomail folder add Escalations --group --team support
    """
    app = get_app()
    emit(folders.add_folder(app.store, app.actor, name, username, group, teams, skip_notifications))


@folder.command("list")
@click.option("--user", "username", metavar="U", help="Only the folders user U sees.")
@paging_options
@json_option
def folder_list(username: str | None, limit: int, offset: int) -> None:
    """List folders (with --as: yours and your teams' group folders)."""
    app = get_app()
    emit(page(folders.list_folders(app.store, app.actor, username), limit, offset), COLUMNS)


COMMANDS = [folder]
