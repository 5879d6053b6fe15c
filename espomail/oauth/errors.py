"""What can go wrong with OAuth2, as EspomailError subclasses the CLI already knows how to show.

No message ever contains a token, a code or a client secret: they name the account, the
server's host and the OAuth2 error code, and say what to do.
"""

from __future__ import annotations

from espomail.errors import EspomailError


class ReauthorizationNeeded(EspomailError):
    """The account has no usable grant: only ``espomail account authorize NAME`` helps."""

    code = "authorization_needed"


class AuthorizationExpired(ReauthorizationNeeded):
    """The provider refused the refresh token (invalid_grant): revoked, expired or replaced.

    The message is exactly ``authorization expired; run 'espomail account authorize NAME'``;
    callers prefix ``account 'NAME': ``.
    """

    code = "authorization_expired"

    def __init__(self, account: str) -> None:
        super().__init__(f"authorization expired; run 'espomail account authorize {account}'")
        self.account = account


class NotAuthorized(ReauthorizationNeeded):
    """No refresh token was ever saved for the account."""

    code = "not_authorized"

    def __init__(self, account: str) -> None:
        super().__init__(f"not authorized yet; run 'espomail account authorize {account}'")
        self.account = account


class OAuthServerError(EspomailError):
    """The authorization server answered with an error; ``error`` is its OAuth2 code."""

    code = "oauth_server_error"

    def __init__(self, message: str, error: str = "") -> None:
        super().__init__(message)
        self.error = error


class InvalidGrant(OAuthServerError):
    """``invalid_grant``: the refresh token, code or device code is revoked, expired or used."""


class OAuthNetworkError(EspomailError):
    """The authorization server could not be reached, or did not answer in time."""

    code = "oauth_network_error"


class AuthorizationFailed(EspomailError):
    """An ``authorize`` flow ended without a grant: denied, expired, timed out, forged."""

    code = "authorization_failed"
