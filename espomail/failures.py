"""Failures of the machine rather than of espomail: a full disk, a store locked by another
writer. They become one ``Error:`` line that says what to do (never a traceback), for the
CLI and for the fetch's per-account errors alike.
"""

from __future__ import annotations

import errno
from pathlib import Path

from espomail.errors import EspomailError
from espomail.store import engine

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class MachineError(EspomailError):
    """The disk, the file system or the store's lock (exit 1)."""

    code = "system_error"


def translate(exc: BaseException, store_path: Path | None = None) -> EspomailError | None:
    """An EspomailError saying what happened and what to do, or None for a bug."""
    if isinstance(exc, EspomailError):
        return exc
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        where = exc.filename or store_path or "the data directory"
        what = "disk full (ENOSPC)" if exc.errno == errno.ENOSPC else "disk quota exceeded (EDQUOT)"
        return MachineError(f"{what} writing {where}: free space and rerun; nothing was lost")
    kind = engine.failure_kind(exc)
    if kind is not None and engine.on_server(exc):
        return _server_failure(kind)
    store = f"the store {store_path}" if store_path else "the store"
    if kind == engine.DISK_FULL:
        return MachineError(f"disk full (ENOSPC) writing {store}: free space and rerun; nothing was lost")
    if kind == engine.LOCKED:
        holder = engine.lock_holder(store_path) if store_path else None
        by = f"another process ({holder})" if holder else "another process"
        return MachineError(
            f"{store} is locked by {by} for longer than the busy timeout ({engine.busy_timeout_s():g} s): "
            "wait for it to finish, then rerun"
        )
    if kind == engine.READ_ONLY:
        return MachineError(f"{store} is read-only: check the permissions of its file and directory")
    if isinstance(exc, PermissionError):
        return MachineError(f"permission denied on {exc.filename or 'a file'}: check its owner and mode")
    return None


def _server_failure(kind: str) -> MachineError:
    """What a PostgreSQL server's refusal means (its error names no file of ours)."""
    if kind == engine.DISK_FULL:
        return MachineError(
            "the PostgreSQL server's disk is full: free space on the database server and rerun; nothing was lost"
        )
    return MachineError(
        "the PostgreSQL server refuses writes (a read-only standby, or default_transaction_read_only): "
        "point --db/ESPOMAIL_DB at the primary server and rerun; nothing was changed"
    )


def describe(exc: BaseException, store_path: Path | None = None) -> str:
    """One line for a failure: what ``translate`` says, else the bug's type and message."""
    known = translate(exc, store_path)
    if known is not None:
        return known.message
    return f"unexpected {type(exc).__name__}: {exc}"
