"""``espomail account``: IMAP (and SMTP) mailboxes to fetch from and send through."""

from __future__ import annotations

import sys

import click

from espomail.cli.app import get_app
from espomail.cli.output import Paging, emit, json_option, key, message, paging_options, say, short, show_list, text
from espomail.cli.removing import emit_with_notes, removal_options, run_removal
from espomail.cli.types import PORT
from espomail.errors import InvalidInput
from espomail.model import AccountChanges, AuthFlow
from espomail.services import accounts

SECURITY = click.Choice(["ssl", "starttls", "none"], case_sensitive=False)
COLUMNS = [
    key("id"),
    text("name", priority=9, weight=2),
    short("kind", priority=6),
    text("address", priority=8, weight=2),
    text("owner", priority=3),
    short("active", priority=5),
    short("auth", priority=2),
    text("host", priority=4),
    text("folders", priority=2),
    text("teams", priority=3),
    short("create_case", "cases", priority=2),
    short("auto_reply", "auto-reply", priority=1),
    text("smtp_host", "smtp", priority=1),
    short("is_system", "system", priority=1),
]


def _options(*decorators):
    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


IMAP_OPTIONS = _options(
    click.option("--address", metavar="ADDR", help="The mailbox's email address."),
    click.option("--host", metavar="HOST", help="IMAP server."),
    click.option("--port", type=PORT, metavar="N", help="IMAP port (default 993 for ssl, else 143)."),
    click.option("--security", type=SECURITY, help="IMAP security (default ssl)."),
    click.option(
        "--insecure/--verify-certificates",
        default=None,
        help="Do not verify TLS certificates (default: verify).",
    ),
    click.option("--username", metavar="U", help="IMAP login name."),
    click.option("--password-cmd", metavar="CMD", help="Command printing the password, run at fetch time."),
    click.option("--password-env", metavar="VAR", help="Environment variable holding the password."),
    click.option(
        "--password-stdin",
        is_flag=True,
        default=None,
        help="Read the password from stdin into the system keyring.",
    ),
    click.option(
        "--folder",
        "folders",
        multiple=True,
        metavar="F",
        help="Monitored IMAP folder (repeatable; default INBOX).",
    ),
    click.option("--fetch-since", metavar="YYYY-MM-DD", help="First fetch takes mail since this day (default: today)."),
    click.option(
        "--mark-seen/--keep-unread",
        default=None,
        help="Mark fetched mail seen on the server (default: keep unread).",
    ),
    click.option("--active/--inactive", default=None, help="Fetch from this account or not."),
    click.option("--store-sent", metavar="FOLDER", help="IMAP folder where sent mail is appended."),
)

SMTP_OPTIONS = _options(
    click.option("--smtp-host", metavar="H", help="SMTP server for sending."),
    click.option("--smtp-port", type=PORT, metavar="N", help="SMTP port (default 465 ssl, 587 starttls, 25)."),
    click.option("--smtp-security", type=SECURITY, help="SMTP security (default starttls)."),
    click.option("--smtp-username", metavar="U", help="SMTP login (omit for no authentication)."),
    click.option("--smtp-password-cmd", metavar="CMD", help="Command printing the SMTP password."),
    click.option("--smtp-password-env", metavar="VAR", help="Environment variable with the SMTP password."),
    click.option(
        "--smtp-password-stdin",
        is_flag=True,
        default=None,
        help="Read the SMTP password from stdin into the keyring.",
    ),
)

OAUTH_OPTIONS = _options(
    click.option(
        "--auth",
        type=click.Choice(["password", "oauth2"], case_sensitive=False),
        help="How IMAP and SMTP sign in (default password); oauth2 for Microsoft 365, Google Workspace...",
    ),
    click.option(
        "--oauth-provider",
        type=click.Choice(["microsoft", "google", "custom"], case_sensitive=False),
        help="(oauth2) The provider: its endpoints and scopes, or custom ones.",
    ),
    click.option("--oauth-client-id", metavar="ID", help="(oauth2) The application (client) id registered there."),
    click.option(
        "--oauth-client-secret-env", metavar="VAR", help="(oauth2) Environment variable with the client secret."
    ),
    click.option(
        "--oauth-client-secret-cmd",
        metavar="CMD",
        help="(oauth2) Command printing the client secret (administrators only).",
    ),
    click.option("--oauth-tenant", metavar="T", help="(microsoft) Tenant id or domain (default organizations)."),
    click.option("--oauth-token-url", metavar="URL", help="(custom) Token endpoint."),
    click.option("--oauth-device-url", metavar="URL", help="(custom) Device authorization endpoint."),
    click.option("--oauth-auth-url", metavar="URL", help="(custom) Authorization endpoint (browser flow)."),
    click.option("--oauth-scope", "oauth_scopes", multiple=True, metavar="S", help="(custom) A scope (repeatable)."),
    click.option(
        "--oauth-token-file",
        metavar="PATH",
        help="(oauth2) Keep the tokens in this file (mode 0600) instead of the keyring: for cron on servers.",
    ),
)

