"""Prepare downloaded messages for storing: hash them, write their raw sources to a pack,
parse them. In-thread for small fetches; with a worker process for large ones. On
PostgreSQL, a fetch of several batches also uploads each batch's sources into the database
on a connection of its own while the batch before is stored (store.postgres.RawUploader).

A large fetch runs as a three-stage pipeline: the download thread reads a batch from
IMAP, hashes it and appends it to a pack (hashing and file I/O release the interpreter
lock), and hands the parsing to a worker process (``espomail.mail.parse_worker``: a second
core, no interpreter lock shared with the main thread, and it reads the bytes from the
pack rather than through a pipe); the main thread stores rows and runs the import
pipeline. Bounded queues keep at most a few batches in memory.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from espomail.mail import parse_worker
from espomail.mail.limits import DEFAULT, ParseLimits
from espomail.services.ingest import Incoming, prepare
from espomail.store.blobs import Location, PackWriter, digest

# Below this many messages the worker's start-up (about 0.1 s) is not worth it.
WORKER_THRESHOLD = 400

Downloaded = Iterable[tuple[bytes, int | None, bool]]  # (raw, uid, truncated), as downloaded


class Uploader(Protocol):
    """Moves spooled sources into the store ahead of their batch (PostgreSQL: store.postgres.RawUploader)."""

    def submit(self, locations: list[Location]) -> Callable[[], list[Location]]: ...
    def release(self, locations: list[Location]) -> None: ...
    def close(self) -> None: ...


class ParseWorker:
    """The worker process: work frames in on stdin, results out on stdout, in order."""

    def __init__(self, directory: Path, limits: ParseLimits) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "espomail.mail.parse_worker", str(directory), parse_worker.limits_argument(limits)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._results: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="parse-results", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while (result := parse_worker.read_frame(self._process.stdout)) is not None:
            self._results.put(result)
        self._results.put(None)  # the worker ended

    def submit(self, work: list) -> Callable[[], list[tuple]]:
        parse_worker.write_frame(self._process.stdin, work)
        return self._next

    def _next(self) -> list[tuple]:
        result = self._results.get()
        if result is None:
            raise RuntimeError(f"the parsing worker ended unexpectedly (exit code {self._process.poll()})")
        return result

    def close(self) -> None:
        try:
            self._process.stdin.close()
            self._process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()


class Preparer:
    """Turns downloaded batches into Incoming items whose raw sources are durable.

    ``submit`` runs on the download thread and returns a callable that yields the items.
    """

    def __init__(
        self, directory: Path, use_worker: bool, limits: ParseLimits = DEFAULT, uploader: Uploader | None = None
    ) -> None:
        self._writer = PackWriter(directory)
        self._limits = limits
        self._worker = ParseWorker(directory, limits) if use_worker else None
        self._uploader = uploader

    def submit(self, batch: Downloaded) -> Callable[[], list[Incoming]]:
        meta, shas, locations, parsed = self._submit_to_worker(batch) if self._worker else self._parse_here(batch)
        if self._uploader is None:
            return lambda: _items(meta, shas, locations, parsed())
        uploaded = self._uploader.submit(locations)

        def items() -> list[Incoming]:
            result = _items(meta, shas, locations, parsed())  # the worker is done with the spool
            for item, location in zip(result, uploaded(), strict=True):
                item.location = location
            self._uploader.release(locations)
            return result

        return items

    def _parse_here(self, batch: Downloaded) -> tuple[list, list, list[Location], Callable[[], list[tuple]]]:
        batch = list(batch)
        shas = [digest(raw) for raw, _uid, _truncated in batch]
        locations = self._writer.append(zip(shas, (raw for raw, _uid, _truncated in batch), strict=True))
        parsed = []
        for raw, uid, truncated in batch:
            item = prepare(raw, uid, truncated, self._limits)
            parsed.append((item.parsed, item.key, item.has_id))
        meta = [(uid, truncated, len(raw)) for raw, uid, truncated in batch]
        return meta, shas, locations, lambda: parsed

    def _submit_to_worker(self, batch: Downloaded) -> tuple[list, list, list[Location], Callable[[], list[tuple]]]:
        """Each message goes to the pack as it is downloaded and is then dropped: memory holds
        one message, not a batch; the worker reads them back from the pack."""
        meta: list[tuple] = []  # (uid, truncated, size)
        shas: list[str] = []

        def hashed() -> Iterator[tuple[str, bytes]]:
            for raw, uid, truncated in batch:
                shas.append(digest(raw))
                meta.append((uid, truncated, len(raw)))
                yield shas[-1], raw

        locations = self._writer.append(hashed())
        work = [
            ((loc.pack, loc.offset, loc.size), truncated)
            for loc, (_uid, truncated, _size) in zip(locations, meta, strict=True)
        ]
        return meta, shas, locations, self._worker.submit(work)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        if self._uploader is not None:
            self._uploader.close()
        self._writer.close()


def _items(meta: list[tuple], shas: list[str], locations: list[Location], parsed: list[tuple]) -> list[Incoming]:
    """``meta``: (uid, truncated, size) per message."""
    return [
        Incoming(b"", uid, truncated, result, sha, location, key, has_id, size)
        for (uid, truncated, size), sha, location, (result, key, has_id) in zip(
            meta, shas, locations, parsed, strict=True
        )
    ]
