"""One lock per account, so overlapping runs and several fetch hosts never fetch the same
account at once.

Two layers: an OS file lock (``fcntl``) that the kernel releases when the process dies,
even by ``kill -9``; and a lease in the store (holder, expiry) that every host sharing one
store respects (SPEC 13). The store decides when a lease is free (``store/accounts.py``):
on SQLite holding the file lock proves that a lease of this host is stale; on PostgreSQL
the account row is claimed with ``FOR UPDATE SKIP LOCKED``, and a lease is free once it
expired by the database's clock or its holder's connection is gone.

The holder is a random id per process (two hosts may share a host name). While a fetch
holds leases, a thread renews them every ``lease_s / 3`` on a connection of its own, and
every cursor the fetch commits renews its account's lease in the same transaction or fails
when it was lost: a host stalled past its lease stores nothing more for that account.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from pathlib import Path

from espomail.store import accounts as accounts_q
from espomail.store.db import Store, ensure_private_dir

HOST = socket.gethostname()
PROCESS_ID = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"
log = logging.getLogger("espomail.locks")


def _process_id() -> str:
    """HOST:PID:RANDOM, made again after a fork (a child is another holder)."""
    global PROCESS_ID
    if PROCESS_ID.split(":")[-2] != str(os.getpid()):
        PROCESS_ID = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"
    return PROCESS_ID


class AccountLock:
    def __init__(self, data_dir: Path, account_id: int, lease_s: int) -> None:
        self.path = data_dir / "locks" / f"account-{account_id}.lock"
        self.account_id = account_id
        self.lease_s = lease_s
        self.host = HOST
        self.holder = _process_id()
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
        try:
            self.holder = accounts_q.lease_holder(store, _process_id())
            with store.atomic():
                taken = accounts_q.take_lease(store, self.account_id, self.holder, self.lease_s, self.host)
        except BaseException:  # the store locked or full: do not keep the file lock (a long-lived process)
            self._unlock()
            raise
        if not taken:
            self._unlock()
            return False
        accounts_q.hold(store, self.account_id, self.holder, self.lease_s)
        _keeper(store).add(self.account_id, self.holder, self.lease_s)
        return True

    def release(self, store: Store) -> None:
        if self._fd is None:
            return
        try:
            _keeper(store).remove(self.account_id)
            accounts_q.unhold(store, self.account_id)
            with store.atomic():
                accounts_q.release_lease(store, self.account_id, self.holder)
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


_keepers: weakref.WeakKeyDictionary[Store, LeaseKeeper] = weakref.WeakKeyDictionary()
_keepers_lock = threading.Lock()


def _keeper(store: Store) -> LeaseKeeper:
    with _keepers_lock:
        keeper = _keepers.get(store)
        if keeper is None:
            keeper = _keepers[store] = LeaseKeeper(store)
        return keeper


class LeaseKeeper:
    """Renews the leases a process holds through ``store``, every lease_s / 3, on a second
    connection (opened only when a fetch lasts that long), so that renewing never waits
    for the fetch's own database work."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held: dict[int, tuple[str, int]] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, account_id: int, holder: str, lease_s: int) -> None:
        with self._changed:
            self.held[account_id] = (holder, lease_s)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def remove(self, account_id: int) -> None:
        with self._changed:
            self.held.pop(account_id, None)
            self._changed.notify_all()

    def _run(self) -> None:
        connection: Store | None = None
        renewed = time.monotonic()
        try:
            while True:
                with self._changed:
                    while self.held:
                        interval = max(0.2, min(lease_s for _, lease_s in self.held.values()) / 3)
                        left = renewed + interval - time.monotonic()
                        if left <= 0:
                            break
                        self._changed.wait(left)
                    if not self.held:
                        self._thread = None  # add() starts another one
                        return
                    held = dict(self.held)
                connection = connection or self.store.reopen()
                self._renew(connection, held)
                renewed = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - the fetch's own commits renew too (and notice a loss)
            log.warning("renewing fetch leases failed: %s", exc)
            with self._changed:
                self._thread = None
        finally:
            if connection is not None:
                connection.close()

    def _renew(self, connection: Store, held: dict[int, tuple[str, int]]) -> None:
        with connection.atomic():
            for account_id, (holder, lease_s) in sorted(held.items()):
                if not accounts_q.renew_lease(connection, account_id, holder, lease_s):
                    log.warning("account %s: the fetch lease was taken over by another host", account_id)
                    with self._changed:
                        self.held.pop(account_id, None)
