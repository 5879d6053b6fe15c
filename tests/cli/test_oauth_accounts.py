"""OAuth2 accounts through the ``espomail`` command (SPEC 12, issue 14): options, ``account authorize``,
fetch, send and auto-replies with tokens, the authorization-expired error, nothing changed by a
rejected command, no secret anywhere.

Offline: a local authorization server (espomail.testing.authserver), a Dovecot whose ``oauth2``
passdb asks its introspection endpoint (password logins work there too), and an SMTP server that
takes XOAUTH2/OAUTHBEARER. Cyrus is not used here: Debian's Cyrus SASL has no server-side
XOAUTH2/OAUTHBEARER plugin (libsasl2-modules-kdexoauth2 is KDE's client side; the third-party
cyrus-sasl-xoauth2 is not packaged), so the OAuth2 logins are tried on Dovecot only.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from espomail.testing.authserver import AuthServer
from espomail.testing.dovecot import Dovecot
from espomail.testing.messages import build_message
from espomail.testing.smtp_oauth import OAuthSMTP

EXPIRED = "Error: account 'support': authorization expired; run 'espomail account authorize support'"
_boxes = itertools.count(1)


@pytest.fixture(scope="module")
def _module_servers():
    with AuthServer() as auth, Dovecot(users=(), oauth2_introspection_url=auth.introspection_url) as dovecot:
        yield auth, dovecot


@pytest.fixture
def servers(_module_servers):
    auth, dovecot = _module_servers
    auth.reset()
    yield auth, dovecot
    auth.reset()


@pytest.fixture
def oauth_smtp(servers):
    auth, _ = servers
    with OAuthSMTP(auth.introspection_url) as server:
        yield server


def new_box(dovecot: Dovecot, prefix: str = "kim") -> str:
    name = f"{prefix}{next(_boxes)}"
    dovecot.add_user(name)
    return name


def add_oauth(espomail, auth, dovecot, user, *extra, name="support", command="add-group"):
    """An OAuth2 group account on ``user``'s mailbox, custom provider = the local authorization server."""
    return espomail(
        "account",
        command,
        name,
        "--address",
        f"{name}@example.com",
        "--host",
        dovecot.host,
        "--port",
        dovecot.port,
        "--security",
        "none",
        "--username",
        user,
        "--fetch-since",
        "2000-01-01",
        *oauth_options(auth),
        *extra,
    )


def oauth_options(auth: AuthServer) -> list[str]:
    return [
        "--auth",
        "oauth2",
        "--oauth-provider",
        "custom",
        "--oauth-client-id",
        "espomail-test",
        "--oauth-token-url",
        auth.token_url,
        "--oauth-device-url",
        auth.device_url,
        "--oauth-auth-url",
        auth.auth_url,
    ]


def approve_when_asked(auth: AuthServer, user: str, deny: bool = False) -> threading.Thread:
    """Approve (or decline) the next new device code as ``user``, like a person at the verification page."""
    earlier = set(auth.pending_user_codes())

    def answer() -> None:
        for _ in range(3000):  # a minute at most
            codes = [code for code in auth.pending_user_codes() if code not in earlier]
            if codes:
                if deny:
                    auth.deny_device(codes[0])
                else:
                    auth.approve_device(codes[0], user)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def authorize_device(espomail, auth, user, name="support", *extra):
    thread = approve_when_asked(auth, user)
    result = espomail("account", "authorize", name, "--device", *extra)
    thread.join(60)
    return result


def authorized_account(espomail, auth, dovecot, *extra, name="support", prefix="kim"):
    user = new_box(dovecot, prefix)
    added = add_oauth(espomail, auth, dovecot, user, *extra, name=name)
    assert added.exit_code == 0, added
    grant = auth.issue_grant(user)
    result = espomail("account", "authorize", name, "--refresh-token-stdin", input=grant["refresh_token"] + "\n")
    assert result.exit_code == 0, result
    return user


def subjects(espomail) -> list[str]:
    result = espomail("email", "list", "--all", "--json")
    assert result.exit_code == 0, result
    return sorted(e["subject"] for e in result.json)


def keyring(isolated: Path) -> dict:
    path = isolated / "keyring.json"
    return json.loads(path.read_text()) if path.exists() else {}


# -- adding, authorizing, fetching --------------------------------------------------------------


