"""``espomail init``: create the store (and a starter config)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from espomail.cli.app import get_app, open_settings_store
from espomail.cli.output import emit, json_option, message
from espomail.config import starter_config
from espomail.store.db import ensure_private_dir
from espomail.store.migrations import MIGRATIONS, apply_migrations, pending


@click.command()
@json_option
def init() -> None:
    """Create the store, or bring it up to date (safe to run again).

    The store is a SQLite file, or the tables of a PostgreSQL database when --db or
    ESPOMAIL_DB is a postgresql:// URL (the database must exist; espomail creates its
    tables there).

    With the root option --config PATH naming a file that does not exist yet, a starter
    config with every key commented is written there first.

    \b
    Examples:
      espomail --config ~/.config/espomail/config.yaml init
      espomail --db postgresql://espomail@db.example.com/espomail init
    """
    app = get_app()
    wrote_config = _write_starter_config(app.config_path)
    settings = app.settings
    ensure_private_dir(settings.data_dir)
    existed = settings.db_path.exists() if settings.db_path else None
    store = open_settings_store(settings, migrate=False)
    try:
        if existed is None:  # a PostgreSQL database: "created" means its tables were
            existed = len(pending(store)) < len(MIGRATIONS)
        applied = apply_migrations(store)
        where = store.describe()
    finally:
        store.close()
    result = {
        "db_path": where,
        "created": not existed,
        "migrations_applied": applied,
        "config_path": str(settings.config_path) if settings.config_path else None,
        "config_written": wrote_config,
    }
    if app.json:
        emit(result)
        return
    if wrote_config:
        message(f"Wrote a starter config to {settings.config_path}")
    state = "Created" if not existed else ("Upgraded" if applied else "Up to date:")
    message(f"{state} store {where}")


def _write_starter_config(path: str | None) -> bool:
    if not path or Path(path).expanduser().exists():
        return False
    target = Path(path).expanduser()
    ensure_private_dir(target.parent)
    fd = os.open(str(target), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(starter_config())
    return True


COMMANDS = [init]
