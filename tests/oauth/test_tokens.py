"""TokenManager: cached access tokens, refresh when expired or refused, rotation saved before use, errors."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from espomail.oauth.client import OAuthClient
from espomail.oauth.errors import AuthorizationExpired, NotAuthorized, OAuthNetworkError, OAuthServerError
from espomail.oauth.storage import FileTokenStore, StoredToken
from espomail.oauth.tokens import TokenManager

TIMEOUT = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def manager(config, account="support", clock=None, store=None):
    return TokenManager(
        OAuthClient(config, account, TIMEOUT),
        store or FileTokenStore(config.token_file, account),
        account,
        clock=clock or time.time,
    )


def test_the_cached_access_token_is_used_until_it_expires(authserver, oauth_config, authorized):
    tokens = authorized(authserver)
    first = tokens.access_token()
    assert authserver.refresh_count() == 1  # the saved grant had no access token yet
    assert tokens.access_token() == first
    assert authserver.refresh_count() == 1
    assert authserver.active_user(first) == "alice"


def test_an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_saved(authserver, oauth_config, authorized):
    clock = Clock()
    authorized(authserver)
    config = oauth_config(authserver)
    tokens = manager(config, clock=clock)
    first = tokens.access_token()
    saved = FileTokenStore(config.token_file, "support").load()
    clock.now += 3600  # the server's default lifetime
    second = tokens.access_token()
    assert second != first
    assert authserver.refresh_count() == 2
    resaved = FileTokenStore(config.token_file, "support").load()
    assert resaved.refresh_token != saved.refresh_token
    assert resaved.refresh_token in authserver.live_refresh_tokens()
    assert resaved.access_token == second


def test_a_short_lived_token_expires_between_two_uses(authserver, authorized):
    authserver.access_token_lifetime = 1
    tokens = authorized(authserver)
    first = tokens.access_token()
    time.sleep(1.1)
    second = tokens.access_token()
    assert second != first and authserver.active_user(second) == "alice"


def test_force_refresh_replaces_the_refused_token(authserver, authorized):
    tokens = authorized(authserver)
    first = tokens.access_token()
    authserver.expire_access_tokens()  # the mail server will refuse it, the client still thinks it valid
    assert tokens.access_token() == first
    second = tokens.access_token(force_refresh=True)
    assert second != first and authserver.active_user(second) == "alice"


def test_force_refresh_uses_a_token_another_process_already_refreshed(authserver, oauth_config, authorized):
    tokens = authorized(authserver)
    first = tokens.access_token()
    other = manager(oauth_config(authserver))
    newer = other.access_token(force_refresh=True)  # another process refreshed
    count = authserver.refresh_count()
    assert tokens.access_token(force_refresh=True) == newer
    assert authserver.refresh_count() == count
    assert newer != first


def test_a_revoked_grant_is_the_authorization_expired_error(authserver, authorized):
    tokens = authorized(authserver)
    tokens.access_token()
    authserver.revoke_all()
    with pytest.raises(AuthorizationExpired) as failure:
        tokens.access_token(force_refresh=True)
    assert failure.value.message == "authorization expired; run 'espomail account authorize support'"
    assert failure.value.exit_code == 1


def test_an_account_never_authorized(authserver, oauth_config):
    with pytest.raises(NotAuthorized) as failure:
        manager(oauth_config(authserver)).access_token()
    assert failure.value.message == "not authorized yet; run 'espomail account authorize support'"


class Crash(BaseException):
    """Stands for a kill: nothing after it runs."""


class CrashingStore(FileTokenStore):
    def save(self, token: StoredToken) -> None:
        raise Crash


def test_the_access_token_is_not_used_before_the_rotated_refresh_token_is_saved(authserver, oauth_config, authorized):
    authorized(authserver)
    config = oauth_config(authserver)
    saved_before = FileTokenStore(config.token_file, "support").load()
    with pytest.raises(Crash):
        manager(config, store=CrashingStore(config.token_file, "support")).access_token()
    # The refresh happened at the server, the save did not: the store still holds the old token.
    assert authserver.refresh_count() == 1
    assert FileTokenStore(config.token_file, "support").load() == saved_before
    # The next run works: the old refresh token is valid until the new one is first used.
    token = manager(config).access_token()
    assert authserver.active_user(token) == "alice"


def test_the_save_happens_before_the_new_access_token_leaves_the_manager(authserver, oauth_config, authorized):
    authorized(authserver)
    config = oauth_config(authserver)
    seen = []

    class WatchingStore(FileTokenStore):
        def save(self, token: StoredToken) -> None:
            seen.append(("save", token.access_token, token.refresh_token in authserver.live_refresh_tokens()))
            super().save(token)

    token = manager(config, store=WatchingStore(config.token_file, "support")).access_token()
    assert seen == [("save", token, True)]


def test_two_processes_refreshing_at_once_spend_the_refresh_token_once(authserver, oauth_config, authorized):
    authorized(authserver)
    config = oauth_config(authserver)
    managers = [manager(config), manager(config)]  # separate instances: as two processes
    results = []
    start = threading.Barrier(2)

    def run(tokens):
        start.wait()
        results.append(tokens.access_token())

    threads = [threading.Thread(target=run, args=(m,)) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results[0] == results[1]
    assert authserver.refresh_count() == 1
    assert authserver.active_user(results[0]) == "alice"


def test_an_unreachable_token_endpoint_is_a_network_error(oauth_config, authserver, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nobody listens
    authserver.port = port  # the config is built from the (now wrong) port
    config = oauth_config(authserver)
    FileTokenStore(config.token_file, "support").save(StoredToken("rt-whatever"))
    with pytest.raises(OAuthNetworkError) as failure:
        manager(config).access_token()
    assert failure.value.message == (
        f"cannot reach the authorization server 127.0.0.1:{port} while refreshing the access token "
        "(connection refused): check the network and the provider's URLs"
    )


def test_a_silent_token_endpoint_times_out(authserver, oauth_config):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts connections, never answers
        authserver.port = silent.getsockname()[1]
        config = oauth_config(authserver)
        FileTokenStore(config.token_file, "support").save(StoredToken("rt-whatever"))
        tokens = TokenManager(
            OAuthClient(config, "support", 0.5), FileTokenStore(config.token_file, "support"), "support"
        )
        with pytest.raises(OAuthNetworkError) as failure:
            tokens.access_token()
    assert "did not answer within 0.5 s while refreshing the access token" in failure.value.message


def test_a_wrong_client_id_is_a_server_error_with_a_hint(authserver, oauth_config):
    config = oauth_config(authserver, client_id="not-registered")
    FileTokenStore(config.token_file, "support").save(StoredToken("rt-whatever"))
    with pytest.raises(OAuthServerError) as failure:
        manager(config).access_token()
    assert failure.value.error == "invalid_client"
    assert failure.value.message.endswith("check --oauth-client-id and the client secret")