def test_add_group_authorize_with_the_device_flow_then_fetch(espomail, servers, isolated):
    auth, dovecot = servers
    user = new_box(dovecot)
    dovecot.append(user, build_message(subject="Printer on fire", message_id="<d1@customer.example>"))
    added = add_oauth(espomail, auth, dovecot, user)
    assert added.exit_code == 0, added
    assert "Note: next: run 'espomail account authorize support' to sign in to the mailbox" in added.stderr
    shown = espomail("account", "show", "support", "--json").json
    assert shown["auth"] == "oauth2"
    assert shown["password"] is None
    assert shown["oauth"] == {
        "provider": "custom",
        "client_id": "espomail-test",
        "client_secret": None,
        "token_url": auth.token_url,
        "device_url": auth.device_url,
        "auth_url": auth.auth_url,
        "scopes": [],
        "token_storage": "keyring",
        "token_file": None,
    }
    assert espomail("account", "list", "--json").json[0]["auth"] == "oauth2"

    before = espomail("fetch")
    assert before.exit_code == 1
    assert before.stderr.splitlines() == [
        "Error: account 'support': not authorized yet; run 'espomail account authorize support'"
    ]

    result = authorize_device(espomail, auth, user)
    assert result.exit_code == 0, result
    assert result.stdout == "Authorized account 'support' (device flow); refresh token kept in the keyring\n"
    assert f"open {auth.url}/device in a browser and enter the code " in result.stderr
    assert list(keyring(isolated)) == ["espomail\0support/oauth2"]

    fetched = espomail("fetch")
    assert fetched.exit_code == 0, fetched
    assert subjects(espomail) == ["Printer on fire"]
    status = espomail("status", "--json")
    assert status.exit_code == 0, status
    assert status.json[0]["last_error"] is None and status.json[0]["auth"] == "oauth2"
    tested = espomail("account", "test", "support")
    assert tested.exit_code == 0, tested
    assert tested.stdout.startswith("IMAP login ok; folders: INBOX")


def test_authorize_json_prints_an_object_at_the_end(espomail, servers):
    auth, dovecot = servers
    user = new_box(dovecot)
    assert add_oauth(espomail, auth, dovecot, user).exit_code == 0
    result = authorize_device(espomail, auth, user, "support", "--json")
    assert result.exit_code == 0, result
    assert result.json == {
        "account": "support",
        "flow": "device",
        "token_storage": "keyring",
        "token_file": None,
        "scope": None,
    }
    assert "enter the code" in result.stderr


def test_the_default_flow_is_the_device_flow_when_the_provider_has_one(espomail, servers):
    auth, dovecot = servers
    user = new_box(dovecot)
    assert add_oauth(espomail, auth, dovecot, user).exit_code == 0
    thread = approve_when_asked(auth, user)
    result = espomail("account", "authorize", "support")
    thread.join(60)
    assert result.exit_code == 0, result
    assert "(device flow)" in result.stdout


def test_a_declined_device_code_saves_nothing(espomail, servers, isolated):
    auth, dovecot = servers
    user = new_box(dovecot)
    assert add_oauth(espomail, auth, dovecot, user).exit_code == 0
    thread = approve_when_asked(auth, user, deny=True)
    result = espomail("account", "authorize", "support", "--device")
    thread.join(60)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: the sign-in for account 'support' was declined; nothing was saved"
    )
    assert keyring(isolated) == {}


def test_browser_flow_through_the_command_with_a_browser_program(espomail_process, servers, tmp_path):
    """$BROWSER is a program that follows the sign-in URL (the test server approves at once)."""
    auth, dovecot = servers
    user = new_box(dovecot, "alice")  # the authorization server's browser user is alice...
    auth.browser_user = user  # ...or whoever this test's mailbox is
    assert add_oauth(lambda *a: espomail_process(*a), auth, dovecot, user).exit_code == 0
    opener = tmp_path / "open-url"
    opener.write_text(f"#!{sys.executable}\nimport sys, urllib.request\nurllib.request.urlopen(sys.argv[1]).read()\n")
    opener.chmod(0o700)
    result = espomail_process("account", "authorize", "support", "--browser", env={"BROWSER": f"{opener} %s"})
    assert result.exit_code == 0, result
    assert result.stdout == "Authorized account 'support' (browser flow); refresh token kept in the keyring\n"
    assert "Open this URL in a browser to sign in for account 'support' (waiting up to 5 minutes):\n" in result.stderr
    assert f"\n{auth.auth_url}?response_type=code&" in result.stderr  # the URL alone on its line, to copy
    assert espomail_process("fetch").exit_code == 0


