"""Assignment notices (issue 17 mission gap): a user who opts in is mailed, through the
system sender, when a case or an email is assigned to them; end to end with the private
Dovecot and the recording SMTP server (docs/notifications.md)."""

from __future__ import annotations

import datetime as dt

import pytest

from espomail.testing.messages import build_message


def query(db, sql, params=()):
    return db.rows(sql, params)


def outgoing(db):
    return query(
        db,
        """SELECT e.id, e.status, e.send_attempts, e.subject, e.to_list, o.next_attempt_at, o.gave_up_at
           FROM emails e LEFT JOIN outbox o ON o.email_id = e.id
           WHERE e.status IN ('Sending', 'Sent', 'Failed') ORDER BY e.id""",
    )


def make_due(db):
    db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE next_attempt_at IS NOT NULL")


def fetch(espomail):
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    assert "Traceback" not in result.stderr
    return result.json


def flag(espomail, username):
    return espomail("user", "show", username, "--json").json["email_notifications"]


def trail(espomail, email_id, step="assign-notice"):
    events = espomail("email", "explain", email_id, "--json").json["events"]
    return [e for e in events if e["step"] == step]


@pytest.fixture
def agents(espomail):
    """Team support: u1 (opted in), u2 (not), both agents."""
    espomail("team", "add", "support", "--position", "agent")
    for name, extra in (("u1", ["--email-notifications"]), ("u2", [])):
        added = espomail("user", "add", name, "--name", f"Agent {name}", "--email", f"{name}@example.com",
                         "--team", "support:agent", *extra)  # fmt: skip
        assert added.exit_code == 0, added


@pytest.fixture
def desk(espomail, group_account, smtp, agents):
    """A case-creating round-robin group account with SMTP, and (``desk.system()``) it as the system sender."""

    def make(*extra):
        _, box = group_account(
            "support", "--team", "support", "--create-case", "--distribution", "round-robin", "--target-team",
            "support", "--smtp-host", smtp.host, "--smtp-port", smtp.port, "--smtp-security", "none", *extra,
        )  # fmt: skip
        return box

    return make


@pytest.fixture
def system(espomail):
    def make():
        result = espomail("outbound", "set", "--address", "support@example.com", "--name", "Support Desk")
        assert result.exit_code == 0, result

    return make


# -- the flag ----------------------------------------------------------------------------------


def test_opt_in_is_off_by_default_and_shown(espomail):
    assert espomail("user", "add", "ann", "--email", "ann@example.com").exit_code == 0
    assert flag(espomail, "ann") is False
    assert espomail("user", "update", "ann", "--email-notifications").exit_code == 0
    assert flag(espomail, "ann") is True
    [listed] = espomail("user", "list", "--json").json
    assert listed["email_notifications"] is True
    assert espomail("user", "update", "ann", "--no-email-notifications").exit_code == 0
    assert flag(espomail, "ann") is False
    assert espomail("user", "add", "bo", "--email", "bo@example.com", "--email-notifications").exit_code == 0
    assert flag(espomail, "bo") is True


def test_a_user_sets_their_own_flag_only_and_a_rejected_update_changes_nothing(espomail, agents):
    own = espomail("--as", "u2", "user", "update", "u2", "--email-notifications")
    assert own.exit_code == 0, own
    assert flag(espomail, "u2") is True
    other = espomail("--as", "u2", "user", "update", "u1", "--no-email-notifications")
    assert other.exit_code == 4 and other.stderr.startswith("Error: ") and other.stdout == ""
    more = espomail("--as", "u2", "user", "update", "u2", "--no-email-notifications", "--admin")
    assert more.exit_code == 4
    unknown = espomail("user", "update", "u1", "--no-email-notifications", "--add-team", "nosuch")
    assert unknown.exit_code == 3 and unknown.stderr.startswith("Error: no team named 'nosuch'")
    assert (flag(espomail, "u1"), flag(espomail, "u2")) == (True, True)  # nothing changed by the refusals
    show = espomail("user", "show", "u2", "--json").json
    assert show["is_admin"] is False


# -- Email-to-Case distribution during fetch ----------------------------------------------------------