FOLDER_MAP_OPTION = click.option(
    "--folder-map",
    multiple=True,
    metavar="IMAPFOLDER=FOLDER",
    help="(personal) Mail of this monitored IMAP folder goes to the owner's FOLDER (repeatable; "
    "IMAPFOLDER= removes the entry).",
)

GROUP_OPTIONS = _options(
    click.option(
        "--add-team-users/--no-add-team-users",
        default=None,
        help="Put mail in the inbox of every active user of the teams (default on).",
    ),
    click.option("--group-folder", metavar="NAME", help="Group folder fetched mail goes to."),
    click.option("--create-case/--no-create-case", default=None, help="Email-to-Case."),
    click.option(
        "--distribution",
        type=click.Choice(list(accounts.DISTRIBUTIONS), case_sensitive=False),
        help="How new cases are assigned.",
    ),
    click.option("--target-team", metavar="T", help="Team whose members get the cases."),
    click.option("--target-position", metavar="P", help="Only members in this position."),
    click.option("--assign-user", metavar="U", help="The user for direct assignment."),
    click.option("--auto-reply/--no-auto-reply", default=None, help="Acknowledge new mail/cases."),
    click.option("--reply-subject", metavar="TEXT", help="Auto-reply subject template."),
    click.option("--reply-body-file", metavar="FILE", help="Auto-reply body template file."),
    click.option("--reply-from-address", metavar="A", help="From address of auto-replies."),
    click.option("--reply-from-name", metavar="N", help="From name of auto-replies."),
    click.option("--reply-to-address", metavar="A", help="Reply-To of auto-replies and case mail."),
    click.option(
        "--smtp-shared/--smtp-not-shared",
        default=None,
        help="Users may send through this SMTP (per their group-send permission).",
    ),
)


def _collect(kwargs: dict) -> AccountChanges:
    """CLI keyword arguments -> the AccountChanges of services.accounts."""
    options = dict(kwargs)
    if options.pop("password_stdin", None):
        options["password_stdin"] = _read_stdin("IMAP password")
    if options.pop("smtp_password_stdin", None):
        options["smtp_password_stdin"] = _read_stdin("SMTP password")
    return AccountChanges.from_options(options)


def _read_stdin(what: str) -> str:
    if sys.stdin.isatty():
        return click.prompt(what, hide_input=True, err=True)
    return sys.stdin.readline()


@click.group()
def account() -> None:
    """Mail accounts: group mailboxes (support@, sales@) and personal mailboxes.

    \b
    Examples:
      espomail account add-group support --address support@example.com \\
          --host imap.example.com --username support --password-cmd 'pass show support'
      espomail account test support
    """


@account.command("add-group")
@click.argument("name")
@click.option("--team", "teams", multiple=True, metavar="T", help="A team the mail is assigned to (repeatable).")
@IMAP_OPTIONS
@SMTP_OPTIONS
@OAUTH_OPTIONS
@GROUP_OPTIONS
@json_option
def add_group(name: str, **kwargs) -> None:
    """Add a group mailbox (administrators only).

    The password is never stored in the database: --password-stdin puts it in the system
    keyring, --password-cmd runs a command at fetch time (works under cron), and
    --password-env reads a variable. Microsoft 365 and Google Workspace mailboxes take
    --auth oauth2 instead of a password; then run 'espomail account authorize NAME'.

    \b
    Examples:
      espomail account add-group support --address support@example.com \\
          --host imap.example.com --username support --password-cmd 'cat /etc/espomail/support.pass' \\
          --team support --create-case --distribution round-robin --target-team support
      espomail account add-group sales --address sales@example.com --host outlook.office365.com \\
          --username sales@example.com --auth oauth2 --oauth-provider microsoft \\
          --oauth-client-id 00000000-0000-0000-0000-000000000000 --oauth-tenant example.com \\
          --smtp-host smtp.office365.com --team sales
    """
    app = get_app()
    emit_with_notes(accounts.add_account(app.store, app.actor, app.settings, "group", name, _collect(kwargs)))


