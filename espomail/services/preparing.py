"""Prepare downloaded messages for storing: parse, hash, commit the raw source to the blob
store. In-thread for small fetches; in a worker process for large ones.

A large fetch runs as a three-stage pipeline: the download thread reads batches from IMAP,
a worker process parses them and commits their raw sources (a second core, and no
interpreter lock shared with the main thread), and the main thread stores rows and runs
the import pipeline. Bounded queues keep at most a few batches in memory.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterable
from pathlib import Path

from espomail.mail.parse import summary
from espomail.services.ingest import Incoming, prepare
from espomail.store.blobs import Location, PackWriter, RawStore, digest

# Below this many messages a worker process costs more (start-up) than it saves.
WORKER_THRESHOLD = 400

Batch = list[tuple[bytes, int | None, bool]]  # (raw, uid, truncated)
Work = list[tuple[tuple[str, int, int], int | None, bool]]  # (where the raw is, uid, truncated)


def _parse(raw: bytes, uid: int | None, truncated: bool) -> tuple:
    item = prepare(raw, uid, truncated)
    return item.parsed, item.key, item.has_id


def _parse_packed(directory: str, work: Work) -> list[tuple]:
    """In the worker: read each raw source from its pack (the page cache has it) and parse
    it. The bytes never travel through a pipe, and only a summary comes back (no bodies:
    the few steps that need them parse the source again)."""
    packs = RawStore(Path(directory))
    results = []
    for where, uid, truncated in work:
        parsed, key, has_id = _parse(packs.read(where), uid, truncated)
        results.append((summary(parsed), key, has_id))
    return results


class Preparer:
    """Turns downloaded batches into Incoming items whose raw sources are durable.

    ``submit`` runs on the download thread: it hashes the messages and appends them to a
    pack (hashing and file I/O release the interpreter lock), then hands the parsing to
    the worker process (large fetches) or does it in place. It returns a callable that
    yields the finished items.
    """

    def __init__(self, directory: Path, use_worker: bool) -> None:
        self.directory = directory
        self._writer = PackWriter(directory)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        if use_worker:
            context = multiprocessing.get_context("spawn")
            self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context)

    def submit(self, batch: Iterable[tuple[bytes, int | None, bool]]) -> Callable[[], list[Incoming]]:
        batch = list(batch)
        shas = [digest(raw) for raw, _uid, _truncated in batch]
        locations = self._writer.append(zip(shas, (raw for raw, _uid, _truncated in batch), strict=True))
        if self._pool is not None:
            work = [
                ((loc.pack, loc.offset, loc.size), uid, truncated)
                for loc, (_raw, uid, truncated) in zip(locations, batch, strict=True)
            ]
            future = self._pool.submit(_parse_packed, str(self.directory), work)
            return lambda: _items(batch, shas, locations, future.result())
        parsed = [_parse(raw, uid, truncated) for raw, uid, truncated in batch]
        return lambda: _items(batch, shas, locations, parsed)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._writer.close()


def _items(batch: Batch, shas: list[str], locations: list[Location], parsed: list[tuple]) -> list[Incoming]:
    return [
        Incoming(b"", uid, truncated, result, sha, location, key, has_id, len(raw))
        for (raw, uid, truncated), sha, location, (result, key, has_id) in zip(
            batch, shas, locations, parsed, strict=True
        )
    ]