def test_round_robin_mails_the_assignee_who_opted_in_only(espomail, dovecot, desk, system, smtp, db):
    box = desk()
    system()
    raw = build_message(from_="Jane Doe <jane@customer.example>", subject="PLACEHOLDER")
    dovecot.append(box, raw.replace(b"PLACEHOLDER", b"=?utf-8?q?printer=0D=0Aon_fire?="))  # a CR LF in the subject
    summary = fetch(espomail)
    [account] = summary["accounts"]
    assert (account["cases_created"], account["auto_replies"], account["auto_replies_failed"]) == (1, 0, 0)
    [sent] = smtp.messages
    assert sent.rcpt_tos == ["u1@example.com"] and sent.mail_from == "support@example.com"
    message = sent.message
    assert " ".join(message["Subject"].split()) == "[#1] Assigned to you: printer on fire"
    assert b"\non fire" not in sent.data  # the customer's CR LF started no header line
    assert message["From"] == "Support Desk <support@example.com>"
    assert message["Auto-Submitted"] == "auto-generated" and message["X-Auto-Response-Suppress"] == "All"
    assert message["Message-ID"].startswith("<espomail.system.") and message["Message-ID"].endswith("@crm.example.com>")
    body = message.get_content()
    assert "Case 1 has been assigned to you: printer" in body and "\non fire" not in body
    assert "From: Jane Doe <jane@customer.example>" in body and "Account: support <support@example.com>" in body
    assert "round-robin distribution of account support" in body and "espomail case show 1" in body
    [email] = espomail("email", "list", "--parent", "case:1", "--json").json
    [event] = trail(espomail, email["id"])
    assert event["decision"] == "queued" and "u1 <u1@example.com>" in event["detail"]
    # The second case goes to u2, who has not opted in: no mail.
    dovecot.append(box, build_message(from_="max@customer.example", subject="second"))
    fetch(espomail)
    assert len(smtp.messages) == 1
    [second] = espomail("email", "list", "--parent", "case:2", "--json").json
    [event] = trail(espomail, second["id"])
    assert (event["decision"], event["detail"]) == ("not sent", "the assignee has not opted in to email notifications")
    # The notice is ours: were it to come back into the mailbox, the loop guard drops it.
    dovecot.append(box, sent.data)
    assert fetch(espomail)["accounts"][0]["new"] == 0
    assert len(espomail("case", "list", "--json").json) == 2  # no case for it


def test_old_mail_and_import_without_create_cases_mail_nobody(espomail, dovecot, desk, system, smtp, tmp_path):
    box = desk()
    system()
    dovecot.append(box, build_message(subject="an old one", date=dt.datetime(2001, 1, 1, tzinfo=dt.UTC)))
    fetch(espomail)
    [email] = espomail("email", "list", "--parent", "case:1", "--json").json
    [event] = trail(espomail, email["id"])
    assert event["decision"] == "not sent" and "side_effects_max_age_days" in event["detail"]
    assert espomail("case", "show", "1", "--json").json["assigned_user"] == "u1"
    path = tmp_path / "m.eml"
    path.write_bytes(build_message(subject="imported"))
    assert espomail("email", "import", path, "--account", "support").exit_code == 0
    assert len(espomail("case", "list", "--json").json) == 1  # no case, so nobody assigned
    path.write_bytes(build_message(subject="imported with cases"))
    assert espomail("email", "import", path, "--account", "support", "--create-cases").exit_code == 0
    assert smtp.messages == []  # case 2 went to u2, who has not opted in
    path.write_bytes(build_message(subject="third"))
    assert espomail("email", "import", path, "--account", "support", "--create-cases").exit_code == 0
    [sent] = smtp.messages
    assert sent.rcpt_tos == ["u1@example.com"] and sent.message["Subject"] == "[#3] Assigned to you: third"


def test_no_system_sender_queues_nothing_and_the_fetch_succeeds(espomail, dovecot, desk, smtp, db, isolated):
    box = desk()
    for n in range(3):
        dovecot.append(box, build_message(from_=f"c{n}@customer.example", subject=f"problem {n}"))
    fetch(espomail)
    listed = sorted(espomail("case", "list", "--json").json, key=lambda c: c["number"])
    assert [c["assigned_user"] for c in listed] == ["u1", "u2", "u1"]
    assert smtp.messages == [] and outgoing(db) == []
    [email] = espomail("email", "list", "--parent", "case:1", "--json").json
    assert trail(espomail, email["id"])[0]["detail"] == "no system sender: set one with 'espomail outbound set'"
    log = (isolated / "espomail.log").read_text()
    assert log.count("assignment notices are not sent: no system sender") == 1  # once per run


# -- assignment by hand -------------------------------------------------------------------------


def test_case_update_assignee_mails_but_not_when_assigning_oneself(espomail, dovecot, desk, system, smtp):
    box = desk("--distribution", "none")
    system()
    dovecot.append(box, build_message(subject="unassigned"))
    fetch(espomail)
    assert smtp.messages == []
    assert espomail("user", "update", "u2", "--email-notifications").exit_code == 0
    result = espomail("case", "update", "1", "--assignee", "u2")
    assert result.exit_code == 0, result
    [sent] = smtp.messages
    assert sent.rcpt_tos == ["u2@example.com"] and sent.message["Subject"] == "[#1] Assigned to you: unassigned"
    body = sent.message.get_content()
    assert "Assigned by: the administrator" in body and "Account: support <support@example.com>" in body
    assert espomail("case", "update", "1", "--assignee", "u2").exit_code == 0  # not a new assignee: no mail
    assert espomail("--as", "u1", "case", "update", "1", "--assignee", "u1").exit_code == 0  # oneself: no mail
    assert len(smtp.messages) == 1
    assert espomail("--as", "u1", "case", "update", "1", "--assignee", "u2").exit_code == 0
    assert len(smtp.messages) == 2
    assert "Assigned by: Agent u1 (u1)" in smtp.messages[1].message.get_content()


