"""A process killed around the save of a rotated refresh token: the account still works afterwards.

A child process refreshes the access token and is killed (os._exit) at the worst moments:
the provider has rotated the refresh token but nothing is written yet, or the new tokens are
written but the access token was never used. The next process must log in to IMAP. With the
provider's grace (the old refresh token stays valid until the new one is first used, as
Microsoft and Okta do) both cases work; with a provider that kills the old token at once the
first case cannot be saved by any client, and the error is the actionable one.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from espomail.mail.imap import ImapSession
from espomail.oauth.errors import AuthorizationExpired
from espomail.oauth.storage import FileTokenStore
from espomail.oauth.tokens import TokenManager

CHILD = textwrap.dedent(
    """
    import os, sys
    from espomail.oauth.config import OAuthConfig
    from espomail.oauth.storage import FileTokenStore
    from espomail.oauth.tokens import TokenManager

    config = OAuthConfig.from_json(sys.argv[1])
    real_save = FileTokenStore.save

    def killed_before_writing(self, token):
        os._exit(9)

    def killed_after_writing(self, token):
        real_save(self, token)
        os._exit(9)

    FileTokenStore.save = killed_before_writing if sys.argv[2] == "before" else killed_after_writing
    TokenManager.for_account(config, "support", 10).access_token()
    sys.exit("the child was not killed")
    """
)


def run_killed_child(config, when: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, config.to_json(), when], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 9, child.stderr


def login(dovecot, user, config) -> None:
    tokens = TokenManager.for_account(config, "support", 10)
    with ImapSession(dovecot.host, dovecot.port, "none", user, tokens, 10) as imap:
        imap.select("INBOX", readonly=True)


@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_around_the_save_the_account_still_works(oauth_servers, oauth_config, authorized, when):
    auth, dovecot = oauth_servers
    authorized(auth, user="kim")
    config = oauth_config(auth)
    saved = FileTokenStore(config.token_file, "support").load()
    refreshes = auth.refresh_count()
    run_killed_child(config, when)
    assert auth.refresh_count() == refreshes + 1  # the provider rotated the refresh token
    after = FileTokenStore(config.token_file, "support").load()
    assert (after == saved) == (when == "before")  # old tokens, or the complete new ones: never half a file
    login(dovecot, "kim", config)


def test_without_the_providers_grace_a_lost_rotation_needs_a_new_authorization(oauth_servers, oauth_config, authorized):
    auth, dovecot = oauth_servers
    auth.rotation_grace = False
    authorized(auth, user="lee")
    config = oauth_config(auth)
    run_killed_child(config, "before")
    with pytest.raises(AuthorizationExpired) as failure:
        login(dovecot, "lee", config)
    assert failure.value.message == "authorization expired; run 'espomail account authorize support'"
