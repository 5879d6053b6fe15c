"""``espomail account authorize``: obtain a grant by the device code, the browser, or a pasted refresh token.

Each flow talks to the provider first and saves the tokens only once it has them, so a flow
that fails (declined, expired, timed out, a refused refresh token) leaves the store as it
was. What to show the user goes through callbacks (the CLI prints; tests record).

- device (RFC 8628): shows the verification URL and the user code, polls at the server's
  interval, adds ``slow_down_step`` seconds on ``slow_down``, stops at ``expires_in``;
- browser (RFC 8252 loopback with PKCE S256): listens on 127.0.0.1 on a free port, shows
  the URL (and tries ``webbrowser.open``), accepts only the redirect carrying our ``state``;
- refresh token: checks it by spending it once (so a wrong one is refused here, not at the
  next fetch) and saves what comes back.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.common.security import generate_token

from espomail.errors import InvalidInput
from espomail.oauth.client import OAuthClient, TokenResponse
from espomail.oauth.config import OAuthConfig
from espomail.oauth.errors import AuthorizationFailed, InvalidGrant, OAuthServerError
from espomail.oauth.storage import TokenStore, token_store

log = logging.getLogger(__name__)

SLOW_DOWN_STEP = 5.0  # RFC 8628 3.5
BROWSER_WAIT = 300.0


@dataclass(frozen=True)
class DevicePrompt:
    """What the user must do for the device flow."""

    verification_uri: str
    user_code: str
    verification_uri_complete: str | None
    expires_in: float

    def text(self) -> str:
        minutes = max(1, round(self.expires_in / 60))
        return (
            f"To authorize, open {self.verification_uri} in a browser and enter the code {self.user_code} "
            f"(valid for {minutes} minute{'s' if minutes != 1 else ''}). Waiting for the approval..."
        )


@dataclass(frozen=True)
class AuthorizationResult:
    """The outcome of a flow, safe to print: never a token."""

    account: str
    flow: str  # device | browser | refresh-token
    scope: str | None
    storage: str  # where the tokens went (keyring entry or token file)


class Authorizer:
    """The three ways to authorize one account."""

    def __init__(
        self,
        client: OAuthClient,
        store: TokenStore,
        account: str,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        slow_down_step: float = SLOW_DOWN_STEP,
    ) -> None:
        self.client = client
        self.store = store
        self.account = account
        self.sleep = sleep
        self.clock = clock
        self.slow_down_step = slow_down_step

    @classmethod
    def for_account(cls, config: OAuthConfig, account: str, timeout: float) -> Authorizer:
        return cls(OAuthClient(config, account, timeout), token_store(config.token_file, account), account)

    # -- device code ---------------------------------------------------------------------
    def device(self, show: Callable[[DevicePrompt], None]) -> AuthorizationResult:
        """Show the code, poll until approved; AuthorizationFailed when declined or expired."""
        started = self.clock()
        grant = self.client.device_authorization()
        show(DevicePrompt(grant.verification_uri, grant.user_code, grant.verification_uri_complete, grant.expires_in))
        deadline, interval = started + grant.expires_in, grant.interval
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise self._device_expired(grant.user_code)
            self.sleep(min(interval, remaining))
            try:
                response = self.client.poll_device(grant.device_code)
            except OAuthServerError as exc:
                if exc.error == "authorization_pending":
                    continue
                if exc.error == "slow_down":
                    interval += self.slow_down_step
                    log.info("account %s: the server asked to poll more slowly (every %g s)", self.account, interval)
                    continue
                if exc.error == "expired_token":
                    raise self._device_expired(grant.user_code) from None
                if exc.error == "access_denied":
                    raise AuthorizationFailed(
                        f"the sign-in for account '{self.account}' was declined; nothing was saved"
                    ) from None
                raise
            return self._save(response, "device")

    def _device_expired(self, user_code: str) -> AuthorizationFailed:
        return AuthorizationFailed(
            f"the code {user_code} expired before it was approved; run 'espomail account authorize "
            f"{self.account} --device' again and enter the new code in time"
        )

    # -- browser -------------------------------------------------------------------------
    def browser(
        self,
        show_url: Callable[[str], None],
        open_browser: Callable[[str], Any] | None = webbrowser.open,
        wait: float = BROWSER_WAIT,
    ) -> AuthorizationResult:
        """Show (and try to open) the sign-in URL, wait for the redirect to 127.0.0.1."""
        with LoopbackReceiver() as receiver:
            verifier = generate_token(64)  # RFC 7636: 43 to 128 characters
            url, state = self.client.authorization_url(receiver.redirect_uri, verifier)
            receiver.expect(state)
            show_url(url)
            if open_browser is not None:
                try:
                    open_browser(url)
                except Exception:  # noqa: BLE001 - no browser here: the printed URL is enough
                    log.debug("could not start a browser", exc_info=True)
            redirect = receiver.wait(wait)
        if redirect is None:
            raise AuthorizationFailed(
                f"no answer from the browser within {wait:g} s; run 'espomail account authorize {self.account} "
                "--browser' again, or use --device"
            )
        query = {k: v[0] for k, v in parse_qs(urlsplit(redirect).query).items()}
        if "error" in query:
            reason = query["error"][:80]
            raise AuthorizationFailed(
                f"the provider refused the sign-in for account '{self.account}' ({reason}); nothing was saved"
            )
        try:
            response = self.client.exchange_code(redirect, state, receiver.redirect_uri, verifier)
        except InvalidGrant:
            raise AuthorizationFailed(
                "the provider refused the authorization code (invalid_grant); run the browser flow again"
            ) from None
        return self._save(response, "browser")

    # -- a refresh token given by the user -----------------------------------------------
    def refresh_token(self, text: str) -> AuthorizationResult:
        """Check a refresh token (from stdin) by using it once, then save what the provider returned."""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            raise InvalidInput("--refresh-token-stdin read no refresh token from standard input")
        if len(lines) > 1 or any(c.isspace() for c in lines[0]):
            raise InvalidInput("--refresh-token-stdin expects one refresh token on one line")
        token = lines[0]
        try:
            response = self.client.refresh(token)
        except InvalidGrant:
            raise AuthorizationFailed(
                "the provider refused this refresh token (invalid_grant): it is revoked or expired, or was "
                "issued to another --oauth-client-id; nothing was saved"
            ) from None
        return self._save(response, "refresh-token", previous=token)

    def _save(self, response: TokenResponse, flow: str, previous: str | None = None) -> AuthorizationResult:
        stored = response.to_stored(previous, time.time())
        with self.store.lock():
            self.store.save(stored)
        log.info("account %s: authorized by the %s flow", self.account, flow)
        return AuthorizationResult(self.account, flow, stored.scope, self.store.describe())


class LoopbackReceiver:
    """A one-shot HTTP listener on 127.0.0.1 for the redirect of the browser flow (RFC 8252 7.3)."""

    def __init__(self) -> None:
        self._state: str | None = None
        self._redirect: str | None = None
        self._done = threading.Event()
        self._server = HTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="oauth-loopback", daemon=True
        )

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def expect(self, state: str) -> None:
        self._state = state

    def wait(self, timeout: float) -> str | None:
        """The full redirect URL that carried our state, or None after ``timeout`` seconds."""
        self._done.wait(timeout)
        return self._redirect

    def _accept(self, path: str) -> bool:
        query = parse_qs(urlsplit(path).query)
        state = query.get("state", [""])[0]
        answered = "code" in query or "error" in query
        if self._state is None or not answered or not hmac.compare_digest(state, self._state):
            return False
        if not self._done.is_set():
            self._redirect = self.redirect_uri.rstrip("/") + path
            self._done.set()
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if receiver._accept(self.path):  # noqa: SLF001
                    self._answer(200, "espomail received the answer; you can close this window.")
                else:
                    self._answer(400, "This is not the answer espomail is waiting for.")

            def _answer(self, status: int, text: str) -> None:
                body = f"<!doctype html><title>espomail</title><p>{text}</p>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None  # the query string holds the code

        return Handler