def test_email_update_assignee_mails_the_assignee(espomail, dovecot, group_account, system, smtp, agents):
    _, box = group_account("support", "--smtp-host", smtp.host, "--smtp-port", smtp.port, "--smtp-security", "none")
    system()
    dovecot.append(box, build_message(from_="jane@customer.example", subject="a question"))
    fetch(espomail)
    [email] = espomail("email", "list", "--json").json
    assert espomail("email", "update", email["id"], "--assignee", "u1").exit_code == 0
    [sent] = smtp.messages
    assert sent.message["Subject"] == "Assigned to you: a question"
    body = sent.message.get_content()
    assert f"Email {email['id']} has been assigned to you" in body and f"espomail email show {email['id']}" in body
    assert "From: jane@customer.example" in body


def test_no_mail_to_an_address_of_our_own_accounts(espomail, dovecot, desk, system, smtp):
    box = desk("--distribution", "none")
    system()
    added = espomail("user", "add", "desk", "--email", "support@example.com", "--email-notifications")
    assert added.exit_code == 0, added
    dovecot.append(box, build_message(subject="for the desk"))
    fetch(espomail)
    assert espomail("case", "update", "1", "--assignee", "desk").exit_code == 0
    assert smtp.messages == []
    assert espomail("user", "update", "desk", "--add-email", "desk@example.org").exit_code == 0
    assert espomail("case", "update", "1", "--assignee", "u2").exit_code == 0
    assert espomail("case", "update", "1", "--assignee", "desk").exit_code == 0
    [sent] = smtp.messages
    assert sent.rcpt_tos == ["desk@example.org"]  # the first address that is not one of ours


# -- the outbox: a notice that cannot be sent -------------------------------------------------------


def test_smtp_down_the_fetch_goes_on_and_a_later_fetch_sends_after_backoff(espomail, dovecot, desk, system, smtp, db):
    box = desk()
    system()
    smtp.stop()
    dovecot.append(box, build_message(subject="while down"))
    summary = fetch(espomail)
    [account] = summary["accounts"]
    assert (account["new"], account["cases_created"], account["auto_replies_failed"]) == (1, 1, 0)
    [notice] = outgoing(db)
    assert (notice["status"], notice["send_attempts"]) == ("Failed", 1) and notice["next_attempt_at"]
    assert notice["subject"] == "[#1] Assigned to you: while down"
    smtp.start()
    fetch(espomail)
    assert smtp.messages == []  # backing off: not due yet
    make_due(db)
    fetch(espomail)
    [sent] = smtp.messages
    assert sent.rcpt_tos == ["u1@example.com"]
    assert outgoing(db)[0]["status"] == "Sent"


def test_smtp_down_on_case_update_then_email_resend(espomail, dovecot, desk, system, smtp, db):
    box = desk("--distribution", "none")
    system()
    dovecot.append(box, build_message(subject="by hand"))
    fetch(espomail)
    smtp.stop()
    result = espomail("case", "update", "1", "--assignee", "u1", "--json")
    assert result.exit_code == 0, result  # the assignment stands; the notice waits in the outbox
    assert result.json["assigned_user"] == "u1"
    [notice] = outgoing(db)
    assert notice["status"] == "Failed"
    smtp.start()
    resent = espomail("email", "resend", notice["id"])
    assert resent.exit_code == 0, resent
    [sent] = smtp.messages
    assert sent.rcpt_tos == ["u1@example.com"] and sent.message["Subject"] == "[#1] Assigned to you: by hand"


def test_an_inactive_assignee_is_not_mailed(espomail, dovecot, desk, system, smtp):
    box = desk("--distribution", "none")
    system()
    assert espomail("user", "update", "u1", "--inactive").exit_code == 0
    dovecot.append(box, build_message(subject="nobody home"))
    fetch(espomail)
    assert espomail("case", "update", "1", "--assignee", "u1").exit_code == 0
    assert smtp.messages == []


def test_m006_gives_users_of_an_older_store_the_flag_off(tmp_path, monkeypatch):
    from espomail.store import migrations
    from espomail.store.db import open_store

    every = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", every[:5])  # up to m005_oauth
    old = open_store(tmp_path / "old.db")
    old.insert("users", {"username": "ann", "name": "Ann", "created_at": "2026-01-01T00:00:00Z"})
    old.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", every)
    store = open_store(tmp_path / "old.db")
    assert store.value("SELECT email_notifications FROM users WHERE username = 'ann'") == 0
