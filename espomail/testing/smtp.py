"""A recording SMTP server (aiosmtpd) on 127.0.0.1 for tests and the demo."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import threading
from email.message import EmailMessage

from espomail.testing.dovecot import free_port


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


class RecordingSMTP:
    """Records every message it accepts; can refuse recipients, require a login, offer
    SMTPUTF8 or be slow to answer DATA (``data_delay_s``; ``data_started`` is set when a
    message's data has arrived, and is recorded, and the answer is being delayed)."""

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        smtputf8: bool = False,
        data_delay_s: float = 0.0,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[Received] = []
        self.refuse: set[str] = set()
        self.username, self.password = username, password
        self.smtputf8 = smtputf8  # offer SMTPUTF8 (RFC 6531) in the EHLO answer
        self.data_delay_s = data_delay_s
        self.data_started = threading.Event()
        self._lock = threading.Lock()
        self._controller = None

    def __enter__(self) -> RecordingSMTP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        kwargs: dict = {"enable_SMTPUTF8": self.smtputf8}
        if self.username:
            kwargs |= {"authenticator": self._authenticate, "auth_require_tls": False, "auth_required": True}
        self._controller = Controller(self, hostname=self.host, port=self.port, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        # Recorded on arrival, before a delayed answer: like an MTA that has queued the
        # message even if the client goes away before it hears "250".
        with self._lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
        if self.data_delay_s:
            import asyncio

            self.data_started.set()
            await asyncio.sleep(self.data_delay_s)
        return "250 Message accepted"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok)
