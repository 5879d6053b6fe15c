"""``espomail filter``: skip, file or mark incoming mail (global, per account, per user)."""

from __future__ import annotations

from pathlib import Path

import click

from espomail.cli.app import get_app
from espomail.cli.output import Paging, emit, json_option, key, paging_options, say, short, show_list, text
from espomail.cli.removing import run_removal
from espomail.cli.types import NonEmptyPath
from espomail.errors import InvalidInput
from espomail.services import filters

COLUMNS = [
    key("id"),
    text("name", priority=9, weight=2),
    short("scope", priority=7),
    text("account", priority=5),
    text("user", priority=5),
    text("from", priority=6, weight=2),
    text("to", priority=3),
    text("subject", priority=4, weight=2),
    short("action", priority=8),
    text("folder", priority=2),
]


@click.group()
def filter_() -> None:
    """Filters decide whether an account imports a message, and where it lands for a user.

    Patterns use * as a wildcard and match the whole value, case-insensitively
    (*@example.com, *invoice*). --to matches To and Cc addresses.

    \b
    Examples:
      espomail filter add spam --global --from '*@spam.example'
      espomail filter test message.eml --account support
    """


@filter_.command("add")
@click.argument("name")
@click.option("--global", "is_global", is_flag=True, help="For every account (administrators; action skip).")
@click.option("--account", metavar="A", help="For one mail account.")
@click.option("--user", metavar="U", help="For one user's inbox.")
@click.option("--from", "from_", metavar="PAT", help="Pattern for the From address.")
@click.option("--to", metavar="PAT", help="Pattern for any To or Cc address.")
@click.option("--subject", metavar="PAT", help="Pattern for the subject.")
@click.option("--body-contains", multiple=True, metavar="TEXT", help="Matches if any such phrase is in the body.")
@click.option("--body-contains-all", multiple=True, metavar="TEXT", help="Matches if all are in the body.")
@click.option(
    "--action",
    default="skip",
    show_default=True,
    type=click.Choice(list(filters.ACTIONS), case_sensitive=False),
    help="What a match does.",
)
@click.option("--folder", metavar="F", help="Target folder of a move action.")
@click.option("--mark-read", is_flag=True, help="(user filters) Mark the email read for the user.")
@click.option("--skip-notifications", "skip_notification", is_flag=True, help="(user filters) No notification.")
@click.option("--skip-notification", "skip_notification_old", is_flag=True, hidden=True, help="Old spelling.")
@json_option
def add(name: str, is_global: bool, account: str | None, user: str | None, skip_notification_old: bool, **rule) -> None:
    """Add a filter (exactly one of --global, --account A, --user U).

    \b
    Examples:
      espomail filter add spam --global --from '*@spam.example'
      espomail filter add invoices --user alice --subject '*invoice*' --action move-to-folder --folder Invoices
      espomail filter add newsletters --account support --body-contains unsubscribe
    """
    scopes = [s for s, given in (("global", is_global), ("account", account), ("user", user)) if given]
    if len(scopes) != 1:
        raise InvalidInput("give exactly one of --global, --account A, --user U")
    app = get_app()
    rule["skip_notification"] = rule["skip_notification"] or skip_notification_old
    limit = app.settings.max_filter_pattern_length
    emit(filters.add_filter(app.store, app.actor, name, scopes[0], account, user, **rule, max_pattern_length=limit))


@filter_.command("list")
@paging_options
@json_option
def list_(paging: Paging) -> None:
    """List the filters you may see (administrators: all).

    \b
    Examples:
      espomail filter list
      espomail --as alice filter list --json
    """
    app = get_app()
    show_list(filters.list_filters(app.store, app.actor), COLUMNS, paging)


@filter_.command("show")
@click.argument("ref", metavar="F")
@json_option
def show(ref: str) -> None:
    """Show a filter (by id or name).

    \b
    Example:
      espomail filter show spam
    """
    app = get_app()
    emit(filters.show_filter(app.store, app.actor, ref))


@filter_.command("remove")
@click.argument("ref", metavar="F")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@json_option
def remove(ref: str, yes: bool) -> None:
    """Remove a filter (by id or name); asks on a terminal, needs --yes otherwise.

    \b
    Example:
      espomail filter remove spam --yes
    """
    from espomail.services import removals

    app = get_app()
    run_removal(
        lambda: removals.plan_filter(app.store, app.actor, ref),
        lambda: removals.remove_filter(app.store, app.actor, ref),
        False,
        yes,
    )


@filter_.command("test")
@click.argument("path", metavar="FILE.eml", type=NonEmptyPath(path_type=Path))
@click.option("--account", metavar="A", help="Test as if this account fetched it.")
@click.option("--user", metavar="U", help="Also test this user's filters.")
@json_option
def test(path: Path, account: str | None, user: str | None) -> None:
    """Show which filters match a message and what they would do; stores nothing.

    \b
    Example:
      espomail filter test message.eml --account support --user alice
    """
    app = get_app()
    result = filters.test_file(app.store, app.actor, path, account, user)
    if app.json:
        emit(result)
        return
    decision = result["account_decision"]
    say(
        f"account {result['account'] or '(any)'}: {decision['action']}"
        + (f" by filter '{decision['filter']}'" if decision["filter"] else "")
    )
    if "user_decision" in result:
        decision = result["user_decision"]
        say(
            f"user {result['user']}: {decision['action']}"
            + (f" by filter '{decision['filter']}'" if decision["filter"] else "")
        )
    for hit in result["matching_filters"]:
        say(f"  matches {hit['scope']} filter '{hit['name']}' ({hit['action']}): {'; '.join(hit['reasons'])}")


filter_.name = "filter"
COMMANDS = [filter_]