def test_refresh_token_from_stdin(espomail, servers, isolated):
    auth, dovecot = servers
    user = new_box(dovecot)
    dovecot.append(user, build_message(subject="Migrated", message_id="<m1@customer.example>"))
    assert add_oauth(espomail, auth, dovecot, user).exit_code == 0

    refused = espomail("account", "authorize", "support", "--refresh-token-stdin", input="rt-not-a-real-one\n")
    assert refused.exit_code == 1
    assert "the provider refused this refresh token (invalid_grant)" in refused.stderr
    assert keyring(isolated) == {}
    empty = espomail("account", "authorize", "support", "--refresh-token-stdin", input="")
    assert empty.exit_code == 2
    assert empty.stderr == "Error: --refresh-token-stdin read no refresh token from standard input\n"
    both = espomail("account", "authorize", "support", "--device", "--browser")
    assert both.exit_code == 2
    assert both.stderr == "Error: give only one of --device, --browser, --refresh-token-stdin\n"

    grant = auth.issue_grant(user)
    result = espomail("account", "authorize", "support", "--refresh-token-stdin", input=grant["refresh_token"] + "\n")
    assert result.exit_code == 0, result
    assert result.stdout == (
        "Authorized account 'support' (refresh token from stdin); refresh token kept in the keyring\n"
    )
    assert espomail("fetch").exit_code == 0
    assert subjects(espomail) == ["Migrated"]


def test_authorize_refuses_a_password_account_and_a_stranger(espomail, servers):
    auth, dovecot = servers
    user = new_box(dovecot)
    added = espomail(
        "account", "add-group", "plain", "--address", "plain@example.com", "--host", dovecot.host,
        "--username", user, "--password-env", "TEST_IMAP_PASSWORD",
    )  # fmt: skip
    assert added.exit_code == 0, added
    result = espomail("account", "authorize", "plain")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: account 'plain' signs in with a password; to use OAuth2 run ")
    espomail("user", "add", "bob", "--email", "bob@example.com")
    assert espomail("--as", "bob", "account", "authorize", "plain").exit_code == 4
    assert espomail("account", "authorize", "nobody").exit_code == 3


# -- tokens across runs -------------------------------------------------------------------------


def test_an_access_token_that_expires_between_two_fetches_is_renewed_and_the_rotation_saved(
    espomail, servers, tmp_path
):
    auth, dovecot = servers
    token_file = tmp_path / "tokens" / "support.json"
    token_file.parent.mkdir()
    auth.access_token_lifetime = 2
    user = authorized_account(espomail, auth, dovecot, "--oauth-token-file", token_file)
    dovecot.append(user, build_message(subject="First", message_id="<r1@customer.example>"))
    assert espomail("fetch").exit_code == 0
    first = json.loads(token_file.read_text())
    refreshes = auth.refresh_count()

    time.sleep(2.1)  # the access token of the first run is dead now
    dovecot.append(user, build_message(subject="Second", message_id="<r2@customer.example>"))
    second_run = espomail("fetch")
    assert second_run.exit_code == 0, second_run
    assert subjects(espomail) == ["First", "Second"]
    assert auth.refresh_count() == refreshes + 1
    second = json.loads(token_file.read_text())
    assert second["refresh_token"] != first["refresh_token"]  # rotated, and saved
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] in auth.live_refresh_tokens()


def test_an_access_token_the_server_refuses_is_renewed_once(espomail, servers):
    auth, dovecot = servers
    user = authorized_account(espomail, auth, dovecot)
    assert espomail("fetch").exit_code == 0
    auth.expire_access_tokens()  # the client still thinks its token good for an hour
    dovecot.append(user, build_message(subject="After refusal", message_id="<x1@customer.example>"))
    refreshes = auth.refresh_count()
    result = espomail("fetch")
    assert result.exit_code == 0, result
    assert auth.refresh_count() == refreshes + 1
    assert subjects(espomail) == ["After refusal"]


def test_token_file_is_private_and_replaced_atomically(espomail, servers, tmp_path):
    auth, dovecot = servers
    directory = tmp_path / "tokens"
    directory.mkdir()
    token_file = directory / "support.json"
    user = new_box(dovecot)
    assert add_oauth(espomail, auth, dovecot, user, "--oauth-token-file", token_file).exit_code == 0
    assert not token_file.exists()
    result = authorize_device(espomail, auth, user)
    assert result.exit_code == 0, result
    assert result.stdout == f"Authorized account 'support' (device flow); refresh token kept in {token_file}\n"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    inode = token_file.stat().st_ino
    auth.expire_access_tokens()
    assert espomail("fetch").exit_code == 0  # refused token -> refresh -> rotated token saved
    assert token_file.stat().st_ino != inode  # a new file renamed over the old one
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == ["support.json", "support.json.lock"]

    token_file.chmod(0o644)
    loose = espomail("fetch")
    assert loose.exit_code == 1
    assert loose.stderr == (
        f"Error: account 'support': the token file {token_file} can be read by other users (mode 0644); "
        f"run 'chmod 600 {token_file}'\n"
    )


