"""``espomail folder``: personal folders and team-shared group folders."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import Paging, emit, json_option, key, paging_options, short, show_list, text
from espomail.cli.removing import removal_options, run_removal
from espomail.services import folders

COLUMNS = [
    key("id"),
    short("kind", priority=7),
    text("name", priority=9, weight=2),
    text("owner", priority=6),
    text("teams", priority=5),
    short("skip_notifications", "skip notifications", priority=3),
]


@click.group()
def folder() -> None:
    """Folders that filters and users move email into.

    \b
    Examples:
      espomail folder add Invoices --user alice
      espomail --as alice folder list
    """


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
def folder_list(username: str | None, paging: Paging) -> None:
    """List folders (with --as: yours and your teams' group folders).

    \b
    Examples:
      espomail folder list --user alice
      espomail --as alice folder list --json
    """
    app = get_app()
    show_list(folders.list_folders(app.store, app.actor, username), COLUMNS, paging)


@folder.command("remove")
@click.argument("name")
@click.option("--user", "username", metavar="U", help="A personal folder of user U.")
@click.option("--group", is_flag=True, help="A group folder.")
@removal_options
@json_option
def folder_remove(name: str, username: str | None, group: bool, force: bool, yes: bool) -> None:
    """Remove a personal folder (--user U) or a group folder (--group).

    Refused while the folder is in use (a mail account files into it, filters move mail to
    it, emails are in it), naming each use, unless --force: then its emails are back in the
    inbox, accounts file into the inbox and the filters that move mail to it go. Asks for
    confirmation on a terminal; needs --yes otherwise.

    \b
    Examples:
      espomail folder remove Invoices --user alice
      espomail folder remove Escalations --group --force --yes
    """
    from espomail.services import removals

    app = get_app()
    run_removal(
        lambda: removals.plan_folder(app.store, app.actor, name, username, group),
        lambda: removals.remove_folder(app.store, app.actor, name, username, group, force),
        force,
        yes,
    )


COMMANDS = [folder]
