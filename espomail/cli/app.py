"""The object every command receives: settings, the open store and the acting user.

Built once by the root command from ``--config``, ``--db``, ``--db-password-cmd``, ``--as``
(and their environment variables); opened lazily so that ``--help`` never touches the database.
"""

from __future__ import annotations

import dataclasses
import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from espomail.cli import logtargets
from espomail.config import Settings, load_settings
from espomail.store.db import Store, open_store

if TYPE_CHECKING:  # loaded with the first command that needs an actor, not for --help/--version
    from espomail.policy.access import Actor


@dataclasses.dataclass
class App:
    config_path: str | None = None
    db_path: str | None = None
    db_password_cmd: str | None = None
    as_user: str | None = None
    verbose: int = 0
    json: bool = False
    _settings: Settings | None = None
    _store: Store | None = None
    _actor: Actor | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides = {"db_path": self.db_path, "db_password_cmd": self.db_password_cmd}
            self._settings = load_settings(self.config_path, overrides=overrides)
            setup_logging(self._settings, self.verbose)
        return self._settings

    @property
    def settings_loaded(self) -> Settings | None:
        """The settings if a command loaded them (never loads them itself)."""
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_settings_store(self.settings)
        return self._store

    @property
    def actor(self) -> Actor:
        if self._actor is None:
            from espomail.services.people import actor_for

            self._actor = actor_for(self.store, self.as_user)
        return self._actor

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def open_settings_store(settings: Settings, create: bool = True, migrate: bool = True) -> Store:
    """The store the settings name (a SQLite file or a PostgreSQL URL)."""
    return open_store(
        settings.database,
        create=create,
        migrate=migrate,
        password_cmd=settings.db_password_cmd,
        timeout=settings.timeout_s,
        stall_s=settings.lease_s,
    )


def get_app() -> App:
    return click.get_current_context().find_object(App)


class CleanFormatter(logging.Formatter):
    """Log lines with control characters escaped: a message may quote a subject or a
    server's answer, which must not drive the terminal or forge log lines (SPEC 11)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        from espomail.cli.output import clean

        return clean(super().formatMessage(record))


def setup_logging(settings: Settings, verbose: int) -> None:
    """Log to the configured target (never stdout); ``-v`` also logs to stderr.

    A handler that cannot write (a full disk, syslog gone) drops the line quietly:
    logging never prints its own tracebacks, and a failing log never fails a command.
    """
    logging.raiseExceptions = False
    root = logging.getLogger("espomail")
    root.handlers.clear()
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose > 1 else getattr(logging, settings.log_level.upper()))
    handler = _target_handler(settings)
    root.addHandler(handler)
    if verbose and not _is_stderr(handler):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(CleanFormatter("%(levelname)s: %(message)s"))
        root.addHandler(console)


def _is_stderr(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stderr


def _target_handler(settings: Settings) -> logging.Handler:
    if settings.log_target == "syslog":
        handler = logtargets.syslog_handler()
    elif settings.log_target == "journald":
        handler = logtargets.journald_handler()
    else:
        handler = None
    if handler is None:  # file, or no syslog/journal on this machine
        return _file_handler(settings)
    # The daemon stamps the time; the journal has the level as PRIORITY and the logger as LOGGER.
    journal = settings.log_target == "journald" and not isinstance(handler, logging.StreamHandler)
    handler.setFormatter(CleanFormatter("%(message)s" if journal else "%(levelname)s %(name)s: %(message)s"))
    return handler


def _file_handler(settings: Settings) -> logging.Handler:
    fmt = CleanFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.log_file == "-":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            path = Path(settings.log_file)
            if not path.parent.exists():
                from espomail.store.db import ensure_private_dir

                ensure_private_dir(path.parent)
            handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
            path.chmod(0o600)
        except OSError:
            handler = logging.NullHandler()
    handler.setFormatter(fmt)
    return handler
