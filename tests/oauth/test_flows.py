"""The authorize flows: device code, browser with PKCE, a refresh token from stdin. Nothing saved on failure."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from espomail.errors import InvalidInput
from espomail.oauth.errors import AuthorizationFailed
from espomail.oauth.storage import FileTokenStore, StoredToken


def approve_soon(server, user="alice", after=0.3):
    """A show() callback that approves the code from another thread, as a person would."""
    prompts = []

    def show(prompt):
        prompts.append(prompt)
        threading.Timer(after, server.approve_device, (prompt.user_code, user)).start()

    return show, prompts


def test_device_flow_shows_the_code_and_saves_the_grant(authserver, oauth_config, make_authorizer):
    config = oauth_config(authserver)
    show, prompts = approve_soon(authserver, "bob")
    result = make_authorizer(config).device(show)
    [prompt] = prompts
    assert prompt.verification_uri == f"{authserver.url}/device"
    assert prompt.user_code in prompt.text() and prompt.verification_uri in prompt.text()
    assert result.flow == "device" and result.storage == f"token file {config.token_file}"
    saved = FileTokenStore(config.token_file, "support").load()
    assert saved.refresh_token in authserver.live_refresh_tokens()
    assert authserver.active_user(saved.access_token) == "bob"


def test_device_flow_polls_at_the_interval_and_slows_down_when_asked(authserver, oauth_config, make_authorizer):
    authserver.slow_down_next(2)
    naps = []

    def sleep(seconds):
        naps.append(round(seconds, 2))
        time.sleep(seconds)

    show, _prompts = approve_soon(authserver, after=0.1)
    make_authorizer(oauth_config(authserver), sleep=sleep, slow_down_step=0.25).device(show)
    assert naps[:3] == [0.2, 0.45, 0.7]  # the server's interval, then +step after each slow_down
    assert set(naps[3:]) <= {0.7}


def test_device_code_expiry_is_a_clear_error_and_saves_nothing(authserver, oauth_config, make_authorizer):
    authserver.device_lifetime = 1
    config = oauth_config(authserver)
    prompts = []
    with pytest.raises(AuthorizationFailed) as failure:
        make_authorizer(config).device(prompts.append)
    code = prompts[0].user_code
    assert failure.value.message == (
        f"the code {code} expired before it was approved; run 'espomail account authorize support --device' "
        "again and enter the new code in time"
    )
    assert not config.token_file.exists()


def test_a_declined_device_code(authserver, oauth_config, make_authorizer):
    config = oauth_config(authserver)

    def decline(prompt):
        threading.Timer(0.1, authserver.deny_device, (prompt.user_code,)).start()

    with pytest.raises(AuthorizationFailed) as failure:
        make_authorizer(config).device(decline)
    assert failure.value.message == "the sign-in for account 'support' was declined; nothing was saved"
    assert not config.token_file.exists()


def follow(url):
    """A test 'browser': the user signs in (the server approves) and is redirected to the loopback."""
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text


def test_browser_flow_with_pkce(authserver, oauth_config, make_authorizer):
    config = oauth_config(authserver)
    shown = []
    result = make_authorizer(config).browser(shown.append, open_browser=follow, wait=10)
    [url] = shown
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    assert result.flow == "browser"
    saved = FileTokenStore(config.token_file, "support").load()
    assert authserver.active_user(saved.access_token) == "alice"


def test_browser_flow_ignores_a_redirect_with_a_wrong_state(authserver, oauth_config, make_authorizer):
    config = oauth_config(authserver)

    def forger_then_user(url):
        redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        forged = requests.get(redirect_uri, params={"code": "ac-forged", "state": "wrong"}, timeout=10)
        assert forged.status_code == 400
        follow(url)

    make_authorizer(config).browser(lambda url: None, open_browser=forger_then_user, wait=10)
    assert FileTokenStore(config.token_file, "support").load() is not None


def test_browser_flow_denied_and_timed_out(authserver, oauth_config, make_authorizer):
    config = oauth_config(authserver)
    authserver.browser_decision = "deny"
    with pytest.raises(AuthorizationFailed) as failure:
        make_authorizer(config).browser(lambda url: None, open_browser=follow, wait=10)
    assert "refused the sign-in for account 'support' (access_denied)" in failure.value.message

    def no_browser(url):
        raise RuntimeError("no display")

    with pytest.raises(AuthorizationFailed) as failure:
        make_authorizer(config).browser(lambda url: None, open_browser=no_browser, wait=0.3)
    assert failure.value.message == (
        "no answer from the browser within 0.3 s; run 'espomail account authorize support --browser' again, "
        "or use --device"
    )
    assert not config.token_file.exists()


def test_refresh_token_from_stdin_is_checked_then_saved(authserver, oauth_config, make_authorizer):
    config = oauth_config(authserver)
    given = authserver.issue_grant("alice")["refresh_token"]
    result = make_authorizer(config).refresh_token(given + "\n")
    assert result.flow == "refresh-token"
    saved = FileTokenStore(config.token_file, "support").load()
    assert saved.refresh_token != given  # rotated at the check, and the rotated one saved
    assert saved.refresh_token in authserver.live_refresh_tokens()


def test_a_refused_refresh_token_from_stdin_changes_nothing(authserver, oauth_config, make_authorizer):
    config = oauth_config(authserver)
    before = StoredToken("rt-previous-grant")
    FileTokenStore(config.token_file, "support").save(before)
    with pytest.raises(AuthorizationFailed) as failure:
        make_authorizer(config).refresh_token("rt-made-up\n")
    assert "refused this refresh token (invalid_grant)" in failure.value.message
    assert "rt-made-up" not in failure.value.message
    assert FileTokenStore(config.token_file, "support").load() == before


@pytest.mark.parametrize("text", ["", "\n  \n", "two\nlines", "a b"])
def test_refresh_token_stdin_must_be_one_token(authserver, oauth_config, make_authorizer, text):
    with pytest.raises(InvalidInput):
        make_authorizer(oauth_config(authserver)).refresh_token(text)
