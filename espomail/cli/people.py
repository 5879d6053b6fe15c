"""``espomail team|user|role``: the people who use the mailboxes and what they may do."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import emit, json_option, page, paging_options
from espomail.services import people

TEAM_COLUMNS = [("id", "id"), ("name", "name"), ("positions", "positions"), ("members", "members")]
USER_COLUMNS = [
    ("id", "id"),
    ("username", "username"),
    ("name", "name"),
    ("emails", "emails"),
    ("teams", "teams"),
    ("roles", "roles"),
    ("is_admin", "admin"),
    ("is_active", "active"),
]
ROLE_COLUMNS = [
    ("id", "id"),
    ("name", "name"),
    ("email_create", "create"),
    ("email_read", "read"),
    ("email_edit", "edit"),
    ("email_delete", "delete"),
    ("personal_accounts", "personal accounts"),
    ("group_send", "group send"),
]


def _members(team: dict) -> dict:
    shown = dict(team)
    shown["members"] = [m["username"] for m in team["members"]]
    return shown


# -- team ------------------------------------------------------------------------------


@click.group()
def team() -> None:
    """Teams: who shares a group mailbox, and the candidates for case distribution."""


@team.command("add")
@click.argument("name")
@click.option(
    "--position",
    "positions",
    multiple=True,
    metavar="P",
    help="A position in the team (repeatable), e.g. agent, lead.",
)
@json_option
def team_add(name: str, positions: tuple[str, ...]) -> None:
    """Add a team.

    \b
    Example:
      espomail team add support --position agent --position lead
    """
    app = get_app()
    emit(_members(people.add_team(app.store, app.actor, name, positions)))


@team.command("list")
@paging_options
@json_option
def team_list(limit: int, offset: int) -> None:
    """List teams with their positions and members."""
    app = get_app()
    emit(page([_members(t) for t in people.list_teams(app.store, app.actor)], limit, offset), TEAM_COLUMNS)


@team.command("show")
@click.argument("name")
@json_option
def team_show(name: str) -> None:
    """Show one team."""
    app = get_app()
    emit(people.show_team(app.store, app.actor, name))


@team.command("update")
@click.argument("name")
@click.option("--add-position", multiple=True, metavar="P", help="Add a position (repeatable).")
@click.option("--remove-position", multiple=True, metavar="P", help="Remove a position.")
@json_option
def team_update(name: str, add_position: tuple[str, ...], remove_position: tuple[str, ...]) -> None:
    """Add or remove positions of a team."""
    app = get_app()
    emit(people.update_team(app.store, app.actor, name, add_position, remove_position))


@team.command("remove")
@click.argument("name")
@json_option
def team_remove(name: str) -> None:
    """Remove a team (its members stay, without the team)."""
    app = get_app()
    emit(people.remove_team(app.store, app.actor, name))


# -- user ------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """Users: their addresses decide which mail reaches them; roles decide what they may do."""


@user.command("add")
@click.argument("username")
@click.option(
    "--email",
    "emails",
    multiple=True,
    required=True,
    metavar="ADDR",
    help="An address of the user (repeatable; the first is primary).",
)
@click.option("--name", help="Full name (default: the username).")
@click.option(
    "--team",
    "teams",
    multiple=True,
    metavar="TEAM[:POSITION]",
    help="Member of TEAM, optionally in POSITION (repeatable).",
)
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="A role (repeatable).")
@click.option("--admin", is_flag=True, help="An administrator: bypasses every role.")
@click.option("--inactive", is_flag=True, help="Create the user inactive.")
@json_option
def user_add(username, emails, name, teams, roles, admin, inactive) -> None:
    """Add a user.

    \b
    Example:
      espomail user add alice --email alice@example.com --team support:agent --role agent
    """
    app = get_app()
    emit(people.add_user(app.store, app.actor, username, emails, name, teams, roles, admin, not inactive))


@user.command("list")
@paging_options
@json_option
def user_list(limit: int, offset: int) -> None:
    """List users."""
    app = get_app()
    emit(page(people.list_users(app.store, app.actor), limit, offset), USER_COLUMNS)


@user.command("show")
@click.argument("username")
@json_option
def user_show(username: str) -> None:
    """Show a user, with the effective permissions of their roles."""
    app = get_app()
    emit(people.show_user(app.store, app.actor, username))


@user.command("update")
@click.argument("username")
@click.option("--name", help="New full name.")
@click.option("--add-email", multiple=True, metavar="ADDR", help="Add an address.")
@click.option("--remove-email", multiple=True, metavar="ADDR", help="Remove an address.")
@click.option("--add-team", multiple=True, metavar="TEAM[:POSITION]", help="Join a team (or change position).")
@click.option("--remove-team", multiple=True, metavar="TEAM", help="Leave a team.")
@click.option("--add-role", multiple=True, metavar="ROLE", help="Add a role.")
@click.option("--remove-role", multiple=True, metavar="ROLE", help="Remove a role.")
@click.option("--admin/--no-admin", default=None, help="Make or unmake an administrator.")
@click.option("--active/--inactive", default=None, help="Activate or deactivate.")
@json_option
def user_update(
    username, name, add_email, remove_email, add_team, remove_team, add_role, remove_role, admin, active
) -> None:
    """Change a user (administrators only; only they change addresses)."""
    app = get_app()
    changes = {
        "name": name,
        "is_admin": admin,
        "is_active": active,
        "add_emails": add_email,
        "remove_emails": remove_email,
        "add_teams": add_team,
        "remove_teams": remove_team,
        "add_roles": add_role,
        "remove_roles": remove_role,
    }
    emit(people.update_user(app.store, app.actor, username, changes))


@user.command("remove")
@click.argument("username")
@json_option
def user_remove(username: str) -> None:
    """Remove a user (their per-user email state goes with them; emails stay)."""
    app = get_app()
    emit(people.remove_user(app.store, app.actor, username))


# -- role ------------------------------------------------------------------------------

LEVEL = click.Choice(["no", "own", "team", "all"])
YES_NO = click.Choice(["yes", "no"])
GROUP_SEND = click.Choice(["no", "team", "all"])


def role_options(func):
    for option in reversed(
        [
            click.option("--email-create", type=YES_NO, help="May compose and send email."),
            click.option("--email-read", type=LEVEL, help="Which emails the user sees."),
            click.option("--email-edit", type=LEVEL, help="Which emails' parent/teams/assignee may change."),
            click.option("--email-delete", type=LEVEL, help="Which emails may be deleted for everyone."),
            click.option("--personal-accounts", type=YES_NO, help="May add own personal mail accounts."),
            click.option("--group-send", type=GROUP_SEND, help="May send through shared group accounts."),
        ]
    ):
        func = option(func)
    return func


def _levels(kwargs: dict) -> dict:
    return {k: kwargs[k] for k in people.q.ROLE_FIELDS}


@click.group()
def role() -> None:
    """Roles: levels no/own/team/all for reading, editing and deleting email, and more.

    Several roles merge to the most permissive; anything not granted is 'no';
    administrators bypass roles.
    """


@role.command("add")
@click.argument("name")
@role_options
@json_option
def role_add(name: str, **kwargs) -> None:
    """Add a role (every permission defaults to no).

    \b
    Example:
      espomail role add agent --email-create yes --email-read team --email-edit own \\
          --group-send team
    """
    app = get_app()
    emit(people.add_role(app.store, app.actor, name, _levels(kwargs)))


@role.command("update")
@click.argument("name")
@role_options
@json_option
def role_update(name: str, **kwargs) -> None:
    """Change some permissions of a role."""
    app = get_app()
    emit(people.update_role(app.store, app.actor, name, _levels(kwargs)))


@role.command("list")
@paging_options
@json_option
def role_list(limit: int, offset: int) -> None:
    """List roles."""
    app = get_app()
    emit(page(people.list_roles(app.store, app.actor), limit, offset), ROLE_COLUMNS)


@role.command("show")
@click.argument("name")
@json_option
def role_show(name: str) -> None:
    """Show a role and its users."""
    app = get_app()
    emit(people.show_role(app.store, app.actor, name))


@role.command("remove")
@click.argument("name")
@json_option
def role_remove(name: str) -> None:
    """Remove a role (users lose what it granted)."""
    app = get_app()
    emit(people.remove_role(app.store, app.actor, name))


COMMANDS = [team, user, role]
