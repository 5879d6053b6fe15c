"""``espomail store copy``: check the target, copy, count (the SQL is in store/copy.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from espomail.config import Settings
from espomail.errors import InvalidInput
from espomail.policy import access
from espomail.store import copy as copy_q
from espomail.store.blobs import directory_for
from espomail.store.db import Store, open_store
from espomail.store.migrations import apply_migrations
from espomail.store.urls import is_url, shown


def copy_store(
    source: Store, settings: Settings, actor: access.Actor, to: str, password_cmd: str | None = None
) -> copy_q.CopyReport:
    """Copy ``source`` into the empty store at ``to`` (a PostgreSQL URL or a SQLite file)."""
    access.require(actor, "admin", None, "copy the store")
    target_path = None if is_url(to) else Path(to).expanduser().resolve()
    if target_path is not None and source.path is not None and target_path == Path(source.path).resolve():
        raise InvalidInput(f"--to {target_path} is the store itself; name a new file or an empty database")
    created = target_path is not None and not target_path.exists()
    target = open_store(
        to if target_path is None else target_path,
        migrate=False,
        password_cmd=password_cmd,
        timeout=settings.timeout_s,
    )
    try:
        _refuse_unless_empty(target, to)
        apply_migrations(target)
        _refuse_unless_empty(target, to)
        report = copy_q.copy_store(source, target)
    except BaseException:
        target.close()
        if created:
            _remove_sqlite(target_path)
        raise
    target.close()
    return report


def _refuse_unless_empty(target: Store, to: str) -> None:
    where = shown(to) if is_url(to) else to
    foreign = copy_q.foreign_tables(target)
    if foreign:
        raise InvalidInput(
            f"the target {where} holds other tables ({', '.join(foreign[:5])}); copy into a new SQLite "
            "file, a bare PostgreSQL database or one just made by 'espomail init'"
        )
    busy = copy_q.tables_with_rows(target)
    if busy:
        raise InvalidInput(
            f"the target store {where} holds data ({', '.join(busy[:5])}); store copy fills only an "
            "empty store: a new SQLite file, a bare PostgreSQL database or one just made by 'espomail init'"
        )


def _remove_sqlite(path: Path) -> None:
    """Undo a target file this command created (a failed copy leaves nothing behind)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(directory_for(path), ignore_errors=True)
