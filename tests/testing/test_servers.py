"""The test servers work: Dovecot and Cyrus (login, APPEND, read back) and the recording SMTP server."""

import smtplib

from espomail.testing.messages import build_message


def test_imap_server_login_append_and_read_back(imap_server, mailbox):
    user = mailbox()
    raw = build_message(subject="fixture check", message_id="<fixture@example.net>")
    imap_server.append(user, raw)
    with imap_server.client(user) as client:
        status = client.folder_status("INBOX", [b"MESSAGES", b"UIDVALIDITY"])
    assert status[b"MESSAGES"] == 1
    [fetched] = imap_server.fetch_all(user)
    assert fetched.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


def test_imap_server_folders_and_users_are_separate(imap_server, mailbox):
    first, second = mailbox(), mailbox()
    imap_server.append(first, build_message(subject="one"), folder="Archive")
    assert imap_server.message_count(first, "Archive") == 1
    assert imap_server.message_count(second) == 0


def test_imap_server_recreated_folder_has_a_new_uidvalidity(imap_server, mailbox):
    user = mailbox()
    imap_server.append(user, build_message(subject="inbox"))
    imap_server.append(user, build_message(subject="kept"), folder="Archive")
    for folder in ("Work", "INBOX"):
        imap_server.append(user, build_message(), folder=folder)
        with imap_server.client(user) as client:
            before = client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"]
        imap_server.recreate_folder(user, folder)
        with imap_server.client(user) as client:
            after = client.folder_status(folder, [b"UIDVALIDITY", b"MESSAGES"])
        assert after[b"UIDVALIDITY"] != before and after[b"MESSAGES"] == 0, folder
    assert imap_server.message_count(user, "Archive") == 1


def test_smtp_records_a_message(smtp):
    raw = build_message(subject="smtp check", to="someone@example.org")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.sendmail("sender@example.com", ["someone@example.org"], raw)
    [received] = smtp.messages
    assert received.rcpt_tos == ["someone@example.org"]
    assert received.message["Subject"] == "smtp check"


def test_smtp_can_refuse_a_recipient(smtp):
    smtp.refuse.add("dead@example.org")
    raw = build_message(to="dead@example.org")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        try:
            client.sendmail("sender@example.com", ["dead@example.org"], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            assert "dead@example.org" in exc.recipients
        else:
            raise AssertionError("the recipient was not refused")
    assert smtp.messages == []
