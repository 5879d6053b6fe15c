"""The ``espomail`` command: root options, the command groups, errors to exit codes.

A thin layer: commands parse options, call one service function and render the result.
Every EspomailError becomes one ``Error:`` line on stderr (plus a JSON error object with
``--json``) and the exit code of SPEC 2; nothing else escapes as a traceback unless
``ESPOMAIL_TRACEBACK=1``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import select
import sys

import click

from espomail import __version__
from espomail.cli.app import App
from espomail.errors import EspomailError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """Imports a command's module when the command is used (or help lists it)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = COMMANDS.get(name)
        if module_name is None:
            return None
        module = importlib.import_module(f"espomail.cli.{module_name}")
        return next(c for c in module.COMMANDS if c.name == name)

    def invoke(self, ctx: click.Context) -> object:
        # click turns any EPIPE into a silent exit 1, even outside standalone mode: a reader
        # that stopped reading ('espomail email list | head -1') is no failure, and a
        # connection that broke is one that must be said.
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            if _stdout_closed():
                raise ReaderGone from None
            raise EspomailError(f"a connection was closed by the other side ({exc}); run the command again") from None


class ReaderGone(Exception):
    """The program reading our standard output has closed it: stop quietly, exit 0."""


def _stdout_closed() -> bool:
    """True when standard output is a pipe (or socket) whose reader is gone."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--config",
    "config_path",
    envvar="ESPOMAIL_CONFIG",
    metavar="PATH",
    help="Config file (default $XDG_CONFIG_HOME/espomail/config.yaml). Env: ESPOMAIL_CONFIG.",
)
@click.option(
    "--db",
    "db_path",
    envvar="ESPOMAIL_DB",
    metavar="PATH|URL",
    help="SQLite database file (default $XDG_DATA_HOME/espomail/espomail.db), or a PostgreSQL URL "
    "postgresql://USER@HOST:PORT/DBNAME. Env: ESPOMAIL_DB.",
)
@click.option(
    "--db-password-cmd",
    envvar="ESPOMAIL_DB_PASSWORD_CMD",
    metavar="CMD",
    help="Command printing the PostgreSQL password (default: PGPASSWORD, ~/.pgpass). Env: ESPOMAIL_DB_PASSWORD_CMD.",
)
@click.option(
    "--as",
    "as_user",
    envvar="ESPOMAIL_AS",
    metavar="USERNAME",
    help="Run as this user, enforcing their roles (default: the administrator). Env: ESPOMAIL_AS.",
)
@click.option("-v", "--verbose", count=True, help="Log to stderr too (-vv: debug).")
@click.version_option(__version__, "--version", prog_name="espomail")
@click.pass_context
def cli(ctx: click.Context, config_path, db_path, db_password_cmd, as_user, verbose) -> None:
    """espomail: the email administration engine of a CRM.

    Fetches mail from IMAP group and personal mailboxes into one store (SQLite, or
    PostgreSQL for several hosts; each message once), filters it, links it to CRM records,
    turns support mail into cases, sends loop-safe auto-replies and notifies the users
    who follow the record.

    \b
    Examples (first steps):
      espomail init
      espomail team add support --position agent
      espomail user add alice --email alice@example.com --team support:agent
      espomail account add-group support --address support@example.com \\
          --host imap.example.com --username support --password-cmd 'pass show support'
      espomail fetch            # put 'espomail cron' output in your crontab

    Exit codes: 0 ok, 1 runtime failure, 2 bad input, 3 not found, 4 permission denied.
    """
    app = ctx.ensure_object(App)
    app.config_path, app.db_path, app.as_user, app.verbose = config_path, db_path, as_user, verbose
    app.db_password_cmd = db_password_cmd
    ctx.call_on_close(app.close)


# Command name -> the module defining it (one module per command group). Modules are
# imported only when their command runs, so 'espomail email list' does not pay for the
# IMAP, parsing and sending code: a cron line or a script gets its answer sooner.
COMMANDS = {
    "init": "admin",
    "team": "people",
    "user": "people",
    "role": "people",
    "record": "records",
    "folder": "folders",
    "account": "accounts",
    "fetch": "fetch",
    "status": "fetch",
    "cron": "fetch",
    "watch": "watch",
    "systemd": "systemd",
    "email": "emails",
    "filter": "filters",
    "notification": "notifications",
    "case": "cases",
    "outbound": "outbound",
    "completion": "completion",
    "store": "store",
}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: run the CLI, map errors to exit codes."""
    args = sys.argv[1:] if argv is None else argv
    app = App()
    try:
        code = cli.main(args=args, prog_name="espomail", standalone_mode=False, obj=app)
    except click.UsageError as exc:
        code = _usage_error(exc, app, args)
    except click.Abort:
        click.echo("Error: aborted; nothing was changed", err=True)
        code = 1
    except EspomailError as exc:
        code = _fail(exc.message, exc.code, exc.exit_code, app, args)
    except KeyboardInterrupt:
        click.echo("Error: interrupted", err=True)
        code = 130
    except ReaderGone:
        # what is still buffered for stdout goes nowhere, rather than into a second EPIPE at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if os.environ.get("ESPOMAIL_TRACEBACK"):
            raise
        from espomail.failures import translate

        known = translate(exc, app.settings_loaded.db_path if app.settings_loaded else None)
        if known is not None:  # the disk, the store's lock ...: what to do, not a bug report
            logging.getLogger("espomail").error("%s", known.message)
            sys.exit(_fail(known.message, known.code, known.exit_code, app, args))
        logging.getLogger("espomail").exception("unexpected error")
        text = f"unexpected {type(exc).__name__}: {exc}; rerun with ESPOMAIL_TRACEBACK=1 and report it"
        code = _fail(text, "internal_error", 1, app, args)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: click.UsageError, app: App, args: list[str]) -> int:
    text = exc.format_message().rstrip(".")
    if exc.ctx is not None:
        text += f"; see '{exc.ctx.command_path} --help'"
    return _fail(text, "usage", 2, app, args)


def _fail(text: str, code: str, exit_code: int, app: App, args: list[str]) -> int:
    from espomail.cli.output import clean

    click.echo(f"Error: {clean(text)}", err=True)  # a message may quote a subject, a server's answer ...
    if app.json or "--json" in args or "--nl" in args:
        click.echo(json.dumps({"error": {"code": code, "message": text}}), err=True)
    return exit_code
