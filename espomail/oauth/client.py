"""The protocol side: token requests to the provider through Authlib (``OAuth2Session`` on requests).

Authlib builds the requests (client authentication, PKCE S256, the authorization URL and its
state check) and parses the token responses and their errors; this module only adds what
Authlib's client has no helper for (the RFC 8628 device authorization request) and turns
every failure into an espomail error without any token in it. Every request carries the
settings' timeout.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from espomail import secrets
from espomail.errors import SecretError
from espomail.oauth.config import Endpoints, OAuthConfig
from espomail.oauth.errors import InvalidGrant, OAuthNetworkError, OAuthServerError
from espomail.oauth.storage import StoredToken

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_TOKENISH = re.compile(r"[A-Za-z0-9._~+/=-]{40,}")


@dataclass(frozen=True)
class TokenResponse:
    """A successful token endpoint answer. ``repr`` never shows the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_in: float | None = None
    scope: str | None = None

    @classmethod
    def from_token(cls, token: Mapping[str, Any]) -> TokenResponse:
        access = token.get("access_token")
        if not access or str(token.get("token_type", "bearer")).lower() != "bearer":
            raise OAuthServerError("the authorization server's answer has no bearer access token")
        expires_in = token.get("expires_in")
        return cls(
            access_token=str(access),
            refresh_token=token.get("refresh_token") or None,
            expires_in=float(expires_in) if expires_in not in (None, "") else None,
            scope=token.get("scope") or None,
        )

    def to_stored(self, previous_refresh: str | None, now: float) -> StoredToken:
        """What to save: the rotated refresh token when one came, else the one we used."""
        refresh = self.refresh_token or previous_refresh
        if not refresh:
            raise OAuthServerError(
                "the authorization server gave no refresh token: ask for offline access "
                "(the 'offline_access' scope for Microsoft, or a custom provider's equivalent)"
            )
        expires_at = now + self.expires_in if self.expires_in is not None else None
        return StoredToken(refresh, self.access_token, expires_at, now, self.scope)


@dataclass(frozen=True)
class DeviceAuthorization:
    """RFC 8628 3.2: what to show the user and how to poll."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float
    message: str | None = None  # Microsoft adds a sentence for people


class OAuthClient:
    """Token requests for one account's configuration."""

    def __init__(self, config: OAuthConfig, account: str, timeout: float) -> None:
        self.config = config
        self.account = account
        self.timeout = timeout
        self.endpoints: Endpoints = config.endpoints()
        self._secret: str | None = None
        self._secret_read = False

    # -- grants --------------------------------------------------------------------------
    def refresh(self, refresh_token: str) -> TokenResponse:
        with self._session() as session, self._errors("refreshing the access token", self.endpoints.token_url):
            token = session.refresh_token(self.endpoints.token_url, refresh_token=refresh_token)
        return TokenResponse.from_token(token)

    def device_authorization(self) -> DeviceAuthorization:
        """Ask for a device code and a user code (RFC 8628 3.1)."""
        url = self._need(self.endpoints.device_url, "--oauth-device-url", "--browser")
        form = {"client_id": self.config.client_id}
        secret = self._client_secret()
        if secret:  # RFC 8628 3.1: a confidential client authenticates here too
            form["client_secret"] = secret
        if self.endpoints.scope:
            form["scope"] = self.endpoints.scope
        with self._session() as session, self._errors("asking for a device code", url):
            answer = session.post(url, data=form, withhold_token=True, headers={"Accept": "application/json"})
            data = _json_object(answer)
        return _device_authorization(data)

    def poll_device(self, device_code: str) -> TokenResponse:
        """One poll; OAuthServerError with ``.error`` authorization_pending, slow_down ... until approved."""
        url = self.endpoints.token_url
        with self._session() as session, self._errors("waiting for the approval", url):
            token = session.fetch_token(url, grant_type=DEVICE_GRANT, device_code=device_code, scope=None)
        return TokenResponse.from_token(token)

    def authorization_url(self, redirect_uri: str, code_verifier: str) -> tuple[str, str]:
        """The URL to open in a browser (PKCE S256) and its ``state``."""
        url = self._need(self.endpoints.auth_url, "--oauth-auth-url", "--device")
        with self._session(redirect_uri=redirect_uri) as session:
            return session.create_authorization_url(
                url, code_verifier=code_verifier, **dict(self.endpoints.auth_params)
            )

    def exchange_code(self, redirect_url: str, state: str, redirect_uri: str, code_verifier: str) -> TokenResponse:
        """Trade the code of the redirect (state checked by Authlib) for tokens."""
        url = self.endpoints.token_url
        with self._session(redirect_uri=redirect_uri) as session, self._errors("exchanging the code", url):
            token = session.fetch_token(
                url, authorization_response=redirect_url, state=state, code_verifier=code_verifier
            )
        return TokenResponse.from_token(token)

    # -- plumbing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _session(self, redirect_uri: str | None = None) -> Iterator[OAuth2Session]:
        secret = self._client_secret()
        session = OAuth2Session(
            client_id=self.config.client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_post" if secret else "none",
            scope=self.endpoints.scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            default_timeout=self.timeout,
        )
        try:
            yield session
        finally:
            session.close()

    def _client_secret(self) -> str | None:
        if not self._secret_read:
            ref = self.config.client_secret
            if ref is not None:
                try:
                    self._secret = secrets.resolve(ref, self.account, self.timeout)
                except SecretError as exc:
                    raise SecretError(f"cannot read the OAuth2 client secret: {exc.message}") from None
            self._secret_read = True
        return self._secret

    def _need(self, url: str | None, option: str, other_flow: str) -> str:
        if not url:
            raise OAuthServerError(
                f"account '{self.account}' has no {option} for this flow; set it with 'espomail account update "
                f"{self.account} {option} URL' or use {other_flow}"
            )
        return url

    @contextlib.contextmanager
    def _errors(self, what: str, url: str) -> Iterator[None]:
        host = urlsplit(url).netloc or url
        try:
            yield
        except AuthlibBaseError as exc:
            raise _server_error(exc.error, exc.description, host, what, self._known_secrets()) from None
        except requests.Timeout:
            raise OAuthNetworkError(
                f"the authorization server {host} did not answer within {self.timeout:g} s while {what}: "
                "check the network (timeout_s in the configuration sets the limit)"
            ) from None
        except requests.ConnectionError as exc:
            raise OAuthNetworkError(
                f"cannot reach the authorization server {host} while {what} ({_connection_reason(exc)}): "
                "check the network and the provider's URLs"
            ) from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise OAuthServerError(
                f"the authorization server {host} answered HTTP {status} while {what}; try again later"
            ) from None
        except (requests.RequestException, ValueError) as exc:
            raise OAuthServerError(
                f"the authorization server {host} gave an answer that is not OAuth2 while {what} "
                f"({type(exc).__name__}): check the provider's URLs"
            ) from None

    def _known_secrets(self) -> list[str]:
        return [self._secret] if self._secret else []


