"""``espomail team|user|role``: the people who use the mailboxes and what they may do."""

from __future__ import annotations

import click

from espomail.cli.app import get_app
from espomail.cli.output import Paging, emit, json_option, key, paging_options, short, show_list, text
from espomail.cli.removing import removal_options, run_removal
from espomail.services import people

TEAM_COLUMNS = [
    key("id"),
    text("name", priority=9, weight=2),
    text("positions", priority=5),
    text("members", priority=6, weight=2),
]
USER_COLUMNS = [
    key("id"),
    text("username", priority=9, weight=2),
    text("name", priority=6, weight=2),
    text("emails", priority=7, weight=2),
    text("teams", priority=5),
    text("roles", priority=4),
    short("is_admin", "admin", priority=3),
    short("is_active", "active", priority=3),
]
ROLE_COLUMNS = [
    key("id"),
    text("name", priority=9, weight=2),
    short("email_create", "create", priority=6),
    short("email_read", "read", priority=8),
    short("email_edit", "edit", priority=7),
    short("email_delete", "delete", priority=7),
    short("personal_accounts", "personal", priority=5),
    short("group_send", "group send", priority=5),
]


def _members(team: dict) -> dict:
    shown = dict(team)
    shown["members"] = [m["username"] for m in team["members"]]
    return shown


# -- team ------------------------------------------------------------------------------


@click.group()
def team() -> None:
    """Teams: who shares a group mailbox, and the candidates for case distribution.

    \b
    Examples:
      espomail team add support --position agent --position lead
      espomail team list
    """


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
def team_list(paging: Paging) -> None:
    """List teams with their positions and members.

    \b
    Example:
      espomail team list --json
    """
    app = get_app()
    show_list([_members(t) for t in people.list_teams(app.store, app.actor)], TEAM_COLUMNS, paging)


@team.command("show")
@click.argument("name")
@json_option
def team_show(name: str) -> None:
    """Show one team.

    \b
    Example:
      espomail team show support
    """
    app = get_app()
    emit(people.show_team(app.store, app.actor, name))


@team.command("update")
@click.argument("name")
@click.option("--add-position", multiple=True, metavar="P", help="Add a position (repeatable).")
@click.option("--remove-position", multiple=True, metavar="P", help="Remove a position.")
@json_option
def team_update(name: str, add_position: tuple[str, ...], remove_position: tuple[str, ...]) -> None:
    """Add or remove positions of a team.

    \b
    Example:
      espomail team update support --add-position lead --remove-position intern
    """
    app = get_app()
    emit(people.update_team(app.store, app.actor, name, add_position, remove_position))


@team.command("remove")
@click.argument("name")
@removal_options
@json_option
def team_remove(name: str, force: bool, yes: bool) -> None:
    """Remove a team (its members stay, without the team).

    Refused while the team is in use (a mail account's team or target team, a group
    folder's team, members, shared emails or cases), naming each use, unless --force:
    then an account that distributed its cases to the team gets distribution none. Asks
    for confirmation on a terminal; needs --yes otherwise.

    \b
    Examples:
      espomail team remove sales
      espomail team remove support --force --yes
    """
    from espomail.services import removals

    app = get_app()
    run_removal(
        lambda: removals.plan_team(app.store, app.actor, name),
        lambda: removals.remove_team(app.store, app.actor, name, force),
        force,
        yes,
    )


# -- user ------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """Users: their addresses decide which mail reaches them; roles decide what they may do.

    \b
    Examples:
      espomail user add alice --email alice@example.com --team support:agent --role agent
      espomail user update alice --add-team sales --remove-role agent
    """


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
def user_list(paging: Paging) -> None:
    """List users.

    \b
    Examples:
      espomail user list
      espomail user list --nl > users.jsonl
    """
    app = get_app()
    show_list(people.list_users(app.store, app.actor), USER_COLUMNS, paging)


@user.command("show")
@click.argument("username")
@json_option
def user_show(username: str) -> None:
    """Show a user, with the effective permissions of their roles.

    \b
    Example:
      espomail user show alice --json
    """
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
    """Change a user (administrators only; only they change addresses).

    \b
    Examples:
      espomail user update bob --add-team sales:lead --remove-team support
      espomail user update bob --add-email bob@sales.example --inactive
    """
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
@removal_options
@json_option
def user_remove(username: str, force: bool, yes: bool) -> None:
    """Remove a user (their per-user email state, folders and filters go with them; emails stay).

    Refused while the user owns personal mail accounts, is an account's assign-to user or
    has open cases, unless --force: then their personal accounts go too, direct
    distribution to them becomes none and their cases are unassigned. Asks for
    confirmation on a terminal; needs --yes otherwise.

    \b
    Examples:
      espomail user remove bob
      espomail user remove bob --force --yes
    """
    from espomail.services import removals

    app = get_app()
    run_removal(
        lambda: removals.plan_user(app.store, app.actor, username),
        lambda: removals.remove_user(app.store, app.actor, username, force),
        force,
        yes,
    )


# -- role ------------------------------------------------------------------------------

LEVEL = click.Choice(["no", "own", "team", "all"], case_sensitive=False)
YES_NO = click.Choice(["yes", "no"], case_sensitive=False)
GROUP_SEND = click.Choice(["no", "team", "all"], case_sensitive=False)


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

    \b
    Examples:
      espomail role add agent --email-read team --email-edit own --group-send team
      espomail role list
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
    """Change some permissions of a role.

    \b
    Example:
      espomail role update agent --email-delete own
    """
    app = get_app()
    emit(people.update_role(app.store, app.actor, name, _levels(kwargs)))


@role.command("list")
@paging_options
@json_option
def role_list(paging: Paging) -> None:
    """List roles.

    \b
    Example:
      espomail role list --json
    """
    app = get_app()
    show_list(people.list_roles(app.store, app.actor), ROLE_COLUMNS, paging)


@role.command("show")
@click.argument("name")
@json_option
def role_show(name: str) -> None:
    """Show a role and its users.

    \b
    Example:
      espomail role show agent
    """
    app = get_app()
    emit(people.show_role(app.store, app.actor, name))


@role.command("remove")
@click.argument("name")
@removal_options
@json_option
def role_remove(name: str, force: bool, yes: bool) -> None:
    """Remove a role; refused while users have it, unless --force (they lose what it granted).

    Asks for confirmation on a terminal; needs --yes otherwise.

    \b
    Example:
      espomail role remove agent --yes
    """
    from espomail.services import removals

    app = get_app()
    run_removal(
        lambda: removals.plan_role(app.store, app.actor, name),
        lambda: removals.remove_role(app.store, app.actor, name, force),
        force,
        yes,
    )


COMMANDS = [team, user, role]
