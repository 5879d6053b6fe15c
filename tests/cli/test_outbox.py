"""The outbox (issue 12 items 1, 7, 8, 9; issue 17): every outgoing email fails alone, is
claimed before it is sent, counted, retried with backoff and given up after send_retries;
auto-replies that cannot be built are failed auto-replies; sent replies go to --store-sent."""

from __future__ import annotations

import datetime as dt
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from espomail.testing.messages import build_message
from espomail.testing.smtp import RecordingSMTP

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
MARILU = CORPUS / "spamassassin" / "nice" / "unicode1.eml"  # From: Marilù.Gioffré@esempio-università.it


# -- helpers --------------------------------------------------------------------------------------


def query(db, sql, params=()):
    return db.rows(sql, params)


def outgoing(db):
    """Every outgoing email with its outbox row (if any), by id."""
    return query(
        db,
        """SELECT e.id, e.status, e.send_attempts, e.last_error, e.message_id, o.next_attempt_at, o.gave_up_at,
           o.claim_holder FROM emails e LEFT JOIN outbox o ON o.email_id = e.id
           WHERE e.status IN ('Sending', 'Sent', 'Failed') ORDER BY e.id""",
    )


def make_due(db):
    """Time travel: every planned attempt is due now."""
    db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE next_attempt_at IS NOT NULL")


def fetch(espomail, *args):
    result = espomail("fetch", "--json", *args)
    assert result.exit_code == 0, result
    assert "Traceback" not in result.stderr
    return result.json


def by_name(summary, name):
    return next(a for a in summary["accounts"] if a["name"] == name)


@pytest.fixture
def reply_account(espomail, group_account, tmp_path):
    """``reply_account(server, name, *extra)``: a group account with auto-reply through ``server``."""
    body = tmp_path / "ack.txt"
    body.write_text("Dear {sender_name},\nwe got your message '{subject}'.\n")

    def make(server, name="support", *extra):
        _, box = group_account(
            name,
            "--auto-reply",
            "--reply-subject",
            "We got it: {subject}",
            "--reply-body-file",
            body,
            "--smtp-host",
            server.host,
            "--smtp-port",
            server.port,
            "--smtp-security",
            "none",
            *extra,
        )
        return box

    return make


@pytest.fixture
def other_account(group_account, dovecot):
    """A second account with mail waiting, to prove a later fetch of it is unharmed."""
    _, box = group_account("other")
    dovecot.append(box, build_message(from_="someone@example.org", to="other@example.com", subject="for other"))
    return box


# -- item 1: one outgoing email never stops a later fetch -------------------------------------------


def test_international_sender_reply_fails_alone_and_other_accounts_are_fetched(
    espomail, dovecot, reply_account, other_account, smtp, db, monkeypatch
):
    monkeypatch.setenv("ESPOMAIL_SIDE_EFFECTS_MAX_AGE_DAYS", "100000")  # the corpus message is from 2015
    box = reply_account(smtp)  # RecordingSMTP without SMTPUTF8
    dovecot.append(box, MARILU.read_bytes())
    summary = espomail("fetch", "--account", "support", "--json")
    assert summary.exit_code == 0, summary
    support = by_name(summary.json, "support")
    assert (support["new"], support["auto_replies"], support["auto_replies_failed"]) == (1, 0, 1)
    [reply] = outgoing(db)
    assert reply["status"] == "Failed" and reply["send_attempts"] == 1
    assert "does not support SMTPUTF8" in reply["last_error"] and "Marilù.Gioffré" in reply["last_error"]
    assert reply["next_attempt_at"] is None and reply["gave_up_at"]  # permanent: no retry
    assert smtp.messages == []
    # The next runs fetch the other account, and do not try the reply again.
    summary = fetch(espomail, "--account", "other")
    assert by_name(summary, "other")["new"] == 1
    make_due(db)
    fetch(espomail)
    assert outgoing(db)[0]["send_attempts"] == 1