@account.command("add-personal")
@click.argument("name")
@click.option("--user", metavar="U", required=True, help="The owner of the mailbox.")
@click.option("--personal-folder", metavar="NAME", help="The owner's folder fetched mail goes to.")
@FOLDER_MAP_OPTION
@IMAP_OPTIONS
@SMTP_OPTIONS
@OAUTH_OPTIONS
@json_option
def add_personal(name: str, **kwargs) -> None:
    """Add a personal mailbox of user U (needs the personal-accounts permission).

    Fetched mail reaches U in their inbox, or in the folder --personal-folder names; with
    --folder-map each monitored IMAP folder can go to a folder of its own (folders of U,
    made with 'espomail folder add NAME --user U'). U's own filters still apply.

    \b
    Examples:
      espomail --as alice account add-personal alice-mail --user alice \\
          --address alice@example.com --host imap.example.com --username alice --password-stdin
      espomail account add-personal alice-mail --user alice --address alice@example.com \\
          --host imap.example.com --username alice --password-cmd 'pass show alice' \\
          --folder INBOX --folder Projects --folder-map Projects=Projects
    """
    app = get_app()
    emit_with_notes(accounts.add_account(app.store, app.actor, app.settings, "personal", name, _collect(kwargs)))


@account.command("update")
@click.argument("name")
@click.option("--personal-folder", metavar="NAME", help="(personal) The owner's folder for fetched mail.")
@FOLDER_MAP_OPTION
@click.option("--add-team", multiple=True, metavar="T", help="(group) Add a team (repeatable).")
@click.option("--remove-team", multiple=True, metavar="T", help="(group) Remove a team (repeatable).")
@click.option("--team", "teams", multiple=True, hidden=True, help="Replace the teams (old spelling; use --add-team).")
@IMAP_OPTIONS
@SMTP_OPTIONS
@OAUTH_OPTIONS
@GROUP_OPTIONS
@json_option
def update(name: str, add_team: tuple[str, ...], remove_team: tuple[str, ...], **kwargs) -> None:
    """Change an account; only the options given change.

    \b
    Examples:
      espomail account update support --add-team sales --remove-team support
      espomail account update support --security starttls --port 143
      espomail account update alice-mail --folder-map Projects=Work --folder-map Old=
      espomail account update support --inactive
      espomail account update support --oauth-token-file /var/lib/espomail/support.token
    """
    app = get_app()
    if add_team or remove_team:
        kwargs["teams"] = _changed_teams(app, name, kwargs.get("teams"), add_team, remove_team)
    emit_with_notes(accounts.update_account(app.store, app.actor, app.settings, name, _collect(kwargs)))


def _changed_teams(app, name: str, replace, add: tuple[str, ...], remove: tuple[str, ...]) -> list[str]:  # noqa: ANN001
    """The account's teams after --add-team/--remove-team (the service takes the whole list)."""
    if replace:
        raise InvalidInput("give --add-team/--remove-team or the old --team (which replaces), not both")
    teams = list(accounts.show_account(app.store, app.actor, name).get("teams") or [])
    for team in remove:
        match = [t for t in teams if t.lower() == team.lower()]
        if not match:
            raise InvalidInput(f"account '{name}' has no team '{team}'; its teams: {', '.join(teams) or 'none'}")
        teams.remove(match[0])
    teams += [t for t in add if t.lower() not in {x.lower() for x in teams}]
    if not teams:
        raise InvalidInput(f"--remove-team would leave account '{name}' without a team, which is not supported")
    return teams


@account.command("list")
@paging_options
@json_option
def list_(paging: Paging) -> None:
    """List the accounts you may manage (administrators: all).

    \b
    Examples:
      espomail account list
      espomail --as alice account list --json
    """
    app = get_app()
    show_list(accounts.list_accounts(app.store, app.actor), COLUMNS, paging)


@account.command("show")
@click.argument("name")
@json_option
def show(name: str) -> None:
    """Show an account and its fetch state per folder (never a password).

    \b
    Example:
      espomail account show support --json
    """
    app = get_app()
    emit(accounts.show_account(app.store, app.actor, name))


@account.command("remove")
@click.argument("name")
@removal_options
@json_option
def remove(name: str, force: bool, yes: bool) -> None:
    """Remove an account (its emails stay) and its keyring entries.

    Refused while the account is the system's outbound sender, has filters of its own or
    open cases that came in through it, unless --force. An OAuth2 account's tokens go with
    it from the keyring; a token file (--oauth-token-file) is left where it is, and said so.
    Asks for confirmation on a terminal; needs --yes otherwise.

    \b
    Example:
      espomail account remove support --yes
    """
    from espomail.services import removals

    app = get_app()
    run_removal(
        lambda: removals.plan_account(app.store, app.actor, name),
        lambda: removals.remove_account(app.store, app.actor, name, force),
        force,
        yes,
    )


