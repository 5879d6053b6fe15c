"""Provider presets and the validation of the --oauth-* options."""

from __future__ import annotations

import json

import pytest

from espomail.errors import InvalidInput
from espomail.oauth.config import OAuthConfig, Provider


def build(**options):
    options.setdefault("client_id", "app-id")
    return OAuthConfig.from_options(**options)


def test_microsoft_preset_with_default_and_given_tenant():
    endpoints = build(provider="microsoft").endpoints()
    assert endpoints.token_url == "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    assert endpoints.device_url == "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode"
    assert endpoints.auth_url == "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"
    assert endpoints.scopes == (
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    )
    contoso = build(provider="microsoft", tenant="contoso.onmicrosoft.com").endpoints()
    assert contoso.token_url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"


def test_google_preset():
    endpoints = build(provider="Google").endpoints()
    assert endpoints.token_url == "https://oauth2.googleapis.com/token"
    assert endpoints.device_url == "https://oauth2.googleapis.com/device/code"
    assert endpoints.auth_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert endpoints.scope == "https://mail.google.com/"
    assert dict(endpoints.auth_params) == {"access_type": "offline", "prompt": "consent"}  # else no refresh token


def test_google_authorization_url_asks_for_offline_access():
    from espomail.oauth.client import OAuthClient

    client = OAuthClient(build(provider="google"), "support", 10)
    url, state = client.authorization_url("http://127.0.0.1:5000/", "v" * 64)
    assert url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    assert "access_type=offline" in url and "prompt=consent" in url and f"state={state}" in url
    assert "scope=https%3A%2F%2Fmail.google.com%2F" in url and "code_challenge_method=S256" in url


def test_custom_provider_needs_no_scope():
    config = build(provider="custom", token_url="https://idp.example/token")
    assert config.endpoints().scope is None
    assert config.endpoints().device_url is None
    scoped = build(provider="custom", token_url="https://idp.example/token", scopes=["mail", "offline"])
    assert scoped.endpoints().scope == "mail offline"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"provider": "microsoft", "client_id": None}, "--oauth-client-id is required with --auth oauth2"),
        ({"provider": "microsoft", "client_id": "  "}, "--oauth-client-id is required with --auth oauth2"),
        ({"provider": None}, "--oauth-provider is required with --auth oauth2 (microsoft, google or custom)"),
        ({"provider": "yahoo"}, "unknown --oauth-provider 'yahoo': use microsoft, google or custom"),
        ({"provider": "custom"}, "--oauth-token-url is required with --oauth-provider custom"),
        ({"provider": "custom", "token_url": "http://idp.example/token"}, "--oauth-token-url must be an https://"),
        ({"provider": "google", "tenant": "x"}, "--oauth-tenant applies only to --oauth-provider microsoft"),
        ({"provider": "microsoft", "tenant": "a/b"}, "--oauth-tenant 'a/b' is not a tenant"),
        (
            {"provider": "google", "token_url": "https://x/t"},
            "--oauth-token-url applies only to --oauth-provider custom",
        ),
        ({"provider": "microsoft", "scopes": ["x"]}, "--oauth-scope applies only to --oauth-provider custom"),
        (
            {"provider": "custom", "token_url": "https://x/t", "scopes": ["a b"]},
            "--oauth-scope 'a b' is not one scope",
        ),
        (
            {"provider": "google", "client_secret_env": "A", "client_secret_cmd": "echo"},
            "give only one of --oauth-client-secret-env, --oauth-client-secret-cmd",
        ),
        ({"provider": "google", "client_secret_env": "A=B"}, "--oauth-client-secret-env takes the NAME"),
        (
            {"provider": "google", "token_file": "/nonexistent/dir/t.json"},
            "--oauth-token-file: the directory /nonexistent/dir",
        ),
    ],
)
def test_invalid_options_name_the_option(options, message):
    options.setdefault("client_id", "app-id")
    with pytest.raises(InvalidInput) as failure:
        OAuthConfig.from_options(**options)
    assert failure.value.message.startswith(message)
    assert failure.value.exit_code == 2


def test_http_is_allowed_only_for_this_machine():
    assert build(provider="custom", token_url="http://127.0.0.1:8080/token").token_url == "http://127.0.0.1:8080/token"


def test_json_round_trip_holds_references_not_secrets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = build(provider="microsoft", tenant="contoso.com", client_secret_env="APP_SECRET", token_file="t.json")
    assert config.token_file == tmp_path / "t.json"  # made absolute: cron runs elsewhere
    text = config.to_json()
    assert json.loads(text)["client_secret"] == {"method": "env", "value": "APP_SECRET"}
    again = OAuthConfig.from_json(text)
    assert again == config
    assert again.provider is Provider.MICROSOFT