CRASHING_FETCH = textwrap.dedent(
    """
    import os, sys
    from espomail.oauth.storage import FileTokenStore
    real_save = FileTokenStore.save

    def killed_before_writing(self, token):
        os._exit(9)

    def killed_after_writing(self, token):
        real_save(self, token)
        os._exit(9)

    FileTokenStore.save = killed_before_writing if sys.argv[1] == "before" else killed_after_writing
    from espomail.cli import main
    main(["fetch"])
    """
)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_fetch_killed_around_the_save_of_a_rotated_token_leaves_a_working_account(espomail, servers, tmp_path, when):
    auth, dovecot = servers
    token_file = tmp_path / "support.json"
    user = authorized_account(espomail, auth, dovecot, "--oauth-token-file", token_file)
    auth.expire_access_tokens()
    refreshes = auth.refresh_count()
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_FETCH, when], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert child.returncode == 9, child.stderr
    assert auth.refresh_count() == refreshes + 1  # the provider rotated; the process died around the save
    dovecot.append(user, build_message(subject="Still here", message_id="<c1@customer.example>"))
    result = espomail("fetch")
    assert result.exit_code == 0, result
    assert subjects(espomail) == ["Still here"]


# -- a revoked grant ----------------------------------------------------------------------------


def test_a_revoked_grant_is_one_error_line_and_the_other_accounts_are_fetched(espomail, servers):
    auth, dovecot = servers
    user = authorized_account(espomail, auth, dovecot, "--smtp-host", "127.0.0.1", "--smtp-security", "none")
    other = new_box(dovecot, "pat")
    added = espomail(
        "account", "add-group", "sales", "--address", "sales@example.com", "--host", dovecot.host,
        "--port", dovecot.port, "--security", "none", "--username", other,
        "--password-env", "TEST_IMAP_PASSWORD", "--fetch-since", "2000-01-01",
    )  # fmt: skip
    assert added.exit_code == 0, added
    dovecot.append(user, build_message(subject="To support", message_id="<v1@customer.example>"))
    dovecot.append(other, build_message(subject="To sales", message_id="<v2@customer.example>"))
    auth.revoke_all()
    auth.expire_access_tokens()

    fetched = espomail("fetch")
    assert fetched.exit_code == 1
    assert fetched.stderr.splitlines() == [EXPIRED]
    assert subjects(espomail) == ["To sales"]

    tested = espomail("account", "test", "support")
    assert tested.exit_code == 1
    assert (tested.stdout, tested.stderr) == ("", EXPIRED + "\n")
    tested_json = espomail("account", "test", "support", "--json")
    assert tested_json.exit_code == 1
    assert tested_json.json["error"] == EXPIRED.split(": ", 2)[2]
    status = espomail("status")
    assert status.exit_code == 1
    assert status.stderr.splitlines() == [EXPIRED]
    assert "authorization expired" in status.stdout
    rows = {row["name"]: row for row in espomail("status", "--json").json}
    assert rows["support"]["last_error"] == rows["support"]["authorization_error"] == EXPIRED.split(": ", 2)[2]
    assert rows["sales"]["last_error"] is None

    # authorizing again clears the error; the next fetch takes the mail
    again = authorize_device(espomail, auth, user)
    assert again.exit_code == 0, again
    assert espomail("status").exit_code == 0
    assert espomail("fetch").exit_code == 0
    assert subjects(espomail) == ["To sales", "To support"]


# -- sending with XOAUTH2 -----------------------------------------------------------------------


