"""OAuth2 for mail accounts (SPEC 12): the client side. Imports nothing from store, services,
pipeline or cli; the protocol goes through Authlib.

How the rest of espomail uses it::

    from espomail.oauth import OAuthConfig, TokenManager, Authorizer

    config = OAuthConfig.from_options(provider="microsoft", client_id=..., ...)  # InvalidInput names the option
    text = config.to_json()                      # keep beside the account (no secret in it)
    config = OAuthConfig.from_json(text)

    tokens = TokenManager.for_account(config, "support", settings.timeout_s)
    ImapSession(host, port, security, username, tokens, timeout)     # a TokenProvider instead of a password
    SmtpConfig(..., oauth=tokens)

    authorizer = Authorizer.for_account(config, "support", settings.timeout_s)
    authorizer.device(show=lambda prompt: click.echo(prompt.text(), err=True))
    authorizer.browser(show_url=lambda url: click.echo(f"Open {url}", err=True))
    authorizer.refresh_token(sys.stdin.read())

Errors: AuthorizationExpired (message ``authorization expired; run 'espomail account authorize
NAME'``), NotAuthorized, AuthorizationFailed, OAuthServerError, OAuthNetworkError, SecretError.
Names are loaded on first use, so that importing ``espomail.oauth.sasl`` (the IMAP and SMTP
code does) does not load Authlib and requests.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "OAuthConfig": "config",
    "Provider": "config",
    "Endpoints": "config",
    "TokenManager": "tokens",
    "Authorizer": "flows",
    "AuthorizationResult": "flows",
    "DevicePrompt": "flows",
    "OAuthClient": "client",
    "TokenResponse": "client",
    "StoredToken": "storage",
    "FileTokenStore": "storage",
    "KeyringTokenStore": "storage",
    "token_store": "storage",
    "TokenProvider": "sasl",
    "ReauthorizationNeeded": "errors",
    "AuthorizationExpired": "errors",
    "NotAuthorized": "errors",
    "AuthorizationFailed": "errors",
    "OAuthServerError": "errors",
    "OAuthNetworkError": "errors",
    "InvalidGrant": "errors",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'espomail.oauth' has no attribute {name!r}")
    return getattr(importlib.import_module(f"espomail.oauth.{_WHERE[name]}"), name)