@account.command("test")
@click.argument("name")
@json_option
def test(name: str) -> None:
    """Log in, list folders and check the monitored ones exist; SMTP too when configured.

    Exit code 1 when something is wrong, with what to fix.

    \b
    Example:
      espomail account test support
    """
    app = get_app()
    result = accounts.test_account(app.store, app.actor, app.settings, name)
    if app.json:
        emit(result)
        if result.get("error"):
            message(f"Error: account '{name}': {result['error']}")
    else:
        _print_test(result)
    if not result["ok"]:
        click.get_current_context().exit(1)


def _print_test(result: dict) -> None:
    if result.get("error"):
        message(f"Error: account '{result['account']}': {result['error']}")
        return
    imap = result["imap"]
    if imap.get("folders") is not None:
        say(f"IMAP login ok; folders: {', '.join(imap['folders'])}")
    if imap.get("error"):
        message(f"Error: {result['account']}: IMAP: {imap['error']}")
    smtp = result["smtp"]
    if smtp is not None:
        if smtp["ok"]:
            say("SMTP login ok")
        else:
            message(f"Error: {result['account']}: {smtp['error']}")


@account.command("reset")
@click.argument("name")
@click.option("--since", required=True, metavar="YYYY-MM-DD", help="Fetch again from this day.")
@json_option
def reset(name: str, since: str) -> None:
    """Forget the fetch state; the next fetch reads mail since DATE again.

    Mail already stored is recognised and not imported twice.

    \b
    Example:
      espomail account reset support --since 2026-01-01
    """
    app = get_app()
    emit(accounts.reset_account(app.store, app.actor, name, since))


@account.command("authorize")
@click.argument("name")
@click.option("--device", is_flag=True, help="Show a URL and a code to enter in any browser, on any device.")
@click.option("--browser", is_flag=True, help="Sign in with a browser on this machine (redirect to 127.0.0.1).")
@click.option("--refresh-token-stdin", is_flag=True, help="Read a refresh token (from another tool) on stdin.")
@json_option
def authorize(name: str, device: bool, browser: bool, refresh_token_stdin: bool) -> None:
    """Sign an OAuth2 account in to its mailbox and keep the refresh token (keyring or token file).

    Without an option: the device flow when the provider has one (Microsoft, custom with
    --oauth-device-url), else the browser flow (Google: its device flow does not allow mail).
    The device flow prints a URL and a code and waits until they are approved; the browser
    flow prints the URL to open and tries to start a browser. Run it again whenever fetch says
    the authorization expired.

    \b
    Examples:
      espomail account authorize support
      espomail account authorize support --browser
      pass show google/support-refresh-token | espomail account authorize support --refresh-token-stdin
    """
    flows = [f for f, on in ((AuthFlow.DEVICE, device), (AuthFlow.BROWSER, browser)) if on]
    if refresh_token_stdin:
        flows.append(AuthFlow.REFRESH_TOKEN)
    if len(flows) > 1:
        raise InvalidInput("give only one of --device, --browser, --refresh-token-stdin")
    flow = flows[0] if flows else None
    token = _read_refresh_token() if flow is AuthFlow.REFRESH_TOKEN else None
    app = get_app()
    ui = accounts.AuthorizeUI(show_device=lambda prompt: message(prompt.text()), show_url=_show_url(name))
    result = accounts.authorize_account(app.store, app.actor, app.settings, name, flow, ui, token)
    if app.json:
        emit(result)
        return
    kept = "in the keyring" if result["token_storage"] == "keyring" else f"in {result['token_file']}"
    say(f"Authorized account '{name}' ({FLOW_WORDS[result['flow']]}); refresh token kept {kept}")


def _show_url(name: str):  # noqa: ANN202 - a callback
    def show(url: str) -> None:
        from espomail.oauth.flows import BROWSER_WAIT

        minutes = round(BROWSER_WAIT / 60)
        message(f"Open this URL in a browser to sign in for account '{name}' (waiting up to {minutes} minutes):")
        message(url)

    return show


FLOW_WORDS = {"device": "device flow", "browser": "browser flow", "refresh-token": "refresh token from stdin"}


def _read_refresh_token() -> str:
    if sys.stdin.isatty():
        return click.prompt("Refresh token", hide_input=True, err=True)
    return sys.stdin.read()


COMMANDS = [account]
