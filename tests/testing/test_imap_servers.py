"""espomail's IMAP session reads each server's answers alike (docs/imap-servers.md).

Dovecot and Cyrus differ in the order of FETCH items (Cyrus puts FLAGS before UID), in the
INTERNALDATE day (Cyrus pads it with a space: " 1-May-2020"), in the extra response codes
of SELECT, and in how UIDVALIDITY changes; these tests pin what espomail gets from both.
A refused login on both is tested through ``espomail fetch`` in tests/cli/test_fetch.py.
"""

import datetime as dt

import pytest

from espomail.errors import MailServerError
from espomail.mail.imap import ImapSession, internaldate
from espomail.testing.dovecot import PASSWORD
from espomail.testing.messages import build_message

OLD = dt.datetime(2020, 5, 1, 8, 30, tzinfo=dt.UTC)


def session(server, user):
    return ImapSession(server.host, server.port, "none", user, PASSWORD, timeout=30)


@pytest.fixture
def three_messages(imap_server, mailbox):
    """A mailbox with an old message, one without Message-ID and a big one; returns the user."""
    user = mailbox("answers")
    imap_server.append(user, build_message(subject="old", message_id="<old@example.net>", date=OLD), when=OLD)
    imap_server.append(user, build_message(subject="no id", message_id=None))
    imap_server.append(user, build_message(subject="big", message_id="<big@example.net>", body="z" * 50_000))
    return user


def test_status_select_and_searches(imap_server, three_messages):
    with session(imap_server, three_messages) as imap:
        status = imap.status("INBOX")
        assert (status.messages, status.uidnext) == (3, 4)
        assert imap.select("INBOX", readonly=True) == status
        assert imap.uids_above(0) == [1, 2, 3]
        assert imap.uids_above(2) == [3]
        assert imap.uids_above(3) == []  # "UID 4:*" matches the last message; it is filtered out
        assert imap.uids_since(dt.date(2024, 1, 1)) == [2, 3]


def test_sizes_and_internaldates(imap_server, three_messages):
    with session(imap_server, three_messages) as imap:
        imap.select("INBOX", readonly=True)
        sizes = imap.sizes([1, 2, 3])
    assert set(sizes) == {1, 2, 3}
    assert sizes[3][0] > 50_000 > sizes[1][0] > 0
    assert internaldate(sizes[1][1]) == OLD
    assert internaldate(sizes[2][1]) > OLD


def test_message_ids_and_downloads(imap_server, three_messages):
    with session(imap_server, three_messages) as imap:
        imap.select("INBOX", readonly=True)
        ids = imap.message_ids([1, 2, 3])
        fetched = {m.uid: m for m in imap.download([1, 2, 3], headers_only={3})}
    assert b"<old@example.net>" in ids[1] and b"Message-ID" not in ids[2] and b"<big@example.net>" in ids[3]
    assert fetched[1].raw.startswith(b"From: ") and b"\r\n\r\n" in fetched[1].raw
    assert not fetched[1].truncated
    assert fetched[3].truncated and fetched[3].raw.endswith(b"\r\n\r\n") and b"zzz" not in fetched[3].raw
    assert fetched[1].raw == imap_server.fetch_all(three_messages)[0]


def test_download_without_peek_sets_seen_and_peek_does_not(imap_server, three_messages):
    with session(imap_server, three_messages) as imap:
        imap.select("INBOX", readonly=False)
        assert [m.uid for m in imap.download([1], headers_only=set())] == [1]
        assert [m.uid for m in imap.download([2], headers_only=set(), peek=False)] == [2]
    with imap_server.client(three_messages) as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags([1, 2])
    assert b"\\Seen" not in flags[1] and b"\\Seen" in flags[2]


def test_append_creates_the_folder(imap_server, mailbox):
    user = mailbox("sent")
    with session(imap_server, user) as imap:
        imap.append("Sent", build_message(subject="copy"))
        assert "Sent" in imap.list_folders()
    assert imap_server.message_count(user, "Sent") == 1


def test_a_missing_folder_is_one_clear_error(imap_server, mailbox):
    with session(imap_server, mailbox("missing")) as imap:
        with pytest.raises(MailServerError, match="folder 'Nowhere'"):
            imap.status("Nowhere")
