"""A hostile SMTP server on 127.0.0.1 for the outbox campaign (issue 12, Deliver 7).

Each connection gets a ``Fault``, from a fixed plan or drawn by a seeded random generator:
refusing recipients or the data with 4xx or 5xx, never greeting, taking the data and never
answering, closing the connection in the middle of the data, or closing it after the data
without an answer. It is a plain socket server (one thread per connection), so every byte
of the conversation is under the test's control, which aiosmtpd does not allow for the
hanging and dropping cases.

``accepted`` holds the messages answered 250 (what a real server would deliver);
``unanswered`` those received whole but never answered (a real server may or may not have
delivered them: the client cannot know, and sends again, with the same Message-ID).
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import enum
import random
import socket
import threading
from collections.abc import Callable, Sequence

from espomail.testing.dovecot import free_port


class Fault(enum.StrEnum):
    NONE = "none"  # a good server
    TEMP_RCPT = "451-rcpt"  # 451 to every RCPT TO
    PERM_RCPT = "550-rcpt"  # 550 to every RCPT TO
    TEMP_DATA = "451-data"  # 451 after the data
    PERM_DATA = "554-data"  # 554 after the data
    HANG_GREETING = "hang-greeting"  # takes the connection and says nothing
    HANG_DATA = "hang-data"  # takes the data and never answers
    DROP_IN_DATA = "drop-in-data"  # closes the connection half-way through the data
    DROP_AFTER_DATA = "drop-after-data"  # takes the whole data, closes without an answer


# The faults after which the client cannot know whether the message was delivered.
AMBIGUOUS = frozenset({Fault.HANG_DATA, Fault.DROP_AFTER_DATA})


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message_id(self) -> str | None:
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        return message["Message-ID"]


class FaultySMTP:
    """``FaultySMTP(plan=[Fault.HANG_DATA, Fault.NONE])`` (then NONE), or
    ``FaultySMTP(seed=7, faults=[...])`` drawing one fault per connection."""

    def __init__(
        self,
        plan: Sequence[Fault] = (),
        seed: int | None = None,
        faults: Sequence[Fault] = tuple(Fault),
        smtputf8: bool = False,
        hang_s: float = 30.0,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.plan = list(plan)
        self.random = random.Random(seed) if seed is not None else None
        self.faults = list(faults)
        self.smtputf8 = smtputf8
        self.hang_s = hang_s
        self.accepted: list[Received] = []
        self.unanswered: list[Received] = []
        self.connections: list[Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # -- control ----------------------------------------------------------------------------
    def __enter__(self) -> FaultySMTP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._stop.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(16)
        listener.settimeout(0.2)
        self._socket = listener
        thread = threading.Thread(target=self._serve, name="faulty-smtp", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=1)
        self._threads.clear()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def next_fault(self) -> Fault:
        with self._lock:
            if self.plan:
                fault = self.plan.pop(0)
            elif self.random is not None:
                fault = self.random.choice(self.faults)
            else:
                fault = Fault.NONE
            self.connections.append(fault)
            return fault

    # -- serving ------------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            session = threading.Thread(target=self._session, args=(conn,), daemon=True)
            session.start()
            self._threads.append(session)

    def _session(self, conn: socket.socket) -> None:
        fault = self.next_fault()
        conn.settimeout(self.hang_s)
        try:
            with conn, conn.makefile("rb") as reader:
                _Session(self, conn, reader, fault).run()
        except OSError:
            pass

    def _hang(self) -> None:
        self._stop.wait(self.hang_s)

    def _record(self, received: Received, answered: bool) -> None:
        with self._lock:
            (self.accepted if answered else self.unanswered).append(received)


class _Session:
    def __init__(self, server: FaultySMTP, conn: socket.socket, reader, fault: Fault) -> None:  # noqa: ANN001
        self.server, self.sock, self.reader, self.fault = server, conn, reader, fault
        self.mail_from = ""
        self.rcpt_tos: list[str] = []

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def run(self) -> None:
        if self.fault == Fault.HANG_GREETING:
            self.server._hang()  # noqa: SLF001
            return
        self.send("220 faulty.example ESMTP")
        handlers: dict[str, Callable[[str], bool]] = {
            "EHLO": self._ehlo,
            "HELO": lambda _arg: self._ok(),
            "MAIL": self._mail,
            "RCPT": self._rcpt,
            "DATA": self._data,
            "RSET": lambda _arg: self._ok(),
            "NOOP": lambda _arg: self._ok(),
        }
        while True:
            line = self.reader.readline()
            if not line:
                return
            verb, _, arg = line.decode("utf-8", "replace").strip().partition(" ")
            if verb.upper() == "QUIT":
                self.send("221 bye")
                return
            handler = handlers.get(verb.upper())
            if handler is None:
                self.send("502 5.5.2 command not recognised")
            elif not handler(arg):
                return

    def _ok(self) -> bool:
        self.send("250 OK")
        return True

    def _ehlo(self, _arg: str) -> bool:
        lines = ["faulty.example", "8BITMIME", "PIPELINING"] + (["SMTPUTF8"] if self.server.smtputf8 else [])
        for line in lines[:-1]:
            self.send(f"250-{line}")
        self.send(f"250 {lines[-1]}")
        return True

    def _mail(self, arg: str) -> bool:
        self.mail_from, self.rcpt_tos = _address(arg), []
        return self._ok()

    def _rcpt(self, arg: str) -> bool:
        if self.fault == Fault.TEMP_RCPT:
            self.send("451 4.3.0 try again later")
        elif self.fault == Fault.PERM_RCPT:
            self.send("550 5.1.1 no such mailbox")
        else:
            self.rcpt_tos.append(_address(arg))
            self.send("250 OK")
        return True

    def _data(self, _arg: str) -> bool:
        if not self.rcpt_tos:
            self.send("554 5.5.1 no valid recipients")
            return True
        self.send("354 go ahead")
        lines = []
        while True:
            line = self.reader.readline()
            if not line:
                return False
            if line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
            if self.fault == Fault.DROP_IN_DATA and len(lines) >= 3:
                return False  # the connection closes in the middle of the data
        received = Received(self.mail_from, list(self.rcpt_tos), b"".join(lines))
        if self.fault == Fault.DROP_AFTER_DATA:
            self.server._record(received, answered=False)  # noqa: SLF001
            return False
        if self.fault == Fault.HANG_DATA:
            self.server._record(received, answered=False)  # noqa: SLF001
            self.server._hang()  # noqa: SLF001
            return False
        if self.fault == Fault.TEMP_DATA:
            self.send("451 4.7.1 greylisted, try again later")
            return True
        if self.fault == Fault.PERM_DATA:
            self.send("554 5.7.1 message refused")
            return True
        self.server._record(received, answered=True)  # noqa: SLF001
        self.send("250 2.0.0 queued")
        return True


def _address(arg: str) -> str:
    """The address of ``FROM:<a@b> SIZE=1`` or ``TO:<a@b>``."""
    _, _, rest = arg.partition(":")
    return rest.strip().split(" ")[0].strip("<>")
