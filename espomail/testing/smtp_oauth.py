"""An SMTP server (aiosmtpd) on 127.0.0.1 that takes OAuth2 bearer tokens, for tests.

aiosmtpd lets a handler add SASL mechanisms as ``auth_<NAME>`` methods; this one offers
XOAUTH2 and OAUTHBEARER (or only those named in ``mechanisms``) and no password mechanism,
and checks each token with the authorization server's RFC 7662 introspection endpoint, like
Dovecot's oauth2 passdb does. A refused token gets the error challenge of the mechanism
(base64 JSON ``{"status": "401", ...}``), the client's empty answer, then ``535``, as Gmail
and Outlook do. Accepted messages are recorded like RecordingSMTP's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
import urllib.parse
import urllib.request

from espomail.testing.dovecot import free_port
from espomail.testing.smtp import Received

MECHANISMS = ("XOAUTH2", "OAUTHBEARER")


class OAuthSMTP:
    """Requires AUTH with a live access token for the user it names; records what it accepts."""

    def __init__(self, introspection_url: str, mechanisms: tuple[str, ...] = MECHANISMS) -> None:
        self.introspection_url = introspection_url
        self.mechanisms = tuple(m.upper() for m in mechanisms)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[Received] = []
        self.logins: list[tuple[str, str]] = []  # (mechanism, user) of each accepted AUTH
        self.refused = 0
        self._lock = threading.Lock()
        self._controller = None

    def __enter__(self) -> OAuthSMTP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        excluded = [m for m in ("PLAIN", "LOGIN", *MECHANISMS) if m not in self.mechanisms]
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            auth_required=True,
            auth_require_tls=False,
            auth_exclude_mechanism=excluded,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # -- SASL mechanisms (aiosmtpd finds auth_* methods on the handler) --------------------
    async def auth_XOAUTH2(self, server, args):  # noqa: ANN001, ANN201, N802 - aiosmtpd's hook
        return await self._bearer(server, args, "XOAUTH2", _parse_xoauth2)

    async def auth_OAUTHBEARER(self, server, args):  # noqa: ANN001, ANN201, N802
        return await self._bearer(server, args, "OAUTHBEARER", _parse_oauthbearer)

    async def _bearer(self, server, args, mechanism, parse):  # noqa: ANN001, ANN202
        from aiosmtpd.smtp import MISSING, AuthResult

        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        user, token = parse(blob)
        loop = asyncio.get_running_loop()
        active_user = await loop.run_in_executor(None, self._introspect, token) if token else None
        if user and active_user == user:
            with self._lock:
                self.logins.append((mechanism, user))
            return AuthResult(success=True, auth_data=user)
        with self._lock:
            self.refused += 1
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.example/"})
        if await server.challenge_auth(error) is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

    def _introspect(self, token: str) -> str | None:
        body = urllib.parse.urlencode({"token": token}).encode()
        request = urllib.request.Request(self.introspection_url, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            info = json.loads(answer.read())
        return info.get("username") if info.get("active") is True else None

    # -- recording -----------------------------------------------------------------------
    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        with self._lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
        return "250 Message accepted"


def _parse_xoauth2(blob: bytes) -> tuple[str, str]:
    """``user=U^Aauth=Bearer T^A^A`` -> (U, T)."""
    fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
    return fields.get("user", ""), _bearer_token(fields.get("auth", ""))


def _parse_oauthbearer(blob: bytes) -> tuple[str, str]:
    """``n,a=U,^Ahost=..^Aauth=Bearer T^A^A`` (RFC 7628) -> (U, T)."""
    text = blob.decode("utf-8", "replace")
    header, _, rest = text.partition("\x01")
    user = ""
    for part in header.split(","):
        if part.startswith("a="):
            user = part[2:].replace("=2C", ",").replace("=3D", "=")
    fields = dict(part.split("=", 1) for part in rest.split("\x01") if "=" in part)
    return user, _bearer_token(fields.get("auth", ""))


def _bearer_token(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