def test_email_send_and_auto_replies_go_through_smtp_with_xoauth2(espomail, servers, oauth_smtp, tmp_path):
    auth, dovecot = servers
    body = tmp_path / "reply.txt"
    body.write_text("We got your mail about {subject}.\n")
    user = authorized_account(
        espomail, auth, dovecot,
        "--smtp-host", oauth_smtp.host, "--smtp-port", oauth_smtp.port, "--smtp-security", "none",
        "--smtp-shared", "--auto-reply", "--reply-subject", "Re: {subject}", "--reply-body-file", body,
    )  # fmt: skip
    assert espomail("account", "show", "support", "--json").json["smtp_username"] == user
    dovecot.append(user, build_message(from_="jane@customer.example", subject="Help", message_id="<s1@c.example>"))
    fetched = espomail("fetch", "--json")
    assert fetched.exit_code == 0, fetched
    assert fetched.json["accounts"][0]["auto_replies"] == 1
    assert [m.rcpt_tos for m in oauth_smtp.messages] == [["jane@customer.example"]]
    assert b"Subject: Re: Help" in oauth_smtp.messages[0].data

    sent = espomail(
        "email", "send", "--from", "support@example.com", "--to", "joe@customer.example",
        "--subject", "Hello", "--body", "Hi Joe", "--json",
    )  # fmt: skip
    assert sent.exit_code == 0, sent
    assert sent.json["status"] == "Sent"
    assert len(oauth_smtp.messages) == 2
    assert oauth_smtp.logins == [("XOAUTH2", user), ("XOAUTH2", user)]
    assert espomail("account", "test", "support").stdout.splitlines()[-1] == "SMTP login ok"


def test_smtp_with_a_revoked_grant_leaves_the_email_failed_with_the_error(espomail, servers, oauth_smtp):
    auth, dovecot = servers
    authorized_account(
        espomail, auth, dovecot,
        "--smtp-host", oauth_smtp.host, "--smtp-port", oauth_smtp.port, "--smtp-security", "none", "--smtp-shared",
    )  # fmt: skip
    auth.revoke_all()
    auth.expire_access_tokens()
    sent = espomail(
        "email", "send", "--from", "support@example.com", "--to", "joe@customer.example",
        "--subject", "Hello", "--body", "Hi", "--json",
    )  # fmt: skip
    assert sent.exit_code == 1
    assert "authorization expired; run 'espomail account authorize support'" in sent.stderr
    assert oauth_smtp.messages == []


# -- switching, moving, removing ----------------------------------------------------------------


def test_switch_from_password_to_oauth2_and_back(espomail, servers, isolated, tmp_path):
    auth, dovecot = servers
    user = new_box(dovecot)
    added = espomail(
        "account", "add-group", "support", "--address", "support@example.com", "--host", dovecot.host,
        "--port", dovecot.port, "--security", "none", "--username", user, "--password-stdin",
        "--fetch-since", "2000-01-01", input="secret\n",
    )  # fmt: skip
    assert added.exit_code == 0, added
    assert list(keyring(isolated)) == ["espomail\0support/imap"]

    switched = espomail("account", "update", "support", *oauth_options(auth))
    assert switched.exit_code == 0, switched
    assert keyring(isolated) == {}  # the password is not kept for an account that no longer uses it
    shown = espomail("account", "show", "support", "--json").json
    assert (shown["auth"], shown["password"]) == ("oauth2", None)
    assert authorize_device(espomail, auth, user).exit_code == 0
    dovecot.append(user, build_message(subject="Via OAuth", message_id="<w1@customer.example>"))
    assert espomail("fetch").exit_code == 0

    back = espomail("account", "update", "support", "--auth", "password", "--password-env", "TEST_IMAP_PASSWORD")
    assert back.exit_code == 0, back
    assert keyring(isolated) == {}  # the OAuth2 tokens are forgotten
    shown = espomail("account", "show", "support", "--json").json
    assert (shown["auth"], shown["password"], shown["oauth"]) == ("password", "env $TEST_IMAP_PASSWORD", None)
    dovecot.append(user, build_message(subject="Via password", message_id="<w2@customer.example>"))
    assert espomail("fetch").exit_code == 0
    assert subjects(espomail) == ["Via OAuth", "Via password"]


def test_tokens_follow_the_account_from_the_keyring_to_a_token_file(espomail, servers, isolated, tmp_path):
    auth, dovecot = servers
    user = authorized_account(espomail, auth, dovecot)
    assert list(keyring(isolated)) == ["espomail\0support/oauth2"]
    token_file = tmp_path / "support.json"
    moved = espomail("account", "update", "support", "--oauth-token-file", token_file)
    assert moved.exit_code == 0, moved
    assert f"Note: the saved authorization moved to the token file {token_file}" in moved.stderr
    assert keyring(isolated) == {}
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    dovecot.append(user, build_message(subject="From the file", message_id="<f1@customer.example>"))
    assert espomail("fetch").exit_code == 0
    assert subjects(espomail) == ["From the file"]


