"""The test servers work: Dovecot (login, APPEND, read back) and the recording SMTP server."""

import smtplib

from espomail.testing.messages import build_message


def test_dovecot_login_append_and_read_back(dovecot, mailbox):
    user = mailbox()
    raw = build_message(subject="fixture check", message_id="<fixture@example.net>")
    dovecot.append(user, raw)
    with dovecot.client(user) as client:
        status = client.folder_status("INBOX", [b"MESSAGES", b"UIDVALIDITY"])
    assert status[b"MESSAGES"] == 1
    [fetched] = dovecot.fetch_all(user)
    assert fetched.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


def test_dovecot_folders_and_users_are_separate(dovecot, mailbox):
    first, second = mailbox(), mailbox()
    dovecot.append(first, build_message(subject="one"), folder="Archive")
    assert dovecot.message_count(first, "Archive") == 1
    assert dovecot.message_count(second) == 0


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
