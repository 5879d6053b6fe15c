"""IMAP and SMTP logins with tokens, against Dovecot's oauth2 passdb and an aiosmtpd server that introspect them."""

from __future__ import annotations

import pytest

from espomail.errors import MailServerError
from espomail.mail import smtp
from espomail.mail.imap import ImapSession
from espomail.oauth.errors import AuthorizationExpired
from espomail.testing.authserver import AuthServer
from espomail.testing.dovecot import Dovecot
from espomail.testing.messages import build_message
from espomail.testing.smtp_oauth import OAuthSMTP

TIMEOUT = 10.0


def session(dovecot, user, tokens):
    return ImapSession(dovecot.host, dovecot.port, "none", user, tokens, TIMEOUT)


def test_imap_xoauth2_login_then_a_fetch(oauth_servers, authorized):
    auth, dovecot = oauth_servers
    dovecot.add_user("carol")
    raw = build_message(subject="over oauth", message_id="<oauth-fetch@example.net>")
    dovecot.append("carol", raw)  # the fixture itself logs in with a password: both kinds work
    tokens = authorized(auth, user="carol")
    with session(dovecot, "carol", tokens) as imap:
        status = imap.select("INBOX", readonly=True)
        uids = imap.uids_above(0)
        [fetched] = list(imap.download(uids, set()))
    assert status.messages == 1
    assert fetched.raw.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert "method=XOAUTH2" in (dovecot.base / "dovecot.log").read_text()


def test_imap_uses_oauthbearer_when_xoauth2_is_not_offered(authorized):
    with (
        AuthServer() as auth,
        Dovecot(users=(), oauth2_introspection_url=auth.introspection_url, oauth2_mechanisms=("oauthbearer",)) as dc,
    ):
        tokens = authorized(auth, user="dave")
        with session(dc, "dave", tokens) as imap:
            assert imap.select("INBOX", readonly=True).messages == 0
        log = (dc.base / "dovecot.log").read_text()
    assert "user=<dave>, method=OAUTHBEARER" in log


def test_a_refused_token_is_refreshed_once_and_the_login_succeeds(oauth_servers, authorized):
    auth, dovecot = oauth_servers
    tokens = authorized(auth, user="erin")
    tokens.access_token()
    auth.expire_access_tokens()  # still valid by the client's clock, dead at the server
    count = auth.refresh_count()
    with session(dovecot, "erin", tokens) as imap:
        imap.list_folders()
    assert auth.refresh_count() == count + 1


def test_an_access_token_that_expires_between_two_fetches(oauth_servers, authorized):
    import time

    auth, dovecot = oauth_servers
    auth.access_token_lifetime = 1
    tokens = authorized(auth, user="frank")
    with session(dovecot, "frank", tokens) as imap:
        imap.list_folders()
    time.sleep(1.2)
    with session(dovecot, "frank", tokens) as imap:
        imap.list_folders()
    assert auth.refresh_count() >= 2


def test_a_revoked_grant_at_login(oauth_servers, authorized):
    auth, dovecot = oauth_servers
    tokens = authorized(auth, account="shared", user="gina")
    tokens.access_token()
    auth.revoke_all()
    with pytest.raises(AuthorizationExpired) as failure:
        session(dovecot, "gina", tokens)
    assert failure.value.message == "authorization expired; run 'espomail account authorize shared'"


def test_a_token_for_another_mailbox_is_refused(oauth_servers, authorized):
    auth, dovecot = oauth_servers
    tokens = authorized(auth, user="hank")
    with pytest.raises(MailServerError) as failure:
        session(dovecot, "ivan", tokens)
    assert "refused the OAuth2 access token (XOAUTH2) even after a refresh" in failure.value.message


def test_a_server_without_oauth_mechanisms(dovecot, authserver, authorized):
    tokens = authorized(authserver)
    with pytest.raises(MailServerError) as failure:
        session(dovecot, "alice", tokens)
    assert "offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER" in failure.value.message


def smtp_config(server, tokens, user="alice"):
    return smtp.SmtpConfig("support", server.host, server.port, "none", user, None, oauth=tokens)


def test_smtp_xoauth2_send(oauth_servers, oauth_smtp, authorized):
    auth, _dovecot = oauth_servers
    tokens = authorized(auth, user="alice")
    raw = build_message(subject="sent with a token", to="someone@example.org")
    smtp.send(smtp_config(oauth_smtp, tokens), TIMEOUT, "alice@example.com", ["someone@example.org"], raw)
    [received] = oauth_smtp.messages
    assert received.message["Subject"] == "sent with a token"
    assert oauth_smtp.logins == [("XOAUTH2", "alice")]


def test_smtp_refused_token_is_refreshed_once(oauth_servers, oauth_smtp, authorized):
    auth, _dovecot = oauth_servers
    tokens = authorized(auth, user="alice")
    tokens.access_token()
    auth.expire_access_tokens()
    smtp.check(smtp_config(oauth_smtp, tokens), TIMEOUT)
    assert oauth_smtp.refused == 1 and oauth_smtp.logins == [("XOAUTH2", "alice")]


def test_smtp_oauthbearer_only_server_and_wrong_user(oauth_servers, authorized):
    auth, _dovecot = oauth_servers
    tokens = authorized(auth, user="alice")
    with OAuthSMTP(auth.introspection_url, mechanisms=("OAUTHBEARER",)) as server:
        smtp.check(smtp_config(server, tokens), TIMEOUT)
        assert server.logins == [("OAUTHBEARER", "alice")]
        with pytest.raises(MailServerError) as failure:
            smtp.check(smtp_config(server, tokens, user="mallory"), TIMEOUT)
    assert "refused the OAuth2 access token (OAUTHBEARER) even after a refresh" in failure.value.message


def test_smtp_revoked_grant(oauth_servers, oauth_smtp, authorized):
    auth, _dovecot = oauth_servers
    tokens = authorized(auth, user="alice")
    auth.revoke_all()
    with pytest.raises(AuthorizationExpired):
        smtp.check(smtp_config(oauth_smtp, tokens), TIMEOUT)
