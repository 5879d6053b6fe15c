"""No token, code or client secret in any exception, log record (DEBUG), output, or file but the token store."""

from __future__ import annotations

import logging
import threading
import urllib.request

import pytest

from espomail.errors import EspomailError
from espomail.mail import smtp
from espomail.mail.imap import ImapSession
from espomail.oauth.client import OAuthClient
from espomail.oauth.config import OAuthConfig
from espomail.oauth.flows import Authorizer
from espomail.oauth.storage import KeyringTokenStore, token_store
from espomail.oauth.tokens import TokenManager
from espomail.testing.messages import build_message

TIMEOUT = 10.0
CLIENT_SECRET = "client-secret-Zq8vR1pLk2"


def browser(url: str) -> None:
    """Follows the redirects without logging them (requests would log the loopback URL at DEBUG)."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        answer.read()


def config_for(server, **extra) -> OAuthConfig:
    return OAuthConfig.from_options(
        provider="custom",
        client_id="confidential-app",
        client_secret_env="APP_CLIENT_SECRET",
        token_url=server.token_url,
        device_url=server.device_url,
        auth_url=server.auth_url,
        **extra,
    )


def test_no_secret_leaks_anywhere(oauth_servers, oauth_smtp, tmp_path, monkeypatch, caplog, capsys):
    auth, dovecot = oauth_servers
    auth.clients["confidential-app"] = CLIENT_SECRET
    monkeypatch.setenv("APP_CLIENT_SECRET", CLIENT_SECRET)
    caplog.set_level(logging.DEBUG)
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    token_file = token_dir / "support.json"
    errors: list[BaseException] = []

    def expect_failure(action) -> None:
        with pytest.raises(EspomailError) as failure:
            action()
        errors.append(failure.value)

    # authorize three ways: device (keyring), browser (token file), refresh token (token file)
    keyring_config = config_for(auth)
    device = Authorizer.for_account(keyring_config, "personal", TIMEOUT)
    device.device(lambda prompt: threading.Timer(0.2, auth.approve_device, (prompt.user_code, "alice")).start())
    file_config = config_for(auth, token_file=token_file)
    Authorizer.for_account(file_config, "support", TIMEOUT).browser(print, open_browser=browser, wait=10)
    Authorizer.for_account(file_config, "support", TIMEOUT).refresh_token(
        auth.issue_grant("alice", client_id="confidential-app")["refresh_token"]
    )

    # use the tokens: IMAP, a refused token refreshed, SMTP
    dovecot.add_user("alice")
    dovecot.append("alice", build_message(subject="leak check"))
    for account, config in (("personal", keyring_config), ("support", file_config)):
        tokens = TokenManager.for_account(config, account, TIMEOUT)
        with ImapSession(dovecot.host, dovecot.port, "none", "alice", tokens, TIMEOUT) as imap:
            imap.select("INBOX", readonly=True)
        auth.expire_access_tokens()
        conf = smtp.SmtpConfig(account, oauth_smtp.host, oauth_smtp.port, "none", "alice", None, oauth=tokens)
        smtp.send(conf, TIMEOUT, "alice@example.com", ["bob@example.org"], build_message(subject="x"))

    # the failures
    tokens = TokenManager.for_account(file_config, "support", TIMEOUT)
    expect_failure(lambda: ImapSession(dovecot.host, dovecot.port, "none", "mallory", tokens, TIMEOUT))
    wrong_secret = TokenManager(OAuthClient(file_config, "support", TIMEOUT), token_store(token_file, "support"), "x")
    monkeypatch.setenv("APP_CLIENT_SECRET", CLIENT_SECRET + "-wrong")
    expect_failure(lambda: wrong_secret.access_token(force_refresh=True))
    monkeypatch.setenv("APP_CLIENT_SECRET", CLIENT_SECRET)
    expect_failure(lambda: Authorizer.for_account(file_config, "support", TIMEOUT).refresh_token("rt-not-issued"))
    auth.revoke_all()
    expect_failure(lambda: TokenManager.for_account(file_config, "support", TIMEOUT).access_token(True))
    expect_failure(lambda: TokenManager.for_account(keyring_config, "personal", TIMEOUT).access_token(True))

    secrets = auth.issued_secrets() | {CLIENT_SECRET}
    assert len(secrets) > 10
    assert token_file.exists() and KeyringTokenStore("personal").load() is not None

    texts = {"log": caplog.text, "output": "".join(capsys.readouterr())}
    texts["records"] = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    for error in errors:
        chain = [error, error.__cause__, error.__context__]
        texts[f"error {error!r}"] = " ".join(f"{e!s} {e!r} {getattr(e, 'args', '')}" for e in chain if e)
    stores = {token_file, tmp_path / "keyring.json"}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path not in stores:
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    leaks = [(where, secret) for where, text in texts.items() for secret in secrets if secret in text]
    assert leaks == []
    assert "authorization expired; run 'espomail account authorize support'" in texts[f"error {errors[-2]!r}"]
