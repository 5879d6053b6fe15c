"""Fixtures for the OAuth2 tests: a local authorization server, an oauth2 Dovecot, an OAuth SMTP server.

- ``authserver``: a fresh AuthServer per test (its own grants and settings);
- ``oauth_servers``: one AuthServer and one Dovecot whose oauth2 passdb asks it, per session
  (Dovecot must know the introspection URL when it starts); reset to the default settings
  before each test that uses them;
- ``oauth_config(server)`` builds a custom-provider OAuthConfig for a server, with a token file
  in tmp_path unless ``token_file=None`` (then the test keyring);
- ``authorized(server)`` saves a fresh grant and returns the account's TokenManager;
- ``make_authorizer(config)`` returns the Authorizer of the flows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from espomail.oauth.client import OAuthClient
from espomail.oauth.config import OAuthConfig
from espomail.oauth.flows import Authorizer
from espomail.oauth.storage import StoredToken, token_store
from espomail.oauth.tokens import TokenManager
from espomail.testing.authserver import AuthServer
from espomail.testing.dovecot import Dovecot
from espomail.testing.smtp_oauth import OAuthSMTP

TIMEOUT = 10.0


@pytest.fixture
def authserver():
    with AuthServer() as server:
        yield server


@pytest.fixture(scope="session")
def _oauth_session_servers():
    with AuthServer() as auth, Dovecot(users=(), oauth2_introspection_url=auth.introspection_url) as dovecot:
        yield auth, dovecot


@pytest.fixture
def oauth_servers(_oauth_session_servers):
    auth, dovecot = _oauth_session_servers
    auth.reset()
    yield auth, dovecot
    auth.reset()


@pytest.fixture
def oauth_smtp(oauth_servers):
    auth, _dovecot = oauth_servers
    with OAuthSMTP(auth.introspection_url) as server:
        yield server


def make_config(server: AuthServer, token_file: Path | None, **extra) -> OAuthConfig:
    return OAuthConfig.from_options(
        provider="custom",
        client_id=extra.pop("client_id", "espomail-test"),
        token_url=server.token_url,
        device_url=server.device_url,
        auth_url=server.auth_url,
        token_file=token_file,
        **extra,
    )


@pytest.fixture
def oauth_config(tmp_path):
    def build(server: AuthServer, token_file: Path | None | str = "default", **extra) -> OAuthConfig:
        path = tmp_path / "tokens.json" if token_file == "default" else token_file
        return make_config(server, path, **extra)

    return build


def authorize(server: AuthServer, config: OAuthConfig, account: str, user: str) -> None:
    """Save a fresh grant for ``user`` in the account's store, as `account authorize` would."""
    answer = server.issue_grant(user)
    store = token_store(config.token_file, account)
    store.save(StoredToken(answer["refresh_token"]))


@pytest.fixture
def authorized(oauth_config):
    """``authorized(server, account="support", user="alice")`` -> a TokenManager with a saved grant."""

    def make(server: AuthServer, account: str = "support", user: str = "alice", **config_extra) -> TokenManager:
        config = oauth_config(server, **config_extra)
        authorize(server, config, account, user)
        return TokenManager.for_account(config, account, TIMEOUT)

    return make


@pytest.fixture
def make_authorizer():
    """``make_authorizer(config, account="support", sleep=..., slow_down_step=...)`` -> an Authorizer."""

    def make(config: OAuthConfig, account: str = "support", **options) -> Authorizer:
        store = token_store(config.token_file, account)
        return Authorizer(OAuthClient(config, account, TIMEOUT), store, account, **options)

    return make