def test_remove_forgets_keyring_tokens_and_leaves_a_token_file(espomail, servers, isolated, tmp_path):
    auth, dovecot = servers
    authorized_account(espomail, auth, dovecot)
    removed = espomail("account", "remove", "support", "--yes")
    assert removed.exit_code == 0, removed
    assert keyring(isolated) == {}
    assert "Note" not in removed.stderr

    token_file = tmp_path / "sales.json"
    authorized_account(espomail, auth, dovecot, "--oauth-token-file", token_file, name="sales")
    removed = espomail("account", "remove", "sales", "--yes")
    assert removed.exit_code == 0, removed
    assert token_file.exists()
    assert removed.stderr == f"Note: the token file {token_file} was left in place; delete it if nothing else uses it\n"


def test_a_copied_token_file_is_used_as_it_is(espomail, servers, tmp_path):
    """Authorized elsewhere (a desktop with a browser), the token file copied to the server."""
    auth, dovecot = servers
    user = new_box(dovecot)
    grant = auth.issue_grant(user)
    token_file = tmp_path / "copied.json"
    token_file.write_text(json.dumps({"refresh_token": grant["refresh_token"]}))
    token_file.chmod(0o600)
    added = add_oauth(espomail, auth, dovecot, user, "--oauth-token-file", token_file)
    assert added.exit_code == 0, added
    assert "Note" not in added.stderr
    assert espomail("fetch").exit_code == 0