def _server_error(
    error: str | None, description: str | None, host: str, what: str, hide: list[str]
) -> OAuthServerError:
    code = error or "error"
    detail = _scrub(description or "", hide)
    text = f"the authorization server {host} refused {what} ({code}{': ' + detail if detail else ''})"
    hints = {
        "invalid_client": "check --oauth-client-id and the client secret",
        "unauthorized_client": "the app registration does not allow this flow; see docs/oauth2.md",
        "invalid_scope": "the provider refused the scopes (Google's device flow does not allow mail: use --browser)",
    }
    if code in hints:
        text += f"; {hints[code]}"
    kind = InvalidGrant if code == "invalid_grant" else OAuthServerError
    return kind(text, code)


def _scrub(text: str, hide: list[str]) -> str:
    """An error description fit to show: no known secret, no token-like string, one short line."""
    for value in hide:
        text = text.replace(value, "[hidden]")
    text = _TOKENISH.sub("[hidden]", " ".join(text.split()))
    return text[:300]


def _connection_reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    if "Name or service not known" in text or "NameResolutionError" in text or "getaddrinfo" in text:
        return "DNS lookup failed"
    if "Connection refused" in text:
        return "connection refused"
    if "SSL" in text or "certificate" in text:
        return "TLS error"
    return "network error"


def _json_object(answer: requests.Response) -> dict[str, Any]:
    try:
        data = answer.json()
    except ValueError:
        answer.raise_for_status()
        raise
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if "error" in data:
        raise AuthlibBaseError(error=str(data["error"]), description=str(data.get("error_description") or ""))
    answer.raise_for_status()
    return data


def _device_authorization(data: dict[str, Any]) -> DeviceAuthorization:
    try:
        return DeviceAuthorization(
            device_code=str(data["device_code"]),
            user_code=str(data["user_code"]),
            # Google still says verification_url (the RFC's name is verification_uri)
            verification_uri=str(data.get("verification_uri") or data["verification_url"]),
            verification_uri_complete=data.get("verification_uri_complete"),
            expires_in=float(data["expires_in"]),
            interval=float(data.get("interval") or 5),
            message=data.get("message"),
        )
    except (KeyError, TypeError, ValueError):
        raise OAuthServerError(
            "the device authorization answer lacks device_code, user_code, verification_uri or expires_in"
        ) from None
