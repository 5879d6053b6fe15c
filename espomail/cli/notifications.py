"""``espomail notification``: what users were told about new mail."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import emit, json_option, paging_options
from espomail.services import notifications

COLUMNS = [
    ("id", "id"),
    ("user", "user"),
    ("type", "type"),
    ("email_id", "email"),
    ("subject", "subject"),
    ("record", "record"),
    ("is_read", "read"),
    ("created_at", "created"),
]


@click.group()
def notification() -> None:
    """Notifications: email received, and stream notes of records a user follows."""


@notification.command("list")
@click.option("--unread", is_flag=True, help="Only unread ones.")
@click.option("--user", metavar="U", help="(administrators) Only this user's.")
@paging_options
@json_option
def list_(unread: bool, user: str | None, limit: int, offset: int) -> None:
    """List notifications, newest first (with --as: yours)."""
    app = get_app()
    emit(notifications.list_notifications(app.store, app.actor, user, unread, limit, offset), COLUMNS)


@notification.command("read")
@click.argument("notification_id", metavar="ID", type=int, required=False)
@click.option("--all", "all_", is_flag=True, help="Mark all of them read.")
@click.option("--user", metavar="U", help="(administrators) For this user.")
@json_option
def read(notification_id: int | None, all_: bool, user: str | None) -> None:
    """Mark a notification (or --all) read."""
    app = get_app()
    emit(notifications.mark_read(app.store, app.actor, notification_id, all_, user))


COMMANDS = [notification]