def test_personal_account_with_the_microsoft_preset(espomail, servers):
    espomail("role", "add", "mailer", "--personal-accounts", "yes", "--email-read", "own")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--role", "mailer")
    result = espomail(
        "--as", "alice", "account", "add-personal", "alice-mail", "--user", "alice", "--address",
        "alice@example.com", "--host", "outlook.office365.com", "--username", "alice@example.com",
        "--auth", "oauth2", "--oauth-provider", "Microsoft", "--oauth-client-id", "11111111-2222",
        "--oauth-tenant", "example.com", "--smtp-host", "smtp.office365.com", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result
    assert result.json["oauth"]["client_secret"] is None
    # a client secret read from the environment is the administrator's to set (policy.access secret.command)
    refused = espomail("--as", "alice", "account", "update", "alice-mail", "--oauth-client-secret-env", "APP_SECRET")
    assert refused.exit_code == 4, refused
    result = espomail("account", "update", "alice-mail", "--oauth-client-secret-env", "APP_SECRET", "--json")
    assert result.exit_code == 0, result
    data = result.json
    assert data["oauth"] == {
        "provider": "microsoft",
        "client_id": "11111111-2222",
        "client_secret": "env $APP_SECRET",
        "tenant": "example.com",
        "token_storage": "keyring",
        "token_file": None,
    }
    assert (data["smtp_username"], data["smtp_port"], data["smtp_security"]) == ("alice@example.com", 587, "starttls")
    assert data["notes"] == ["next: run 'espomail account authorize alice-mail' to sign in to the mailbox"]
    # only the client id changes; the tenant and the secret reference stay
    updated = espomail("--as", "alice", "account", "update", "alice-mail", "--oauth-client-id", "3333", "--json")
    assert updated.exit_code == 0, updated
    assert updated.json["oauth"]["tenant"] == "example.com"
    assert updated.json["oauth"]["client_secret"] == "env $APP_SECRET"
    # another provider starts afresh: the tenant does not carry over to google
    google = espomail(
        "account", "update", "alice-mail", "--oauth-provider", "google", "--oauth-client-id", "g-1", "--json"
    )
    assert google.exit_code == 0, google
    assert google.json["oauth"] == {
        "provider": "google",
        "client_id": "g-1",
        "client_secret": None,
        "token_storage": "keyring",
        "token_file": None,
    }


# -- rejected commands change nothing -----------------------------------------------------------


def snapshot(espomail, isolated, token_file: Path) -> tuple:
    accounts = espomail("account", "list", "--json").json
    shown = [espomail("account", "show", a["name"], "--json").json for a in accounts]
    token = (token_file.read_bytes(), token_file.stat().st_mtime_ns) if token_file.exists() else None
    return shown, keyring(isolated), token


REJECTED = [
    (["--oauth-client-id", ""], 2, "--oauth-client-id is required with --auth oauth2"),
    (["--oauth-provider", "yahoo"], 2, "Invalid value for '--oauth-provider'"),
    (["--oauth-token-url", ""], 2, "--oauth-token-url is required with --oauth-provider custom"),
    (["--oauth-token-url", "http://auth.example.com/token"], 2, "must be an https:// URL"),
    (["--oauth-client-secret-env", "A", "--oauth-client-secret-cmd", "echo b"], 2, "give only one of"),
    (["--oauth-tenant", "example.com"], 2, "--oauth-tenant applies only to --oauth-provider microsoft"),
    (["--password-stdin"], 2, "--password-stdin does not apply to an OAuth2 account"),
    (["--smtp-password-env", "X"], 2, "--smtp-password-env does not apply to an OAuth2 account"),
    (["--auth", "password"], 2, "--oauth-provider applies only with --auth oauth2"),
    (["--oauth-token-file", "/nonexistent/dir/t.json"], 2, "the directory /nonexistent/dir does not exist"),
    (["--distribution", "direct"], 2, "--distribution direct needs --assign-user"),
]


@pytest.mark.parametrize(("extra", "code", "words"), REJECTED)
def test_rejected_commands_change_nothing(espomail, servers, isolated, tmp_path, extra, code, words):
    auth, dovecot = servers
    token_file = tmp_path / "support.json"
    authorized_account(espomail, auth, dovecot, "--oauth-token-file", token_file)
    before = snapshot(espomail, isolated, token_file)
    for command in (["update", "support"], ["add-group", "other"]):
        args = [
            "account", command[0], command[1], *oauth_options(auth), *extra,
            *(["--address", "o@example.com", "--host", "h", "--username", "u"] if command[0] == "add-group" else []),
        ]  # fmt: skip
        result = espomail(*args, input="a password\n")
        assert result.exit_code == code, (command, result)
        assert words in result.stderr, (command, result)
        assert result.stderr.startswith("Error: "), result
        assert snapshot(espomail, isolated, token_file) == before


def test_more_rejected_changes_leave_store_keyring_and_token_file_alone(espomail, servers, isolated, tmp_path):
    auth, dovecot = servers
    token_file = tmp_path / "support.json"
    authorized_account(espomail, auth, dovecot, "--oauth-token-file", token_file)
    authorized_account(espomail, auth, dovecot, name="sales")
    espomail("role", "add", "mailer", "--personal-accounts", "yes")
    espomail("user", "add", "bob", "--email", "bob@example.com", "--role", "mailer")
    before = snapshot(espomail, isolated, token_file)
    attempts = [
        (["account", "update", "sales", "--oauth-token-file", token_file], 2, "is the token file of account 'support'"),
        (["account", "update", "support", "--auth", "password"], 2, "--auth password needs the password"),
        (["account", "update", "support", "--oauth-scope", "a b"], 2, "is not one scope"),
        (["account", "update", "support", "--oauth-client-id", "x", "--smtp-username", "s", "--store-sent", "Sent"],
         2, "--store-sent needs SMTP"),
        (["--as", "bob", "account", "add-personal", "bobs", "--user", "bob", "--address", "bob@example.com",
          "--host", "h", "--username", "bob", *oauth_options(auth), "--oauth-client-secret-cmd", "cat /etc/shadow"],
         4, "bob may not set --oauth-client-secret-cmd of account 'bobs'"),
        (["account", "update", "plain", "--oauth-client-id", "x"], 3, "no mail account named 'plain'"),
    ]  # fmt: skip
    for args, code, words in attempts:
        result = espomail(*args)
        assert (result.exit_code, words in result.stderr) == (code, True), (args, result)
        assert snapshot(espomail, isolated, token_file) == before, args


def test_a_rejected_password_command_leaves_the_keyring_alone(espomail, isolated):
    """The keyring is written last, after every check (it was written before the consistency checks)."""
    add = ["account", "add-group", "x", "--address", "x@example.com", "--host", "h", "--username", "u"]
    rejected = espomail(*add, "--password-stdin", "--distribution", "direct", input="pw1\n")
    assert (rejected.exit_code, keyring(isolated)) == (2, {})
    assert espomail(*add, "--password-stdin", input="pw1\n").exit_code == 0
    rejected = espomail("account", "update", "x", "--password-stdin", "--distribution", "direct", input="pw2\n")
    assert (rejected.exit_code, keyring(isolated)) == (2, {"espomail\0x/imap": "pw1"})


def test_a_token_file_others_can_read_is_refused_when_added(espomail, servers, tmp_path):
    auth, dovecot = servers
    token_file = tmp_path / "loose.json"
    token_file.write_text(json.dumps({"refresh_token": "rt-x"}))
    token_file.chmod(0o644)
    result = add_oauth(espomail, auth, dovecot, new_box(dovecot), "--oauth-token-file", token_file)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the token file {token_file} can be read by other users (mode 0644); run 'chmod 600 {token_file}'\n"
    )
    assert espomail("account", "list", "--json").json == []


