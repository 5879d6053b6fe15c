"""``espomail fetch`` (the cron entry), ``espomail status`` and ``espomail cron``."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import click

from espomail.cli.app import get_app
from espomail.cli.output import clean, date, emit, json_option, message, say, short, text
from espomail.cli.types import WholeNumber
from espomail.model import FetchStatus
from espomail.services import fetching
from espomail.services import status as status_service
from espomail.store.urls import shown

SUMMARY_COLUMNS = [
    text("name", "account", priority=100, weight=2),
    short("status", priority=9),
    short("new", priority=8),
    short("duplicates", "dupes", priority=5),
    short("filtered", priority=4),
    short("failed", priority=7),
    short("cases_created", "cases", priority=3),
    short("auto_replies", "replies", priority=2),
    short("auto_replies_failed", "replies failed", priority=2),
    short("backlog", priority=6),
    text("error", priority=7, weight=3),
]
DRY_RUN_COLUMNS = [
    text("name", "account", priority=100, weight=2),
    short("status", priority=9),
    short("new", "to fetch", priority=8),
    short("backlog", "left for later runs", priority=6),
    text("error", priority=7, weight=3),
]
STATUS_COLUMNS = [
    text("name", "account", priority=100, weight=2),
    short("active", priority=5),
    date("last_success_at", "last success", priority=8),
    text("problems", priority=9, weight=4),
    date("next_attempt_at", "next attempt", priority=3),
    short("backlog", priority=6),
    short("failed_emails", "failed", priority=7),
    short("pending_emails", "pending", priority=4),
    short("watch", priority=3),
    date("watched_since", "watched since", priority=3),
]


@click.command()
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="A",
    help="Only this account (repeatable); tried now even if it is backing off after failures.",
)
@click.option(
    "--limit",
    type=WholeNumber(1),
    metavar="N",
    help="At most N messages per folder this run (default: config max_per_run).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be fetched; store nothing.")
@json_option
def fetch(accounts: tuple[str, ...], limit: int | None, dry_run: bool) -> None:
    """Fetch new mail from every active account (the crontab entry).

    Silent when all went well and stdout is not a terminal; a progress bar and a summary on
    a terminal. A failing account gets one 'Error:' line on stderr when its error is new
    (not again every minute while it stays the same) and the exit code is 1; the other
    accounts are still fetched. A failing account is retried after 1, 2, 4 ... up to 60
    minutes ('espomail status' shows when; --account A tries it now). An account locked by
    an overlapping run is skipped (said only with -v). --dry-run always prints what it
    would fetch.

    \b
    Examples:
      espomail fetch
      espomail fetch --account support --json
      espomail fetch --dry-run
    """
    app = get_app()
    progress, finish = _progress_bar(app)
    try:
        summary = fetching.fetch(
            app.store, app.settings, list(accounts) or None, limit, dry_run, progress, actor=app.actor
        )
    finally:
        finish()
    data = summary.as_dict()
    if app.json:
        emit(data)
    elif dry_run:
        emit(data["accounts"], DRY_RUN_COLUMNS)
    elif sys.stdout.isatty():
        emit(data["accounts"], SUMMARY_COLUMNS)
    if dry_run and not app.json:
        message(f"dry run: nothing was stored ({data['new']:,} message(s) to fetch)")
    _report(app, summary)
    if summary.failed_accounts or summary.errors:
        click.get_current_context().exit(1)


def _report(app, summary: fetching.Summary) -> None:  # noqa: ANN001
    """An account's error once per change (cron mails stderr: not the same line every
    minute); on a terminal every time. Backing off and locked accounts only with -v."""
    for error in summary.errors:
        message(f"Error: {error}")
    for result in summary.accounts:
        if result.status == FetchStatus.ERROR:
            if result.announce or sys.stderr.isatty() or app.verbose:
                message(f"Error: account '{result.name}': {result.error}")
        elif result.status == FetchStatus.LOCKED and app.verbose:
            message(f"account '{result.name}' skipped: another fetch holds its lock")
        elif result.failing and app.verbose:
            message(
                f"account '{result.name}' skipped: {result.failures} failed fetch(es) in a row, next attempt at "
                f"{result.next_attempt_at} ('espomail fetch --account {result.name}' tries now)"
            )


def _progress_bar(app):  # noqa: ANN001, ANN202
    if app.json or not sys.stdout.isatty() or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import Progress

    bar = Progress(transient=True)
    bar.start()
    tasks: dict[str, int] = {}

    def update(account: str, done: int, total: int) -> None:
        if account not in tasks:
            from rich.markup import escape

            tasks[account] = bar.add_task(escape(clean(account)), total=total)
        bar.update(tasks[account], completed=done, total=total)

    return update, bar.stop


@click.command()
@json_option
def status() -> None:
    """Per account: last successful fetch, problems, backlog, failed imports.

    Exit code 1 when something needs a person (for monitoring scripts): an active
    account whose last fetch failed (with when it is tried next), one not fetched
    successfully for longer than stale_after_min (default 30), one whose last fetch run
    crashed, or outgoing system mail stuck in the outbox. Each is a line of 'problems'.

    \b
    Examples:
      espomail status
      espomail status --json | jq '.[] | select(.healthy | not)'
    """
    app = get_app()
    health = status_service.health(app.store, app.actor, app.settings)
    emit(health.accounts if app.json else [_for_people(row) for row in health.accounts], STATUS_COLUMNS)
    for row in health.accounts:
        if row.get("authorization_error"):
            message(f"Error: account '{row['name']}': {row['authorization_error']}")
    if health.unattributed_stuck:
        message(
            f"Error: {health.unattributed_stuck} outgoing system mail stuck without a sending account; "
            "see 'espomail email list --folder all'"
        )
    if health.failing:
        click.get_current_context().exit(1)


def _for_people(row: dict) -> dict:
    """A table cell per problem list: the sentences joined by '; ' (they contain commas)."""
    return {**row, "problems": "; ".join(row["problems"]) or None}


@click.command()
@json_option
def cron() -> None:
    """Print a crontab line that runs 'espomail fetch' every minute.

    \b
    Examples:
      espomail cron
      (crontab -l; espomail cron) | crontab -     # install it
    """
    app = get_app()
    line = "* * * * * " + " ".join(shlex.quote(part) for part in command_line(app))
    if app.json:
        emit({"line": line})
    else:
        say(line)


def command_line(app) -> list[str]:  # noqa: ANN001
    beside_python = Path(sys.executable).parent / "espomail"
    argv0 = Path(sys.argv[0])
    if argv0.name == "espomail" and argv0.exists():
        parts = [str(argv0.resolve())]
    elif beside_python.exists():
        parts = [str(beside_python)]
    elif shutil.which("espomail"):
        parts = [str(shutil.which("espomail"))]
    else:
        parts = [sys.executable, "-m", "espomail"]
    settings = app.settings
    if settings.config_path:
        parts += ["--config", str(Path(settings.config_path).resolve())]
    # A PostgreSQL URL without its password: cron finds it in ~/.pgpass or --db-password-cmd.
    parts += ["--db", shown(settings.db_url) if settings.db_url else str(Path(settings.db_path).resolve())]
    if settings.db_password_cmd:
        parts += ["--db-password-cmd", settings.db_password_cmd]
    return [*parts, "fetch"]


COMMANDS = [fetch, status, cron]
