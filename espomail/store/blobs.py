"""The raw source of every message, in append-only pack files beside the database.

``espomail.db`` holds everything else and, on each email and delivery row, where its
source is: the pack file, the offset and the size (and the source's SHA-256). The bytes
live in ``espomail-raw/`` beside the database (mode 0700). Why not in SQLite: raw mail is
nine tenths of what a fetch writes; in WAL mode SQLite writes every byte twice (the WAL,
then the checkpoint) and spends more CPU on it than the parser. A pack is written once,
with one ``fdatasync`` per batch.

Order makes it safe: a batch's bytes are synced *before* the transaction that inserts
the rows naming them commits. A crash in between leaves unreferenced bytes at the end
of a pack (wasted space, never read); never a row whose source is missing. Each writer
(one per fetch thread or process) appends to packs of its own, so concurrent fetches
never interleave. Deleting an email zeroes its copies once the deletion has committed
(packs are not compacted).

On PostgreSQL the sources live in the database (``store/postgres.py``, table
``raw_sources``); packs are only a local *spool* there: the download thread and the parse
worker use them as here, and the bytes move into the database either with the rows that
name them (in their transaction) or, in a fetch of several batches, just before, on a
second connection (``RawStore.uploader``). Spool packs are not synced, hold one batch each
and are deleted once that batch is stored.

Reads are checked: a missing pack, a source cut short or bytes that no longer match the
stored SHA-256 raise RawSourceError (saying what to do), never return damaged content.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from espomail.errors import EspomailError

PACK_LIMIT = 1 << 30  # start a new pack after 1 GiB
DATABASE = "db"  # the "pack" of a source kept in the database (PostgreSQL): its offset is the row id
# Directories of spool packs (PostgreSQL): not synced, one file per append.
SPOOLS: set[Path] = set()


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def directory_for(db_path: Path) -> Path:
    """``/x/espomail.db`` -> ``/x/espomail-raw/``."""
    return db_path.with_name(f"{db_path.stem}-raw")


@dataclasses.dataclass(frozen=True)
class Location:
    sha256: str
    pack: str
    offset: int
    size: int


_counter = itertools.count(1)


class RawSourceError(EspomailError):
    """A raw source cannot be read back intact (exit 1)."""

    code = "raw_source_error"


class PackWriter:
    """Appends raw sources to pack files of its own; ``append`` returns when they are durable."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.spool = self.directory in SPOOLS
        self._file = None
        self._name = ""

    def append(self, items: Iterable[tuple[str, bytes]]) -> list[Location]:
        """Write ``items`` as they come (an iterator keeps one message in memory at a time)."""
        try:
            return self._append(items)
        except OSError as exc:
            if exc.filename is None:  # a write or sync error names no file: say which pack
                raise OSError(exc.errno, exc.strerror, str(self.directory / self._name)) from exc
            raise

    def _append(self, items: Iterable[tuple[str, bytes]]) -> list[Location]:
        handle = None
        locations = []
        for sha, raw in items:
            if handle is None:
                handle = self._current()
                offset = handle.tell()
            handle.write(raw)
            locations.append(Location(sha, self._name, offset, len(raw)))
            offset += len(raw)
        if handle is None:
            return []
        handle.flush()
        if self.spool:
            self.close()  # a spool pack holds one batch: it is deleted once that batch is stored
        else:
            os.fdatasync(handle.fileno())
        return locations

    def _current(self):  # noqa: ANN202 - a binary file
        if self._file is not None and self._file.tell() < PACK_LIMIT:
            return self._file
        self.close()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self._name = f"pack-{stamp}-{socket.gethostname()}-{os.getpid()}-{next(_counter)}.dat"
        fd = os.open(self.directory / self._name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "ab")
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RawStore:
    """Reads (and, for single messages, writes) raw sources; the rows that name them are the emails and deliveries."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._writer: PackWriter | None = None
        self._lock = threading.Lock()

    @property
    def writer(self) -> PackWriter:
        if self._writer is None:
            self._writer = PackWriter(self.directory)
        return self._writer

    def put(self, items: list[tuple[str, bytes]]) -> list[Location]:
        """Keep raw sources ((sha256, bytes) pairs) for rows about to be inserted."""
        return self.writer.append(items)

    def adopt(self, places: list[tuple]) -> list[tuple]:
        """The locations to write in rows for these (pack, offset, size, sha256) places:
        here the packs are the store, so they are kept as they are."""
        return [place[:3] for place in places]

    def uploader(self, account_id: int) -> None:
        """Packs are the store here: nothing to upload ahead (PostgreSQL's DatabaseRaw has one)."""
        return None

    def settle(self, batch: Iterable[Location], unused: Iterable[Location]) -> None:
        """Nothing to do: unneeded bytes in a pack are wasted space, never read."""

    def drop_abandoned(self, account_id: int) -> int:
        """Nothing to do: a batch that never committed left bytes at the end of a pack, never read."""
        return 0

    def read(self, location: Location | tuple) -> bytes:
        """The bytes at a Location, or at ``(pack, offset, size[, sha256])``; checked against
        the SHA-256 when it is known. RawSourceError when they cannot be read back intact."""
        if isinstance(location, Location):
            pack, offset, size, sha = location.pack, location.offset, location.size, location.sha256
        else:
            pack, offset, size, sha = (*location, None)[:4]
        path = self.directory / pack
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(size)
        except FileNotFoundError:
            raise RawSourceError(
                f"its raw source is missing: the pack file {path} does not exist (deleted or moved?); "
                "restore the espomail-raw directory from a backup"
            ) from None
        except OSError as exc:
            raise RawSourceError(f"cannot read its raw source from {path}: {exc.strerror or exc}") from None
        if len(data) != size:
            raise RawSourceError(
                f"its raw source is cut off: {path} holds {len(data)} of its {size} bytes at offset {offset} "
                "(the pack was truncated); restore the pack from a backup"
            )
        if sha and digest(data) != sha:
            raise RawSourceError(
                f"its raw source is damaged: the bytes at offset {offset} of {path} no longer match their "
                "SHA-256; restore the pack from a backup"
            )
        return data

    def zero(self, locations: Iterable[tuple[str, int, int]]) -> None:
        """Overwrite deleted sources with zeros, so deleted mail does not stay on disk."""
        for pack, offset, size in locations:
            path = self.directory / pack
            if not path.exists():
                continue
            with open(path, "r+b") as handle:
                handle.seek(offset)
                handle.write(b"\0" * size)
                handle.flush()
                os.fdatasync(handle.fileno())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
