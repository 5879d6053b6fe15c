"""Reading messages for ``email import``: one file, an mbox, a Maildir or a directory.

mbox files are split only at real separators, as mutt and getmail read them: a ``From ``
line at the start of the file or after an empty line, that has the ``From SENDER DATE``
shape (``From alice@example.com Mon Feb  8 02:53:47 1993``; the sender may be missing or
quoted, the date may carry a zone). A body line starting ``From `` that does not have that
shape, or that follows a non-empty line, stays in its message. ``>From `` lines are
unquoted as in mboxrd (one ``>`` removed from ``>From ``, ``>>From ``, ...); messages are
read one at a time through a memory map, never the whole file at once.

A directory is read recursively (hidden files and directories skipped); a file in it is
taken only when it looks like mail (SPEC 11: a header block at its start with at least a
From, Date or Message-ID field); others come back as skipped, with the reason.
"""

from __future__ import annotations

import dataclasses
import mailbox
import mmap
import re
from collections.abc import Iterator
from pathlib import Path

from espomail.errors import NotFound
from espomail.mail.parse import looks_like_mail

_DAY = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# From SENDER [DAY[,]] MONTH DD HH:MM[:SS] [ZONE] YYYY [ZONE], or with DD MONTH (some writers).
SEPARATOR = re.compile(
    rb"From (?:\"[^\"\r\n]{0,256}\"\S{0,256}|\S{0,512}) +(?:" + _DAY + rb",? +)?"
    rb"(?:" + _MONTH + rb" +\d{1,2}|\d{1,2} +" + _MONTH + rb")"
    rb",? +(?:\d{4} +)?\d{1,2}:\d{2}(?::\d{2})?"  # time, year before it in the DD MONTH form
    rb"(?: +[A-Za-z0-9+:-]{1,10}){0,2}(?: +\d{4})?(?: +[A-Za-z0-9+:-]{1,10})? *\r?$",  # zones and year
    re.I,
)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)
_HEAD_BYTES = 65_536  # read of a file to tell whether it is mail or an mbox


@dataclasses.dataclass(frozen=True)
class Source:
    """One message found in the source (``raw``), or a file that is not mail (``skipped``
    says why; ``raw`` is empty)."""

    name: str
    raw: bytes = b""
    skipped: str | None = None


def read_source(path: Path) -> Iterator[Source]:
    """Every message in a file, an mbox, a Maildir or a directory, in a stable order."""
    if not path.exists():
        raise NotFound(f"no file or directory {path}")
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            yield from _maildir(path)
        else:
            yield from _directory(path)
        return
    if is_mbox(_head(path)):
        yield from read_mbox(path, path.name)
        return
    yield Source(path.name, path.read_bytes())


def _maildir(path: Path) -> Iterator[Source]:
    box = mailbox.Maildir(str(path), factory=None, create=False)
    for key in sorted(box.keys()):
        yield Source(f"{path.name}/{key}", box.get_bytes(key))


def _directory(path: Path) -> Iterator[Source]:
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path)
        if any(part.startswith(".") for part in relative.parts) or not file.is_file():
            continue
        head = _head(file)
        if is_mbox(head):
            yield from read_mbox(file, str(relative))
        elif not head.strip():
            yield Source(str(relative), skipped="empty file")
        elif looks_like_mail(head):
            yield Source(str(relative), file.read_bytes())
        else:
            yield Source(str(relative), skipped="not mail: no From, Date or Message-ID header at its start")


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(_HEAD_BYTES)


def is_mbox(head: bytes) -> bool:
    """Whether a file starting with ``head`` is an mbox: its first line is a separator."""
    end = head.find(b"\n")
    return head.startswith(b"From ") and SEPARATOR.match(head[: end if end >= 0 else len(head)]) is not None


def read_mbox(path: Path, name: str) -> Iterator[Source]:
    """The messages of an mbox file, ``name#1``, ``name#2`` ..."""
    with path.open("rb") as handle:
        if path.stat().st_size == 0:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            number = 0
            for start, end in split_mbox(data):
                message = data[start:end]
                if message.strip():  # two separators in a row hold no message
                    number += 1
                    yield Source(f"{name}#{number}", unquote(message))


def split_mbox(data: bytes | mmap.mmap) -> Iterator[tuple[int, int]]:
    """(start, end) of each message in an mbox: after its separator line, up to the empty
    line before the next separator (that line belongs to the separator)."""
    start = _after_line(data, 0) if SEPARATOR.match(data, 0, _line_end(data, 0)) else 0
    position = start
    while (found := data.find(b"\nFrom ", position)) >= 0:
        line = found + 1
        blank = _blank_line_before(data, line)
        if blank is not None and SEPARATOR.match(data, line, _line_end(data, line)):
            yield start, blank
            start = _after_line(data, line)
        position = line
    if start < len(data):
        end = len(data)
        if data[end - 2 : end] == b"\n\n":  # the empty line that ends an mbox
            end -= 1
        elif data[end - 3 : end] == b"\n\r\n":
            end -= 2
        yield start, max(start, end)


def _line_end(data: bytes | mmap.mmap, start: int) -> int:
    end = data.find(b"\n", start)
    return len(data) if end < 0 else end


def _after_line(data: bytes | mmap.mmap, start: int) -> int:
    return min(len(data), _line_end(data, start) + 1)


def _blank_line_before(data: bytes | mmap.mmap, line: int) -> int | None:
    """Where the empty line before the line at ``line`` starts, or None when the line
    before is not empty. ``line - 1`` is the newline that ends it."""
    if line >= 2 and data[line - 2 : line] == b"\n\n":
        return line - 1
    if line >= 3 and data[line - 3 : line] == b"\n\r\n":
        return line - 2
    if line in (1, 2) and data[:line].strip() == b"":  # an empty first line
        return 0
    return None


def unquote(message: bytes) -> bytes:
    """mboxrd: one ``>`` less on every ``>From ``, ``>>From `` ... line."""
    return _QUOTED_FROM.sub(rb"\1", message) if b">From " in message else message
