"""``espomail notification``: what users were told about new mail."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import Paging, date, emit, json_option, key, message, paging_options, short, show_list, text
from espomail.cli.types import ID
from espomail.services import notifications

COLUMNS = [
    key("id"),
    text("user", priority=6),
    short("type", priority=5),
    short("email_id", "email", priority=7),
    text("subject", priority=9, weight=3),
    short("record", priority=4),
    short("is_read", "read", priority=8),
    date("created_at", "created", priority=3),
]


@click.group()
def notification() -> None:
    """Notifications: email received, and stream notes of records a user follows.

    \b
    Examples:
      espomail --as alice notification list --unread
      espomail --as alice notification read --all
    """


@notification.command("list")
@click.option("--unread", is_flag=True, help="Only unread ones.")
@click.option("--user", metavar="U", help="(administrators) Only this user's.")
@paging_options
@json_option
def list_(unread: bool, user: str | None, paging: Paging) -> None:
    """List notifications, newest first (with --as: yours).

    \b
    Examples:
      espomail --as alice notification list --unread
      espomail notification list --user alice --json
    """
    app = get_app()
    show_list(
        lambda limit, offset: notifications.list_notifications(app.store, app.actor, user, unread, limit, offset),
        COLUMNS,
        paging,
    )


@notification.command("read")
@click.argument("notification_id", metavar="ID", type=ID, required=False)
@click.option("--all", "all_", is_flag=True, help="Mark all of your notifications read (of --user U's).")
@click.option("--user", metavar="U", help="(administrators) Another user's notifications.")
@json_option
def read(notification_id: int | None, all_: bool, user: str | None) -> None:
    """Mark a notification (or all of yours with --all) read.

    --all marks only the acting user's notifications read; administrators give --user U
    for another user's (without --as there are none of one's own: --all needs --user).

    \b
    Examples:
      espomail --as alice notification read 7
      espomail --as alice notification read --all
      espomail notification read --all --user alice
    """
    app = get_app()
    result = notifications.mark_read(app.store, app.actor, notification_id, all_, user)
    if app.json:
        emit(result)
        return
    whose = user or (None if app.actor.is_system else app.actor.username)
    count = result.get("marked_read", 0)
    what = f"notification {notification_id}" if notification_id is not None else f"{count} notification(s)"
    message(f"Marked {what} read" + (f" for {whose}" if whose else ""))


COMMANDS = [notification]
