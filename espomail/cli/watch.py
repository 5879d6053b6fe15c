"""``espomail watch``: the IMAP IDLE service (SPEC 14), in the foreground."""

from __future__ import annotations

import logging
import signal
import sys

import click

from espomail.cli.app import CleanFormatter, get_app


@click.command()
@click.option("--account", "accounts", multiple=True, metavar="A", help="Only this account (repeatable).")
def watch(accounts: tuple[str, ...]) -> None:
    """Store and case new mail the moment it arrives (IMAP IDLE); runs until stopped.

    One IMAP connection per monitored folder waits in IDLE and runs the same fetch as
    'espomail fetch' (its locks and cursors) when the server reports new mail; servers
    without IDLE are polled every poll_interval_s (config, default 60). Accounts added,
    changed or removed are picked up within poll_interval_s; a dropped connection is
    reconnected with backoff (1, 2, 4 ... 60 s). Cron 'fetch' may keep running beside it:
    no message is imported twice. One line per account event (connected, idle, new mail,
    error, reconnect) goes to the log and to stderr. SIGTERM or Ctrl-C finishes the fetch
    in hand and exits 0. 'espomail status' shows which accounts are watched;
    'espomail systemd' prints a service unit for it.

    \b
    Examples:
      espomail watch
      espomail watch --account support --account sales
      espomail systemd          # run it as a service
    """
    from espomail.services.watching import Watcher

    app = get_app()
    watcher = Watcher(app.store, app.settings, list(accounts) or None, actor=app.actor)
    _events_to_stderr(app)
    log = logging.getLogger("espomail.watch")

    def stop(number: int, _frame: object) -> None:
        name = signal.Signals(number).name
        if watcher.stopping:
            log.info("%s again: still finishing the fetch in hand", name)
            return
        log.info("%s: stopping after the fetch in hand", name)
        watcher.stop()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        watcher.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _events_to_stderr(app) -> None:  # noqa: ANN001
    """watch is a service: its event lines go to stderr (the journal) besides the log file."""
    log = logging.getLogger("espomail.watch")
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)  # the events are the service's journal, whatever log_level says
    if app.verbose or app.settings.log_file == "-":
        return  # the root logger writes to stderr already
    for handler in list(log.handlers):
        log.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(CleanFormatter("%(levelname)s: %(message)s"))
    log.addHandler(console)


COMMANDS = [watch]
