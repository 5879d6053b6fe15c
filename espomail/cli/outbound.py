"""``espomail outbound``: the system sender for auto-replies and notifications."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import emit, json_option
from espomail.services import outbound as service


@click.group()
def outbound() -> None:
    """The system sender: a group account with SMTP whose address is the outbound address.

    \b
    Examples:
      espomail outbound set --address crm@example.com --name "Example CRM" --shared
      espomail outbound show
    """


@outbound.command("set")
@click.option("--address", required=True, metavar="ADDR", help="The system address (a group account's).")
@click.option("--name", metavar="NAME", help="The From name of system mail.")
@click.option("--shared/--not-shared", default=None, help="Users may send their mail through the system SMTP.")
@json_option
def set_(address: str, name: str | None, shared: bool | None) -> None:
    """Make the group account with this address the sender of all system mail.

    \b
    Example:
      espomail outbound set --address crm@example.com --name "Example CRM" --shared
    """
    app = get_app()
    emit(service.set_outbound(app.store, app.actor, address, name, shared))


@outbound.command("show")
@json_option
def show() -> None:
    """Show the system sender.

    \b
    Example:
      espomail outbound show --json
    """
    app = get_app()
    emit(service.show(app.store, app.actor))


COMMANDS = [outbound]
