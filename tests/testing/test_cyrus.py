"""The Cyrus fixture: its cache, its users, the legacy namespace, and what Cyrus does to mail."""

import os
import subprocess

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from espomail.mail.imap import ImapSession
from espomail.testing import cyrus as cyrus_module
from espomail.testing.cyrus import Cyrus
from espomail.testing.messages import build_message


def test_prepare_again_uses_the_cache(cyrus):
    binaries = cyrus_module.prepare()
    assert (binaries.root.parent / cyrus_module.READY).exists()
    for name in cyrus_module.PROGRAMS:
        assert os.access(binaries.program(name), os.X_OK), name
    version = subprocess.run(
        [binaries.program("master"), "-V"], capture_output=True, text=True, env={**os.environ, **binaries.env()}
    )
    assert version.stdout.startswith("cyrus-imapd 3")


def test_users_log_in_with_their_own_password_only(cyrus):
    cyrus.add_user("carol", password="carols-password")
    with cyrus.client("carol") as client:
        assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 0
    with IMAPClient(cyrus.host, cyrus.port, ssl=False, timeout=30) as client:
        with pytest.raises(LoginError):
            client.login("carol", "secret")  # refused after Cyrus's failedloginpause (3 s)


def test_cyrus_refuses_what_dovecot_accepts_and_masks_8bit_headers(cyrus):
    """Cyrus checks mail on APPEND (and LMTP delivery): no headers or a NUL byte is refused,
    8-bit bytes in headers become 'X' (munge8bit). espomail stores what the server hands out."""
    user = "strict"
    cyrus.add_user(user)
    with pytest.raises(IMAPClientError, match="invalid header"):
        cyrus.append(user, b"Just a line of text, no header at all\r\n\r\nbody\r\n")
    with pytest.raises(IMAPClientError, match="NUL"):
        cyrus.append(user, build_message(body="a \x00 byte\n"))
    cyrus.append(user, b"From: a@example.com\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nbody \xc3\xbc\r\n")
    [stored] = cyrus.fetch_all(user)
    assert stored == b"From: a@example.com\r\nSubject: GrXXXXe\r\n\r\nbody \xc3\xbc\r\n"


@pytest.fixture(scope="module")
def legacy_cyrus():
    with Cyrus(users=(), legacy_namespace=True) as server:
        yield server


def test_legacy_namespace_folders_are_under_inbox(legacy_cyrus):
    """Debian's stock imapd.conf (and older installations): '.' separator, folders INBOX.Name."""
    legacy_cyrus.add_user("dora")
    legacy_cyrus.append("dora", build_message(subject="in a subfolder"), folder="INBOX.Work")
    with pytest.raises(IMAPClientError):
        legacy_cyrus.append("dora", build_message(), folder="Work")  # no folder beside INBOX
    with ImapSession(legacy_cyrus.host, legacy_cyrus.port, "none", "dora", "secret", timeout=30) as imap:
        assert imap.list_folders() == ["INBOX", "INBOX.Work"]
        before = imap.status("INBOX.Work")
    assert before.messages == 1
    legacy_cyrus.recreate_folder("dora", "INBOX")
    assert legacy_cyrus.message_count("dora", "INBOX.Work") == 1  # the subfolder came back, mail kept


def test_stop_ends_master_and_its_children():
    server = Cyrus(users=("erin",))
    server.start()
    pid, base = server._master.pid, server.base
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert not base.exists()