def test_international_sender_reply_goes_out_with_smtputf8(espomail, dovecot, reply_account, db, monkeypatch):
    monkeypatch.setenv("ESPOMAIL_SIDE_EFFECTS_MAX_AGE_DAYS", "100000")
    with RecordingSMTP(smtputf8=True) as server:
        box = reply_account(server)
        dovecot.append(box, MARILU.read_bytes())
        summary = fetch(espomail)
        assert by_name(summary, "support")["auto_replies"] == 1
        [sent] = server.messages
    assert sent.rcpt_tos == ["Marilù.Gioffré@xn--esempio-universit-4ob.it"]
    assert sent.message["To"] == "Marilù.Gioffré@xn--esempio-universit-4ob.it"
    assert sent.message["Subject"].startswith("We got it: Doma")
    [reply] = outgoing(db)
    assert (reply["status"], reply["send_attempts"], reply["next_attempt_at"]) == ("Sent", 1, None)


@pytest.mark.parametrize(
    "error",
    [
        UnicodeEncodeError("ascii", "Marilù", 5, 6, "ordinal not in range(128)"),
        ValueError("Header values may not contain linefeed or carriage return characters"),
        smtplib.SMTPException("weird server"),
        TimeoutError("timed out"),
        RuntimeError("a bug"),
        KeyError("to_list"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_any_exception_while_sending_is_recorded_and_the_run_goes_on(
    espomail, dovecot, reply_account, other_account, smtp, db, monkeypatch, error
):
    from espomail.mail import smtp as smtp_module

    real_send = smtp_module.send

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(smtp_module, "send", broken)
    box = reply_account(smtp)
    dovecot.append(box, build_message(from_="jane@customer.example"))
    summary = fetch(espomail)
    assert by_name(summary, "other")["new"] == 1 and by_name(summary, "support")["auto_replies_failed"] == 1
    [reply] = outgoing(db)
    assert reply["status"] == "Failed" and reply["send_attempts"] == 1
    assert reply["last_error"].startswith(f"unexpected {type(error).__name__}")
    assert reply["next_attempt_at"]  # retried later
    dovecot.append(other_account, build_message(to="other@example.com", subject="second"))
    make_due(db)
    fetch(espomail)  # fails again, the other account is still fetched
    assert outgoing(db)[0]["send_attempts"] == 2
    assert espomail("email", "list", "--account", "other", "--json").json[0]["subject"] == "second"
    monkeypatch.setattr(smtp_module, "send", real_send)
    make_due(db)
    fetch(espomail)
    assert [r["status"] for r in outgoing(db)] == ["Sent"] and len(smtp.messages) == 1


def test_an_unreadable_stored_source_fails_that_email_only(
    espomail, dovecot, reply_account, other_account, smtp, db, monkeypatch
):
    from espomail.store import emails as emails_q

    box = reply_account(smtp)
    smtp.stop()
    dovecot.append(box, build_message(from_="jane@customer.example"))
    fetch(espomail)
    smtp.start()

    def lost(store, email_id):
        raise FileNotFoundError(2, "No such file or directory", "raw/pack-000001")

    monkeypatch.setattr(emails_q, "raw_of", lost)
    dovecot.append(other_account, build_message(to="other@example.com", subject="second"))
    make_due(db)
    summary = fetch(espomail)
    assert by_name(summary, "other")["new"] == 1
    [reply] = outgoing(db)
    assert (reply["status"], reply["send_attempts"]) == ("Failed", 2)
    assert reply["last_error"].startswith("unexpected FileNotFoundError") and smtp.messages == []


# -- item 9: bounded retries with backoff, given up, resend ---------------------------------------------


def test_smtp_down_for_three_fetches_spends_one_attempt_then_backs_off(espomail, dovecot, reply_account, smtp, db):
    box = reply_account(smtp)
    smtp.stop()
    dovecot.append(box, build_message(from_="jane@customer.example"))
    for _ in range(3):
        fetch(espomail)
    [reply] = outgoing(db)
    assert (reply["status"], reply["send_attempts"]) == ("Failed", 1)
    assert _backoff_of(espomail, reply) in (60, 61)
    make_due(db)
    fetch(espomail)
    fetch(espomail)
    [reply] = outgoing(db)
    assert reply["send_attempts"] == 2
    assert _backoff_of(espomail, reply) in (120, 121)  # 1, 2, 4 ... minutes
    make_due(db)
    fetch(espomail)
    [reply] = outgoing(db)
    assert reply["send_attempts"] == 3 and reply["next_attempt_at"] is None and reply["gave_up_at"]
    events = espomail("email", "explain", reply["id"], "--json").json["events"]
    assert "given up after 3 attempt(s)" in events[-1]["detail"]
    make_due(db)
    fetch(espomail)
    assert outgoing(db)[0]["send_attempts"] == 3  # stays Failed for good
    smtp.start()
    fetch(espomail)
    assert smtp.messages == []
    result = espomail("email", "resend", reply["id"])
    assert result.exit_code == 0, result
    assert result.stderr.strip() == f"Sent email {reply['id']} to jane@customer.example"
    [sent] = smtp.messages
    assert sent.message["Message-ID"] == reply["message_id"]  # the stored source, as it was
    [reply] = outgoing(db)
    assert (reply["status"], reply["send_attempts"], reply["next_attempt_at"]) == ("Sent", 1, None)


def _backoff_of(espomail, reply) -> float:
    """Seconds from the last failed attempt (its event) to the next attempt."""
    events = espomail("email", "explain", reply["id"], "--json").json["events"]
    failed_at = [e["at"] for e in events if e["step"] == "send"][-1]
    return (_parse(reply["next_attempt_at"]) - _parse(failed_at)).total_seconds()


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")


def test_backoff_doubles_up_to_an_hour():
    from espomail.services.outbox import backoff_s

    assert [backoff_s(n) for n in (1, 2, 3, 4, 5, 6, 7, 8, 30)] == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_send_retries_setting_bounds_the_attempts(espomail, dovecot, reply_account, smtp, db, monkeypatch):
    monkeypatch.setenv("ESPOMAIL_SEND_RETRIES", "5")
    box = reply_account(smtp)
    smtp.stop()
    dovecot.append(box, build_message(from_="jane@customer.example"))
    for _ in range(7):
        fetch(espomail)
        make_due(db)
    [reply] = outgoing(db)
    assert reply["send_attempts"] == 5 and reply["gave_up_at"]


def test_a_permanent_refusal_is_not_retried_a_temporary_one_is(espomail, dovecot, reply_account, smtp, db):
    box = reply_account(smtp)
    smtp.refuse.add("gone@customer.example")
    dovecot.append(box, build_message(from_="gone@customer.example"))
    fetch(espomail)
    [reply] = outgoing(db)
    assert reply["status"] == "Failed" and "550" in reply["last_error"] and reply["gave_up_at"]
    from espomail.testing.smtp_faults import Fault, FaultySMTP

    with FaultySMTP(plan=[Fault.TEMP_RCPT, Fault.TEMP_DATA]) as faulty:
        espomail("account", "update", "support", "--smtp-port", faulty.port)
        dovecot.append(box, build_message(from_="later@customer.example"))
        fetch(espomail)
        make_due(db)
        fetch(espomail)
        make_due(db)
        fetch(espomail)
        second = outgoing(db)[1]
        assert (second["status"], second["send_attempts"]) == ("Sent", 3)
        assert [r.rcpt_tos for r in faulty.accepted] == [["later@customer.example"]]


# -- item 8: claims; overlapping runs send each reply once ---------------------------------------------


def _fetch_process(env=None):
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "espomail", "fetch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def slow_smtp():
    with RecordingSMTP(data_delay_s=3) as server:
        yield server


def test_two_overlapping_fetches_send_a_reply_once(espomail, dovecot, reply_account, slow_smtp, db):
    box = reply_account(slow_smtp)
    dovecot.append(box, build_message(from_="jane@customer.example"))
    first = _fetch_process()
    assert slow_smtp.data_started.wait(60), first.communicate()
    # The first run is inside DATA (the server answers in 3 s): the reply is claimed.
    [reply] = outgoing(db)
    assert reply["status"] == "Sending" and reply["claim_holder"] and reply["send_attempts"] == 1
    second = _fetch_process()
    assert second.wait(120) == 0, second.communicate()
    assert first.wait(120) == 0, first.communicate()
    assert len(slow_smtp.messages) == 1
    [reply] = outgoing(db)
    assert (reply["status"], reply["send_attempts"], reply["claim_holder"]) == ("Sent", 1, None)


@pytest.mark.slow
def test_overlapping_fetches_started_together_never_double_a_reply(espomail, dovecot, reply_account, slow_smtp, db):
    box = reply_account(slow_smtp)
    for round_ in range(3):
        dovecot.append(box, build_message(from_=f"c{round_}@customer.example"))
        runs = [_fetch_process() for _ in range(3)]
        assert [run.wait(120) for run in runs] == [0, 0, 0]
    ids = [m.message["Message-ID"] for m in slow_smtp.messages]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert [(r["status"], r["send_attempts"]) for r in outgoing(db)] == [("Sent", 1)] * 3


def test_kill_9_during_data_resends_with_the_same_message_id(espomail, dovecot, reply_account, slow_smtp, db):
    box = reply_account(slow_smtp)
    dovecot.append(box, build_message(from_="jane@customer.example"))
    first = _fetch_process()
    assert slow_smtp.data_started.wait(60)
    first.kill()  # kill -9 after the server took the data, before it answered (and before 'Sent')
    first.wait()
    [reply] = outgoing(db)
    assert reply["status"] == "Sending" and reply["claim_holder"]  # the dead run's claim
    fetch(espomail)  # this host's dead claim is taken back at once, not after the stale timeout
    ids = [m.message["Message-ID"] for m in slow_smtp.messages]
    assert ids == [reply["message_id"], reply["message_id"]]  # sent twice, receivers de-duplicate
    [reply] = outgoing(db)
    assert (reply["status"], reply["send_attempts"]) == ("Sent", 2)


def test_a_live_claim_is_respected_and_a_stale_one_taken_over(espomail, dovecot, reply_account, smtp, db):
    box = reply_account(smtp)
    smtp.stop()
    dovecot.append(box, build_message(from_="jane@customer.example"))
    fetch(espomail)
    smtp.start()
    make_due(db)
    now = dt.datetime.now(dt.UTC)
    # another host is sending it right now
    db.execute("UPDATE outbox SET claim_holder = 'otherhost:1:x', claimed_at = ?", [_iso(now)])
    fetch(espomail)
    assert smtp.messages == []
    assert espomail("email", "resend", outgoing(db)[0]["id"]).exit_code == 1
    # that host died an hour ago
    db.execute("UPDATE outbox SET claimed_at = ?", [_iso(now - dt.timedelta(hours=1))])
    fetch(espomail)
    assert len(smtp.messages) == 1 and outgoing(db)[0]["status"] == "Sent"


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- item 7: generated headers never fail --------------------------------------------------------------

HOSTILE_SUBJECTS = {
    "u2028": "=?utf-8?q?Order=E2=80=A8Bcc:_victim@evil.example?=",
    "u0085": "=?utf-8?q?Order=C2=85Bcc:_victim@evil.example?=",
    "vt": "=?utf-8?q?Order=0BBcc:_victim@evil.example?=",
    "ff": "=?utf-8?q?Order=0CBcc:_victim@evil.example?=",
    "crlf": "=?utf-8?q?Order=0D=0ABcc:_victim@evil.example?=",
}


@pytest.mark.parametrize("subject", HOSTILE_SUBJECTS.values(), ids=HOSTILE_SUBJECTS.keys())
def test_line_breaks_in_subjects_and_names_never_fail_a_reply(
    espomail, dovecot, group_account, smtp, tmp_path, subject
):
    espomail("team", "add", "support")
    espomail("role", "add", "agent", "--email-read", "own")
    espomail("user", "add", "u1", "--email", "u1@example.com", "--team", "support", "--role", "agent")
    body = tmp_path / "ack.txt"
    body.write_text("Dear {sender_name}, about {subject}: case {case_number}.\n")
    _, box = group_account(
        "support",
        "--team",
        "support",
        "--create-case",
        "--target-team",
        "support",
        "--distribution",
        "direct",
        "--assign-user",
        "u1",
        "--auto-reply",
        "--reply-subject",
        "Re: {subject} ({sender_name})",
        "--reply-body-file",
        body,
        "--smtp-host",
        smtp.host,
        "--smtp-port",
        smtp.port,
        "--smtp-security",
        "none",
    )
    raw = (
        "From: =?utf-8?q?Jane=0D=0ABcc=3A_x=40evil.example_=E2=80=A8Doe?= <jane@customer.example>\r\n"
        "To: support@example.com\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {dt.datetime.now(dt.UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        "Message-ID: <hostile@customer.example>\r\n\r\nHello\r\n"
    ).encode()
    dovecot.append(box, raw)
    summary = fetch(espomail)
    assert by_name(summary, "support")["cases_created"] == 1 and by_name(summary, "support")["auto_replies"] == 1
    [sent] = smtp.messages
    reply = sent.message
    assert sent.rcpt_tos == ["jane@customer.example"]
    assert reply["Bcc"] is None and "evil" not in str(reply.keys())
    assert reply["Subject"].strip().startswith("[#1] Re: Order") and "\n" not in reply["Subject"]
    assert b"\r\nBcc" not in sent.data.split(b"\r\n\r\n")[0]
    emails = espomail("email", "list", "--json").json
    incoming = next(e for e in emails if e["status"] == "Archived")
    assert incoming["state"] == "processed" and incoming["parent"] == {"type": "case", "id": 1}
    stored_reply = next(e for e in emails if e["status"] == "Sent")
    assert not any(ch in stored_reply["subject"] for ch in "\r\n\x0b\x0c\x85\u2028")
    inbox = espomail("--as", "u1", "email", "list", "--json").json
    assert incoming["id"] in [e["id"] for e in inbox]


def test_a_reply_that_cannot_be_built_is_a_failed_auto_reply(espomail, dovecot, reply_account, smtp, monkeypatch):
    from espomail.mail import compose

    def broken(*args, **kwargs):
        raise ValueError("Header values may not contain linefeed or carriage return characters")

    monkeypatch.setattr(compose, "build", broken)
    espomail("team", "add", "support")
    espomail("role", "add", "agent", "--email-read", "own")
    espomail("user", "add", "u1", "--email", "u1@example.com", "--team", "support", "--role", "agent")
    box = reply_account(smtp, "support", "--team", "support", "--create-case")
    dovecot.append(box, build_message(from_="jane@customer.example", subject="Printer"))
    result = espomail("fetch", "--json")
    assert result.exit_code == 0 and "Traceback" not in result.stderr
    support = by_name(result.json, "support")
    assert (support["new"], support["failed"], support["cases_created"]) == (1, 0, 1)
    assert (support["auto_replies"], support["auto_replies_failed"]) == (0, 1)
    [email] = espomail("email", "list", "--json").json
    assert email["state"] == "processed" and email["parent"] == {"type": "case", "id": 1}
    events = espomail("email", "explain", email["id"], "--json").json["events"]
    failed = [e for e in events if e["step"] == "auto-reply"]
    assert failed[0]["decision"] == "failed" and "could not be built: ValueError" in failed[0]["detail"]
    assert [e["id"] for e in espomail("--as", "u1", "email", "list", "--json").json] == [email["id"]]
    assert smtp.messages == []


# -- issue 17: the Sent folder --------------------------------------------------------------------------


def test_auto_replies_are_stored_in_the_sent_folder(espomail, dovecot, reply_account, smtp):
    box = reply_account(smtp, "support", "--store-sent", "Sent")
    dovecot.append(box, [build_message(from_=f"c{i}@customer.example") for i in range(3)])
    fetch(espomail)
    assert len(smtp.messages) == 3
    assert dovecot.message_count(box, "Sent") == 3
    stored = {raw.split(b"Message-ID: ")[1].split(b"\r\n")[0] for raw in dovecot.fetch_all(box, "Sent")}
    assert stored == {m.message["Message-ID"].encode() for m in smtp.messages}
    reply = next(e for e in espomail("email", "list", "--json").json if e["status"] == "Sent")
    events = espomail("email", "explain", reply["id"], "--json").json["events"]
    assert any(e["step"] == "store-sent" and e["decision"] == "stored" for e in events)


def test_a_failing_sent_folder_is_logged_on_the_email_and_harms_nothing(
    espomail, dovecot, reply_account, smtp, monkeypatch
):
    from espomail.errors import MailServerError
    from espomail.mail.imap import ImapSession

    def refuse(self, folder, raw, seen=True):
        raise MailServerError("IMAP server refused APPEND: mailbox is full")

    monkeypatch.setattr(ImapSession, "append", refuse)
    box = reply_account(smtp, "support", "--store-sent", "Sent")
    dovecot.append(box, build_message(from_="jane@customer.example"))
    summary = fetch(espomail)
    assert by_name(summary, "support")["auto_replies"] == 1 and len(smtp.messages) == 1
    reply = next(e for e in espomail("email", "list", "--json").json if e["status"] == "Sent")
    events = espomail("email", "explain", reply["id"], "--json").json["events"]
    [copy] = [e for e in events if e["step"] == "store-sent"]
    assert copy["decision"] == "failed" and "mailbox is full" in copy["detail"]


# -- status: outbox_health -------------------------------------------------------------------------------


def test_outbox_health_counts_what_is_stuck(espomail, dovecot, reply_account, smtp, db):
    from espomail.config import load_settings
    from espomail.services.outbox import outbox_health
    from espomail.store.db import open_store

    box = reply_account(smtp)
    smtp.stop()
    dovecot.append(box, [build_message(from_=f"c{i}@customer.example") for i in range(3)])
    fetch(espomail)
    settings = load_settings()

    def health():
        store = open_store(load_settings().database)
        try:
            return outbox_health(store, settings).as_dict()
        finally:
            store.close()

    # The first reply failed: the server is down, so this run left the other two untried.
    assert health() == {
        "queued": 2,
        "sending": 0,
        "retrying": 1,
        "overdue": 0,
        "failed_for_good": 0,
        "failed_for_good_recent": 0,
        "oldest_overdue_at": None,
        "stuck": 0,
    }
    overdue, given_up, claimed = [r["id"] for r in outgoing(db)]
    db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE email_id = ?", [overdue])
    db.execute(
        "UPDATE outbox SET next_attempt_at = NULL, gave_up_at = '2001-01-01T00:00:00Z' WHERE email_id = ?",
        [given_up],
    )
    db.execute("UPDATE outbox SET claim_holder = 'h:1:x', claimed_at = ? WHERE email_id = ?", [_iso_now(), claimed])
    counts = health()
    assert (counts["queued"], counts["retrying"], counts["overdue"]) == (0, 1, 1)
    assert (counts["failed_for_good"], counts["sending"]) == (1, 1)
    assert (counts["failed_for_good_recent"], counts["stuck"]) == (0, 2)
    assert counts["oldest_overdue_at"] == "2000-01-01T00:00:00Z"


def _iso_now() -> str:
    return _iso(dt.datetime.now(dt.UTC))


# -- the migration ---------------------------------------------------------------------------------------


def test_unsent_mail_of_an_older_store_enters_the_outbox(tmp_path, monkeypatch):
    from espomail.store import migrations
    from espomail.store.db import open_store

    path = tmp_path / "old.db"
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        _old_store(path, open_store)
    store = open_store(path)
    entries = {
        r["email_id"]: (r["next_attempt_at"], r["gave_up_at"]) for r in store.rows("SELECT * FROM outbox ORDER BY 1")
    }
    store.close()
    stamp = "2024-01-01T00:00:00Z"
    # System mail with tries left is due; used-up and users' failed sends wait for a resend.
    assert entries == {1: (stamp, None), 2: (None, stamp), 3: (stamp, None), 4: (None, stamp)}


def _old_store(path, open_store):
    store = open_store(path)
    stamp = "2024-01-01T00:00:00Z"
    rows = [(1, "Failed", 1, 1), (2, "Failed", 1, 3), (3, "Sending", 1, 0), (4, "Failed", 0, 1), (5, "Sent", 1, 1)]
    for email_id, status, is_system, attempts in rows:
        store.insert(
            "emails",
            {
                "id": email_id,
                "message_id": f"<m{email_id}@x>",
                "status": status,
                "is_system": is_system,
                "send_attempts": attempts,
                "created_at": stamp,
                "updated_at": stamp,
            },
        )
    store.close()
