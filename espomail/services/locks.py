"""One lock per account, so overlapping cron runs never fetch the same account twice.

Two layers: an OS file lock (``fcntl``) that the kernel releases when the process dies,
even by ``kill -9``; and a lease in the store (holder, expiry) that several fetch hosts
sharing one database (the PostgreSQL future) respect. Holding the file lock proves that
any lease held by this host is stale, so it is taken over at once.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
from pathlib import Path

from espomail import timeutil
from espomail.store import accounts as accounts_q
from espomail.store.db import Store, ensure_private_dir

HOST = socket.gethostname()


class AccountLock:
    def __init__(self, data_dir: Path, account_id: int, lease_s: int) -> None:
        self.path = data_dir / "locks" / f"account-{account_id}.lock"
        self.account_id = account_id
        self.lease_s = lease_s
        self.host = HOST
        self.holder = f"{self.host}:{os.getpid()}"
        self._fd: int | None = None

    def acquire(self, store: Store) -> bool:
        ensure_private_dir(self.path.parent)
        fd = os.open(str(self.path), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        now = timeutil.now()
        expires = timeutil.iso(now + dt.timedelta(seconds=self.lease_s))
        try:
            with store.atomic():
                taken = accounts_q.take_lease(
                    store, self.account_id, self.holder, expires, timeutil.iso(now), self.host
                )
        except BaseException:  # the store locked or full: do not keep the file lock (a long-lived process)
            self._unlock()
            raise
        if not taken:
            self._unlock()
        return taken

    def release(self, store: Store) -> None:
        if self._fd is None:
            return
        try:
            with store.atomic():
                accounts_q.release_lease(store, self.account_id, self.holder)
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
