"""What the database engine's errors mean, for messages that say what to do.

The rest of the code never sees the engine: it asks ``is_engine_failure(exc)`` whether an
error is the store failing (not a value of one message), ``failure_kind(exc)`` whether it is
the disk, the lock or a read-only store (None: a bug), ``on_server(exc)`` whether a
PostgreSQL server said it, and ``lock_holder`` who holds a SQLite store's write lock.
PostgreSQL's errors are told apart by their SQLSTATE (psycopg gives it as ``sqlstate``).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from espomail.store import db

DISK_FULL, LOCKED, READ_ONLY = "disk_full", "locked", "read_only"


def busy_timeout_s() -> float:
    """How long a command waits for another writer before giving up."""
    return db.BUSY_TIMEOUT_S


# PostgreSQL's SQLSTATE classes that are the server or its machine, never a value of one
# message: connection (08), transaction state (25: a read-only standby), rollbacks (40:
# serialization, deadlock), insufficient resources (53: disk full, memory, connections),
# object state (55: a lock not available), operator intervention (57: shutdown, cancel),
# system error (58: I/O), internal error (XX).
_SERVER_CLASSES = ("08", "25", "40", "53", "55", "57", "58", "XX")
_SERVER_KINDS = {"53100": DISK_FULL, "25006": READ_ONLY}


def on_server(exc: BaseException) -> str | None:
    """The SQLSTATE of an error a PostgreSQL server reported, else None."""
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) and len(state) == 5 else None


def is_engine_failure(exc: BaseException) -> bool:
    """The engine failed (disk, lock, I/O), as opposed to a bad value given to it."""
    state = on_server(exc)
    if state is not None:
        return state[:2] in _SERVER_CLASSES
    return isinstance(exc, sqlite3.OperationalError)


def failure_kind(exc: BaseException) -> str | None:
    state = on_server(exc)
    if state is not None:
        return _SERVER_KINDS.get(state)
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    text = str(exc).lower()
    if "disk is full" in text or "disk full" in text:
        return DISK_FULL
    if "locked" in text or "busy" in text:
        return LOCKED
    if "readonly" in text or "read-only" in text:
        return READ_ONLY
    return None


def lock_holder(db_path: Path) -> str | None:
    """``pid 1234: espomail fetch`` for a process holding a write lock on the store (SQLite
    locks the database and its -shm file with POSIX locks; on Linux /proc/locks lists them
    with the holder's pid and the file's inode); None when unknown."""
    inodes = set()
    for path in (Path(db_path), Path(f"{db_path}-shm"), Path(f"{db_path}-wal")):
        try:
            inodes.add(os.stat(path).st_ino)
        except OSError:
            continue
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for pid in _writers(lines, inodes):
        return f"pid {pid}: {_command(pid)}" if _command(pid) else f"pid {pid}"
    return None


def _writers(lines: list[str], inodes: set[int]) -> list[int]:
    """Pids (not ours) holding a WRITE lock on one of ``inodes``, in /proc/locks order."""
    found = []
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 8:  # a waiter, or not a lock line
            continue
        kind, pid, device = fields[3], fields[4], fields[5]
        try:
            inode = int(device.rsplit(":", 1)[1])
            pid_number = int(pid)
        except (IndexError, ValueError):
            continue
        if kind == "WRITE" and inode in inodes and pid_number > 0 and pid_number != os.getpid():
            if pid_number not in found:
                found.append(pid_number)
    return found


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    words = [w.decode("utf-8", "replace") for w in raw.split(b"\0") if w]
    if len(words) > 2 and words[1:3] == ["-m", "espomail"]:
        words = ["espomail", *words[3:]]
    elif words and words[0].endswith("/espomail"):
        words[0] = "espomail"
    elif len(words) > 1 and words[1].endswith("/espomail"):
        words = ["espomail", *words[2:]]
    text = " ".join(words)
    return text if len(text) <= 120 else text[:119] + "…"
