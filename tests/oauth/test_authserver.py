"""The local authorization server speaks the RFCs the client and Dovecot rely on (raw HTTP here)."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from espomail.testing.authserver import DEVICE_GRANT, AuthServer

CLIENT = {"client_id": "espomail-test"}


def post(url: str, **form: str) -> requests.Response:
    return requests.post(url, data=form, timeout=10)


def refresh(server: AuthServer, token: str) -> requests.Response:
    return post(server.token_url, grant_type="refresh_token", refresh_token=token, **CLIENT)


def introspect(server: AuthServer, token: str) -> dict:
    return post(server.introspection_url, token=token).json()


def test_device_authorization_answer_has_the_rfc_8628_fields(authserver):
    answer = post(authserver.device_url, scope="mail", **CLIENT).json()
    assert set(answer) >= {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
    assert answer["verification_uri"] == f"{authserver.url}/device"
    assert answer["user_code"] in authserver.pending_user_codes()


def test_device_code_pending_then_approved(authserver):
    device = post(authserver.device_url, **CLIENT).json()
    poll = {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], **CLIENT}
    pending = post(authserver.token_url, **poll)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    authserver.approve_device(device["user_code"], "bob")
    time.sleep(device["interval"])
    tokens = post(authserver.token_url, **poll).json()
    assert introspect(authserver, tokens["access_token"])["username"] == "bob"
    assert post(authserver.token_url, **poll).json()["error"] == "invalid_grant"  # a device code works once


def test_device_code_slow_down_expiry_and_denial(authserver):
    authserver.device_lifetime = 0.6
    device = post(authserver.device_url, **CLIENT).json()
    poll = {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], **CLIENT}
    assert post(authserver.token_url, **poll).json()["error"] == "authorization_pending"
    assert post(authserver.token_url, **poll).json()["error"] == "slow_down"  # polled at once again
    time.sleep(0.7)
    assert post(authserver.token_url, **poll).json()["error"] == "expired_token"

    authserver.reset()
    denied = post(authserver.device_url, **CLIENT).json()
    authserver.deny_device(denied["user_code"])
    answer = post(authserver.token_url, grant_type=DEVICE_GRANT, device_code=denied["device_code"], **CLIENT)
    assert answer.json()["error"] == "access_denied"


def test_forced_slow_down(authserver):
    device = post(authserver.device_url, **CLIENT).json()
    authserver.slow_down_next(1)
    poll = {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], **CLIENT}
    assert post(authserver.token_url, **poll).json()["error"] == "slow_down"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize(server: AuthServer, verifier: str, redirect_uri: str = "http://127.0.0.1:5999/") -> dict[str, str]:
    params = {
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": "xyz",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        **CLIENT,
    }
    answer = requests.get(server.auth_url, params=params, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(redirect_uri)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_authorization_code_with_pkce(authserver):
    verifier = "v" * 50
    redirect = authorize(authserver, verifier)
    assert redirect["state"] == "xyz"
    exchange = {
        "grant_type": "authorization_code",
        "code": redirect["code"],
        "redirect_uri": "http://127.0.0.1:5999/",
        **CLIENT,
    }
    assert post(authserver.token_url, code_verifier="w" * 50, **exchange).json()["error"] == "invalid_grant"

    redirect = authorize(authserver, verifier)
    exchange["code"] = redirect["code"]
    tokens = post(authserver.token_url, code_verifier=verifier, **exchange).json()
    assert introspect(authserver, tokens["access_token"])["username"] == "alice"
    again = post(authserver.token_url, code_verifier=verifier, **exchange)
    assert again.json()["error"] == "invalid_grant"  # a code works once


def test_authorization_requires_pkce_and_a_loopback_redirect(authserver):
    answer = requests.get(
        authserver.auth_url,
        params={"response_type": "code", "redirect_uri": "https://evil.example/", **CLIENT},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 400
    answer = requests.get(
        authserver.auth_url,
        params={"response_type": "code", "redirect_uri": "http://127.0.0.1:5999/", "state": "s", **CLIENT},
        allow_redirects=False,
        timeout=10,
    )
    assert "error=invalid_request" in answer.headers["Location"]
    authserver.browser_decision = "deny"
    params = {
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:5999/",
        "code_challenge": s256("v" * 50),
        "code_challenge_method": "S256",
        **CLIENT,
    }
    denied = requests.get(authserver.auth_url, params=params, allow_redirects=False, timeout=10)
    assert "error=access_denied" in denied.headers["Location"]


def test_refresh_rotates_and_the_old_token_lives_until_the_new_one_is_used(authserver):
    first = authserver.issue_grant("alice")["refresh_token"]
    second = refresh(authserver, first).json()["refresh_token"]
    assert second != first
    # The client "crashed" before saving `second`: `first` still works (grace) ...
    third = refresh(authserver, first).json()["refresh_token"]
    assert third not in (first, second)
    assert authserver.live_refresh_tokens() == {first, third}  # `second` was abandoned
    # Once `third` is used, `first` is a replay: the grant is revoked.
    fourth = refresh(authserver, third).json()["refresh_token"]
    assert authserver.live_refresh_tokens() == {third, fourth}
    assert refresh(authserver, first).json()["error"] == "invalid_grant"
    assert refresh(authserver, fourth).json()["error"] == "invalid_grant"


def test_an_abandoned_refresh_token_is_a_replay(authserver):
    first = authserver.issue_grant("alice")["refresh_token"]
    abandoned = refresh(authserver, first).json()["refresh_token"]
    current = refresh(authserver, first).json()["refresh_token"]
    assert refresh(authserver, abandoned).json()["error"] == "invalid_grant"
    assert refresh(authserver, current).json()["error"] == "invalid_grant"  # the grant was revoked


def test_without_grace_the_old_refresh_token_dies_at_once(authserver):
    authserver.rotation_grace = False
    first = authserver.issue_grant("alice")["refresh_token"]
    refresh(authserver, first).raise_for_status()
    assert refresh(authserver, first).json()["error"] == "invalid_grant"


def test_revocation_kills_every_token_of_the_grant(authserver):
    grant = authserver.issue_grant("alice")
    other = authserver.issue_grant("bob")
    assert post(authserver.revocation_url, token=grant["refresh_token"]).status_code == 200
    assert introspect(authserver, grant["access_token"]) == {"active": False}
    assert refresh(authserver, grant["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(authserver, other["access_token"])["active"] is True


def test_introspection_and_access_token_lifetime(authserver):
    authserver.access_token_lifetime = 0.5
    grant = authserver.issue_grant("alice", scope="mail")
    info = introspect(authserver, grant["access_token"])
    assert info["active"] is True
    assert {info["username"], info["sub"], info["scope"], info["client_id"]} == {"alice", "mail", "espomail-test"}
    assert introspect(authserver, grant["refresh_token"]) == {"active": False}  # refresh tokens are no bearer
    time.sleep(0.6)
    assert introspect(authserver, grant["access_token"]) == {"active": False}
    assert introspect(authserver, "at-unknown") == {"active": False}


def test_expire_access_tokens_hook(authserver):
    grant = authserver.issue_grant("alice")
    authserver.expire_access_tokens()
    assert introspect(authserver, grant["access_token"]) == {"active": False}
    assert "access_token" in refresh(authserver, grant["refresh_token"]).json()


@pytest.mark.parametrize("how", ["basic", "post"])
def test_confidential_client_authentication(how):
    with AuthServer(clients={"app": "s3cret"}) as server:
        token = server.issue_grant("alice", client_id="app")["refresh_token"]
        form = {"grant_type": "refresh_token", "refresh_token": token}
        if how == "basic":
            answer = requests.post(server.token_url, data=form, auth=("app", "s3cret"), timeout=10)
        else:
            answer = post(server.token_url, client_id="app", client_secret="s3cret", **form)
        assert answer.status_code == 200
        wrong = post(server.token_url, client_id="app", client_secret="nope", **form)
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
