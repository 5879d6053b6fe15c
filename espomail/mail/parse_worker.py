"""The parsing worker of a large fetch: a separate process, so that parsing runs on a
second core without sharing the interpreter lock with the main thread's database work.

It imports only the parser (a fast start; not the store: mail/ sits below it), reads batches of work
from stdin and writes results to stdout, each a length-prefixed pickle. Work: a list of
``((pack, offset, size), truncated)``; the bytes come from the packs (the page cache has
them: they never travel through the pipe). Result: a list of ``(summary, key, has_id)``.
Run as ``python -m espomail.mail.parse_worker PACK_DIRECTORY [LIMITS_JSON]``; LIMITS_JSON
(``limits_argument(ParseLimits.from_settings(settings))``) carries the configured cost
bounds, the defaults otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import struct
import sys
from pathlib import Path
from typing import BinaryIO

from espomail.mail.limits import DEFAULT, ParseLimits
from espomail.mail.parse import TRUNCATED_NOTE, key_for, parse_message, summary

HEADER = struct.Struct("!Q")


def write_frame(stream: BinaryIO, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_frame(stream: BinaryIO) -> object | None:
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (length,) = HEADER.unpack(head)
    return pickle.loads(stream.read(length))


def read_source(directory: Path, where: tuple[str, int, int]) -> bytes:
    """The bytes at (pack, offset, size) of a pack file (store/blobs.py writes them)."""
    pack, offset, size = where
    with open(directory / pack, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def limits_argument(limits: ParseLimits) -> str:
    """The command-line form of ``limits`` for the worker."""
    return json.dumps(dataclasses.asdict(limits))


def parse_batch(
    directory: Path, work: list[tuple[tuple[str, int, int], bool]], limits: ParseLimits = DEFAULT
) -> list[tuple]:
    results = []
    for where, truncated in work:
        raw = read_source(directory, where)
        note = TRUNCATED_NOTE if truncated else None
        parsed = parse_message(raw, headers_only=truncated, note=note, limits=limits)
        key, has_id = key_for(parsed, raw)
        results.append((summary(parsed), key, has_id))
    return results


def main(directory: str, limits_json: str | None = None) -> None:
    packs = Path(directory)
    limits = ParseLimits(**json.loads(limits_json)) if limits_json else DEFAULT
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while (work := read_frame(source)) is not None:
        write_frame(sink, parse_batch(packs, work, limits))


if __name__ == "__main__":
    main(*sys.argv[1:3])
