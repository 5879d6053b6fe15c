"""SASL for bearer tokens: XOAUTH2 (Google, Microsoft) and OAUTHBEARER (RFC 7628).

``TokenProvider`` is all the IMAP and SMTP code needs from the OAuth2 side (a TokenManager,
or any object with ``access_token(force_refresh=False)``). ``Exchange`` answers the server's
challenges: the initial response first, then what each mechanism sends after an error
challenge (XOAUTH2: an empty line; OAUTHBEARER: ``%x01``), so the server ends the exchange
with a plain failure instead of waiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

XOAUTH2 = "XOAUTH2"
OAUTHBEARER = "OAUTHBEARER"


class TokenProvider(Protocol):
    def access_token(self, force_refresh: bool = False) -> str: ...


def xoauth2(user: str, token: str) -> str:
    """``user=USER^Aauth=Bearer TOKEN^A^A`` (Google's and Microsoft's XOAUTH2)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer(user: str, token: str, host: str | None = None, port: int | None = None) -> str:
    """RFC 7628 3.1: a GS2 header with the authorization identity, then host, port and auth."""
    identity = user.replace("=", "=3D").replace(",", "=2C")
    fields = ""
    if host:
        fields += f"host={host}\x01"
    if port:
        fields += f"port={port}\x01"
    return f"n,a={identity},\x01{fields}auth=Bearer {token}\x01\x01"


def choose_mechanism(offered: Iterable[str]) -> str | None:
    """XOAUTH2 when offered, else OAUTHBEARER, else None (``offered``: mechanism names, any case)."""
    names = {name.upper() for name in offered}
    for mechanism in (XOAUTH2, OAUTHBEARER):
        if mechanism in names:
            return mechanism
    return None


class Exchange:
    """A callable answering each server challenge of one AUTHENTICATE."""

    def __init__(self, mechanism: str, user: str, token: str, host: str | None = None, port: int | None = None):
        if mechanism == XOAUTH2:
            self._initial = xoauth2(user, token)
        else:
            self._initial = oauthbearer(user, token, host, port)
        self._after_error = "" if mechanism == XOAUTH2 else "\x01"
        self.server_error: bytes | None = None  # the error challenge (JSON), when the server sent one
        self._sent = False

    def __call__(self, challenge: bytes | None = None) -> str:
        if not self._sent:
            self._sent = True
            return self._initial
        self.server_error = challenge or b""
        return self._after_error

    def __repr__(self) -> str:
        return "Exchange(...)"  # never the initial response: it holds the token