def test_without_a_keyring_adding_says_to_use_a_token_file(espomail_process, servers, tmp_path, monkeypatch):
    """A subprocess: keyring picks its backend once per process."""
    auth, dovecot = servers
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    user = new_box(dovecot)
    refused = add_oauth(lambda *a: espomail_process(*a), auth, dovecot, user)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: no usable system keyring on this machine (a headless server?); keep the OAuth2 tokens in a "
        "file instead: --oauth-token-file PATH (created with mode 0600)\n"
    )
    assert espomail_process("account", "list", "--json").stdout.strip() == "[]"
    added = add_oauth(lambda *a: espomail_process(*a), auth, dovecot, user, "--oauth-token-file", tmp_path / "t.json")
    assert added.exit_code == 0, added


# -- no secret anywhere -------------------------------------------------------------------------

CLIENT_SECRET = "cs-Zq8vR1pLk2wT9"


def test_no_token_or_client_secret_reaches_the_store_the_log_or_any_output(
    espomail, servers, oauth_smtp, isolated, tmp_path, monkeypatch, db
):
    auth, dovecot = servers
    auth.clients["confidential"] = CLIENT_SECRET
    monkeypatch.setenv("APP_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("ESPOMAIL_LOG_LEVEL", "debug")
    outputs = []

    def run(*args, **kwargs):
        result = espomail(*args, **kwargs)
        outputs.append(result.stdout + result.stderr)
        return result

    user = new_box(dovecot)
    dovecot.append(user, build_message(from_="jane@customer.example", subject="Leak?", message_id="<l1@c.example>"))
    token_file = tmp_path / "support.json"
    options = [o if o != "espomail-test" else "confidential" for o in oauth_options(auth)]
    args = ["--smtp-host", oauth_smtp.host, "--smtp-port", oauth_smtp.port, "--smtp-security", "none"]
    added = run(
        "account", "add-group", "support", "--address", "support@example.com", "--host", dovecot.host,
        "--port", dovecot.port, "--security", "none", "--username", user, "--fetch-since", "2000-01-01",
        *options, "--oauth-client-secret-env", "APP_SECRET", "--oauth-token-file", token_file, *args,
    )  # fmt: skip
    assert added.exit_code == 0, added
    thread = approve_when_asked(auth, user)
    assert run("account", "authorize", "support", "--device", "--json").exit_code == 0
    thread.join(60)
    assert run("-vv", "fetch", "--json").exit_code == 0
    auth.expire_access_tokens()
    assert run("account", "test", "support", "--json").exit_code == 0
    send = ["email", "send", "--from", "support@example.com", "--to", "jane@customer.example", "--subject", "S"]
    assert run(*send, "--body", "b", "--json").exit_code == 0
    grant = auth.issue_grant(user, client_id="confidential")
    assert run("account", "authorize", "support", "--refresh-token-stdin", input=grant["refresh_token"]).exit_code == 0
    for command in (["account", "show", "support", "--json"], ["account", "list"], ["status", "--json"]):
        run(*command)
    auth.revoke_all()
    auth.expire_access_tokens()
    assert run("fetch").exit_code == 1
    assert run("account", "test", "support").exit_code == 1
    assert run("status").exit_code == 1
    assert run(*send, "--body", "again").exit_code == 1

    secrets = auth.issued_secrets() | {CLIENT_SECRET}
    assert len(secrets) > 6
    # every file of the test but the token store: the database (and its WAL), raw packs, the log;
    # and every row of the store (on PostgreSQL the only place the store is)
    files = [p for p in isolated.rglob("*") if p.is_file() and not p.name.startswith(token_file.name)]
    assert {"espomail.log"} | ({"espomail.db"} if db.engine == "sqlite" else set()) <= {p.name for p in files}
    assert "account support: authorized by the device flow" in (isolated / "espomail.log").read_text()
    texts = {str(p): p.read_bytes().decode("utf-8", "replace") for p in files}
    texts["the store's rows"] = repr(db.dump())
    texts.update({f"output {i}": text for i, text in enumerate(outputs)})
    assert any(secret in token_file.read_text() for secret in secrets)  # the search finds tokens where they are
    leaks = [(where, secret[:6]) for where, text in texts.items() for secret in secrets if secret in text]
    assert leaks == []
