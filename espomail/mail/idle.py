"""IMAP IDLE (RFC 2177) on one folder of a logged-in ImapSession, for ``espomail watch``.

``IdleFolder.wait()`` blocks in ``poll()`` on the connection's socket until the server says
something (new mail, an expunge, "still here"), the connection ends, or the timeout; a
blocked thread costs no CPU. IDLE is ended and issued again before the server's
inactivity timeout (RFC 2177 asks clients to re-issue it at least every 29 minutes).
Another thread stops a wait at once with ``interrupt()`` (it shuts the socket down).

imapclient's ``idle_check()`` returns an empty list both when nothing came and when the
server closed the connection; here a closed connection (EOF, BYE, a reset) raises
MailServerError, so the caller reconnects.
"""

from __future__ import annotations

import dataclasses
import imaplib
import select
import socket
import time

from imapclient.exceptions import IMAPClientError

from espomail.errors import MailServerError
from espomail.mail.imap import ImapSession, describe_error

RENEW_S = 25 * 60  # end and re-issue IDLE this often: well before the 29 minutes of RFC 2177
_CLOSED = select.POLLHUP | select.POLLERR | select.POLLNVAL | getattr(select, "POLLRDHUP", 0)


def supports_idle(session: ImapSession) -> bool:
    return "IDLE" in session.capabilities or b"IDLE" in session.capabilities


@dataclasses.dataclass
class Changes:
    """What the server reported during one wait."""

    exists: int | None = None  # the last "* N EXISTS": the folder's message count
    recent: int = 0
    expunged: int = 0
    responses: int = 0
    renewed: bool = False  # IDLE was ended and issued again during this wait

    @property
    def new_mail(self) -> bool:
        """EXISTS or RECENT: a message may have arrived (the fetch's STATUS tells for sure)."""
        return self.exists is not None or self.recent > 0


class IdleFolder:
    """One folder of one session, kept in IDLE between ``wait()`` calls."""

    def __init__(self, session: ImapSession, folder: str, renew_s: float = RENEW_S) -> None:
        self.session, self.folder, self.renew_s = session, folder, renew_s
        self.client = session.client
        self._idling_since: float | None = None
        self._interrupted = False
        self._silent_wakeups = 0
        self._carried = Changes()  # reported while IDLE was being (re)issued: the next wait returns it

    @property
    def where(self) -> str:
        return f"{self.session.host}:{self.session.port}"

    def start(self) -> int:
        """SELECT the folder read-only and enter IDLE; returns the folder's message count."""
        _keepalive(self.client.socket())
        with self._guard(f"selecting folder '{self.folder}'"):
            selected = self.client.select_folder(self.folder, readonly=True)
        self._idle()
        return int(selected.get(b"EXISTS", 0))

    def wait(self, timeout: float) -> Changes:
        """Block until the server reports something or ``timeout`` seconds pass (the IDLE is
        renewed when due). Raises MailServerError when the connection is gone."""
        changes, self._carried = self._carried, Changes()
        if changes.new_mail:
            return changes
        due = self._idling_since + self.renew_s - time.monotonic() if self._idling_since else 0
        if due <= 0:
            self._renew(changes)
            due = self.renew_s
        events = self._poll(min(timeout, due))
        if self._interrupted:
            raise MailServerError("stopped")
        if events:
            with self._guard("waiting for new mail (IDLE)"):
                responses = self.client.idle_check(timeout=0)
            self._note(responses, changes)
            # Readable with nothing to read, again and again, is a closed connection too.
            self._silent_wakeups = 0 if responses else self._silent_wakeups + 1
            if events & _CLOSED or self._silent_wakeups >= 3:
                raise MailServerError(f"{self.where} closed the connection")
        return changes

    def interrupt(self) -> None:
        """From another thread: end a wait now (the connection is unusable afterwards)."""
        self._interrupted = True
        try:
            self.client.socket().shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """End IDLE and log out (a LOGOUT sent in IDLE would wait for an answer that never comes);
        just close the socket after ``interrupt()`` or an error."""
        if self._interrupted or self._idling_since is None:
            _shutdown(self.client)
            return
        try:
            self.client.idle_done()
        except Exception:  # noqa: BLE001 - broken: nothing to log out from
            _shutdown(self.client)
            return
        self._idling_since = None
        self.session.close()

    # -- internals ------------------------------------------------------------------------
    def _idle(self) -> None:
        """Send IDLE and read up to its "+" continuation. A server may report new mail before
        it (imapclient's ``idle()`` raises then): such responses are kept for the next wait."""
        imap = self.client._imap  # noqa: SLF001 - imapclient's idle() cannot take them
        for kind in ("EXISTS", "RECENT"):
            imap.untagged_responses.pop(kind, None)  # left by SELECT or earlier commands: not news
        with self._guard("starting IDLE"):
            tag = imap._command("IDLE")  # noqa: SLF001
            while imap._get_response() is not None:  # noqa: SLF001 - None: the continuation
                if imap.tagged_commands.get(tag) is not None:
                    raise MailServerError(f"{self.where} refused IDLE: {imap.tagged_commands[tag]}")
            for kind in ("EXISTS", "RECENT"):
                values = imap.untagged_responses.pop(kind, None)
                if values:
                    setattr(self._carried, kind.lower(), int(values[-1]))
        self.client._idle_tag = tag  # noqa: SLF001 - what idle_done() ends
        self._idling_since = time.monotonic()

    def _renew(self, changes: Changes) -> None:
        if self._idling_since is not None:
            with self._guard("renewing IDLE"):
                _text, responses = self.client.idle_done()
            self._note(responses, changes)
            changes.renewed = True
        self._idle()

    def _poll(self, timeout: float) -> int:
        sock = self.client.socket()
        pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted, invisible to poll()
        if pending is not None and pending() > 0:
            return select.POLLIN
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN | _CLOSED)
        found = poller.poll(max(0, int(timeout * 1000)))
        return found[0][1] if found else 0

    def _note(self, responses: list, changes: Changes) -> None:
        for response in responses:
            changes.responses += 1
            if len(response) < 2:
                continue
            first, second = response[0], response[1]
            if first == b"BYE":
                raise MailServerError(f"{self.where} ended the session: {_text(second)[:100]}")
            if second == b"EXISTS" and isinstance(first, int):
                changes.exists = first
            elif second == b"RECENT" and isinstance(first, int):
                changes.recent = max(changes.recent, first)
            elif second == b"EXPUNGE":
                changes.expunged += 1

    def _guard(self, what: str) -> _Guard:
        return _Guard(self, what)


class _Guard:
    """Protocol and socket errors while idling become MailServerError (reconnect)."""

    def __init__(self, idle: IdleFolder, what: str) -> None:
        self.idle, self.what = idle, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:  # noqa: ANN001
        if exc is None or isinstance(exc, MailServerError):
            return False
        if self.idle._interrupted:  # noqa: SLF001 - our own shutdown, not a server failure
            raise MailServerError("stopped") from None
        if isinstance(exc, OSError | IMAPClientError | imaplib.IMAP4.error | imaplib.IMAP4.abort):
            session = self.idle.session
            reason = describe_error(exc, session.host, session.port)
            raise MailServerError(f"{self.what}: {reason}") from None
        return False


def _keepalive(sock: socket.socket) -> None:
    """TCP keepalive: a connection that died without a word (a NAT timeout, a lost host) ends
    the wait within about two minutes instead of at the next IDLE renewal."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass


def _shutdown(client) -> None:  # noqa: ANN001 - an IMAPClient
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - already closed
        pass


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return str(value)
