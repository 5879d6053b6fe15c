"""Log targets other than the log file (config ``log_target``): syslog and the systemd journal.

- ``syslog``: ``logging.handlers.SysLogHandler`` on ``/dev/log`` (facility user, ident
  ``espomail[PID]``); the log file when there is no ``/dev/log``.
- ``journald``: python-systemd's ``JournalHandler`` when it is installed; else the journal's
  native socket (``/run/systemd/journal/socket``: one datagram of ``KEY=value`` lines per
  record, with PRIORITY, SYSLOG_IDENTIFIER and LOGGER fields); else, when stderr is connected
  to the journal (``$JOURNAL_STREAM``, a systemd service), stderr with the ``<N>`` priority
  prefix that systemd reads; else syslog; else the log file.

Each handler drops a line it cannot deliver (logging.raiseExceptions is off): a missing log
daemon never fails a command.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import struct
import sys

SYSLOG_SOCKET = "/dev/log"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "espomail"
MAX_MESSAGE = 32 * 1024  # a datagram must fit the socket's buffer

# Python's levels -> syslog priorities (as journald and the <N> prefix read them).
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def priority(levelno: int) -> int:
    for level in sorted(PRIORITIES, reverse=True):
        if levelno >= level:
            return PRIORITIES[level]
    return 7


def syslog_handler() -> logging.Handler | None:
    if not os.path.exists(SYSLOG_SOCKET):
        return None
    try:
        handler = logging.handlers.SysLogHandler(
            address=SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_USER
        )
    except OSError:
        return None
    handler.ident = f"{IDENTIFIER}[{os.getpid()}]: "
    return handler


def journald_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler  # python-systemd, when installed
    except ImportError:
        pass
    else:
        return JournalHandler(SYSLOG_IDENTIFIER=IDENTIFIER)
    if os.path.exists(JOURNAL_SOCKET):
        return JournalSocketHandler(JOURNAL_SOCKET)
    if os.environ.get("JOURNAL_STREAM"):
        return PriorityPrefixHandler(sys.stderr)
    return syslog_handler()


class JournalSocketHandler(logging.Handler):
    """The journal's native protocol: a datagram of fields per record (systemd.journal-fields(7))."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)[:MAX_MESSAGE]
            fields = {
                "MESSAGE": text,
                "PRIORITY": str(priority(record.levelno)),
                "SYSLOG_IDENTIFIER": IDENTIFIER,
                "SYSLOG_PID": str(os.getpid()),
                "LOGGER": record.name,
            }
            self.socket.sendto(encode_fields(fields), self.path)
        except Exception:  # noqa: BLE001 - logging must never fail a command
            self.handleError(record)

    def close(self) -> None:
        self.socket.close()
        super().close()


def encode_fields(fields: dict[str, str]) -> bytes:
    """``KEY=value\\n`` per field; a value with a newline as KEY, a 64-bit length, the bytes."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class PriorityPrefixHandler(logging.StreamHandler):
    """``<N>message`` on stderr, which systemd turns into a journal entry of priority N."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{priority(record.levelno)}>{super().format(record)}"
