"""Access tokens for one account: cached, refreshed when expired or refused, rotations saved first.

``TokenManager.access_token()`` is what the IMAP and SMTP logins call (the ``TokenProvider``
of ``espomail.oauth.sasl``). The order of a refresh is the point of this module:

1. take the store's cross-process lock and read the store again (another espomail process
   may have refreshed meanwhile: then its token is used and the refresh token is not spent twice);
2. spend the refresh token at the provider;
3. save the answer (the rotated refresh token and the new access token) durably;
4. only then hand the access token out.

A crash between 2 and 3 leaves the old refresh token in the store; providers that rotate keep
it valid until the new one is first used (see docs/oauth2.md), so the next run works. A crash
after 3 leaves the new one. A refused refresh token (invalid_grant) is AuthorizationExpired,
whose message is exactly ``authorization expired; run 'espomail account authorize NAME'``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from espomail.oauth.client import OAuthClient
from espomail.oauth.config import OAuthConfig
from espomail.oauth.errors import AuthorizationExpired, InvalidGrant, NotAuthorized
from espomail.oauth.storage import StoredToken, TokenStore, token_store

log = logging.getLogger(__name__)

EXPIRY_MARGIN = 60.0  # seconds before the expiry when a cached access token is renewed


class TokenManager:
    """Hands out a valid access token for one account (thread-safe; processes coordinate by lock)."""

    def __init__(
        self,
        client: OAuthClient,
        store: TokenStore,
        account: str,
        margin: float = EXPIRY_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.store = store
        self.account = account
        self.margin = margin
        self.clock = clock
        self._lock = threading.Lock()
        self._handed_out: str | None = None

    @classmethod
    def for_account(cls, config: OAuthConfig, account: str, timeout: float) -> TokenManager:
        """The manager of an account: its provider client and its token store (keyring or file)."""
        return cls(OAuthClient(config, account, timeout), token_store(config.token_file, account), account)

    def access_token(self, force_refresh: bool = False) -> str:
        """A valid access token. ``force_refresh=True`` after the server refused the last one."""
        with self._lock:
            refused = self._handed_out if force_refresh else None
            stored = self._load()
            if self._usable(stored, force_refresh, refused):
                return self._hand_out(stored)
            with self.store.lock():
                stored = self._load()
                if self._usable(stored, force_refresh, refused):
                    return self._hand_out(stored)  # another process refreshed meanwhile
                return self._hand_out(self._refresh(stored))

    def is_authorized(self) -> bool:
        """A refresh token is saved (it may still have been revoked at the provider)."""
        return self.store.load() is not None

    def forget(self) -> None:
        """Delete the saved tokens (account removed or switched back to passwords)."""
        with self.store.lock():
            self.store.delete()

    # -- internals -----------------------------------------------------------------------
    def _usable(self, stored: StoredToken, force_refresh: bool, refused: str | None) -> bool:
        if not stored.access_valid(self.clock(), self.margin):
            return False
        if force_refresh:  # only a token other than the refused one will do
            return refused is not None and stored.access_token != refused
        return True

    def _load(self) -> StoredToken:
        stored = self.store.load()
        if stored is None:
            raise NotAuthorized(self.account)
        return stored

    def _refresh(self, stored: StoredToken) -> StoredToken:
        try:
            response = self.client.refresh(stored.refresh_token)
        except InvalidGrant:
            log.warning("account %s: the provider refused the refresh token (invalid_grant)", self.account)
            raise AuthorizationExpired(self.account) from None
        fresh = response.to_stored(stored.refresh_token, self.clock())
        self.store.save(fresh)  # durable before the access token is used (SPEC 12)
        rotated = fresh.refresh_token != stored.refresh_token
        log.info("account %s: access token refreshed%s", self.account, " (refresh token rotated)" if rotated else "")
        return fresh

    def _hand_out(self, stored: StoredToken) -> str:
        assert stored.access_token is not None
        self._handed_out = stored.access_token
        return stored.access_token
