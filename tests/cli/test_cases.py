"""Email-to-Case, distribution and loop-safe auto-replies, end to end (Dovecot + SMTP)."""

import pytest

from espomail.testing.messages import build_message

CASE_KEYS = {
    "number",
    "name",
    "status",
    "priority",
    "assigned_user",
    "teams",
    "account_id",
    "contact_id",
    "lead_id",
    "inbound_account",
    "email_ids",
}


@pytest.fixture
def agents(espomail):
    espomail("team", "add", "support", "--position", "agent", "--position", "lead")
    for name, position in (("u1", "agent"), ("u2", "lead"), ("u3", "agent")):
        assert (
            espomail("user", "add", name, "--email", f"{name}@example.com", "--team", f"support:{position}").exit_code
            == 0
        )
    espomail("user", "add", "outsider", "--email", "outsider@example.com")


@pytest.fixture
def case_account(espomail, group_account, smtp, tmp_path, agents):
    body = tmp_path / "reply.txt"
    body.write_text("Dear {sender_name},\nwe opened case {case_number} ({case_name}).\n")

    def make(*extra):
        name, user = group_account(
            "support",
            "--team",
            "support",
            "--create-case",
            "--target-team",
            "support",
            "--smtp-host",
            smtp.host,
            "--smtp-port",
            smtp.port,
            "--smtp-security",
            "none",
            *extra,
            address="support@example.com",
        )
        return user

    make.body = body
    return make


def fetch(espomail):
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    return result.json


def cases(espomail, *args):
    result = espomail("case", "list", "--json", *args)
    assert result.exit_code == 0, result
    return sorted(result.json, key=lambda c: c["number"])


def customers(n, **kwargs):
    return [build_message(from_=f"c{i}@customer.example", subject=f"problem {i}", **kwargs) for i in range(n)]


def test_round_robin_gives_three_emails_three_assignees_in_user_id_order(espomail, dovecot, case_account):
    box = case_account("--distribution", "round-robin")
    for raw in customers(4):
        dovecot.append(box, raw)
        fetch(espomail)
    assigned = [c["assigned_user"] for c in cases(espomail)]
    assert assigned == ["u1", "u2", "u3", "u1"]
    first = espomail("case", "show", "1", "--json").json
    assert CASE_KEYS <= set(first)
    assert first["status"] == "Assigned" and first["teams"] == ["support"]
    assert first["inbound_account"] == "support" and len(first["email_ids"]) == 1
    [email] = espomail("email", "list", "--parent", "case:1", "--json").json
    assert email["assigned_user"] == "u1" and "u1" in email["users"]


def test_round_robin_only_the_target_position(espomail, dovecot, case_account):
    box = case_account("--distribution", "round-robin", "--target-position", "agent")
    dovecot.append(box, customers(3))
    fetch(espomail)
    assert [c["assigned_user"] for c in cases(espomail)] == ["u1", "u3", "u1"]


def test_least_busy_picks_the_fewest_open_cases_ties_to_lowest_id(espomail, dovecot, case_account):
    box = case_account("--distribution", "least-busy")
    dovecot.append(box, customers(3))
    fetch(espomail)
    assert [c["assigned_user"] for c in cases(espomail)] == ["u1", "u2", "u3"]
    espomail("case", "update", "2", "--status", "Closed")
    espomail("case", "update", "3", "--assign", "u1")
    # open: u1 has 2, u2 has 0 (its case is closed), u3 has 0 -> u2 (lowest id of the tie)
    dovecot.append(box, build_message(from_="late@customer.example", subject="late"))
    fetch(espomail)
    assert cases(espomail)[-1]["assigned_user"] == "u2"


def test_inactive_members_are_skipped(espomail, dovecot, case_account):
    espomail("user", "update", "u2", "--inactive")
    box = case_account("--distribution", "round-robin")
    dovecot.append(box, customers(3))
    fetch(espomail)
    assert [c["assigned_user"] for c in cases(espomail)] == ["u1", "u3", "u1"]


def test_direct_and_none(espomail, dovecot, case_account):
    box = case_account("--distribution", "direct", "--assign-user", "u3")
    dovecot.append(box, customers(1))
    fetch(espomail)
    espomail("account", "update", "support", "--distribution", "none")
    dovecot.append(box, build_message(from_="x@customer.example", subject="other"))
    fetch(espomail)
    direct, none = cases(espomail)
    assert (direct["assigned_user"], direct["status"]) == ("u3", "Assigned")
    assert (none["assigned_user"], none["status"]) == (None, "New")


def test_case_fields_contact_account_attachments(espomail, dovecot, case_account):
    espomail("record", "add", "account", "--name", "Acme")
    espomail("record", "add", "contact", "--name", "Jane", "--email", "jane@acme.example", "--account", "1")
    espomail("record", "add", "lead", "--name", "Leo", "--email", "leo@prospect.example")
    box = case_account()
    dovecot.append(
        box,
        build_message(
            from_="jane@acme.example",
            subject="Broken",
            body="It broke.\n",
            attachments=[("log.txt", "text/plain", b"trace\n")],
        ),
    )
    dovecot.append(box, build_message(from_="leo@prospect.example", subject="Question"))
    fetch(espomail)
    jane = espomail("case", "show", "1", "--json").json
    assert (jane["name"], jane["description"], jane["contact_id"], jane["account_id"]) == ("Broken", "It broke.", 2, 1)
    assert [a["filename"] for a in jane["attachments"]] == ["log.txt"]
    assert jane["stream"][0]["is_initial"] is True
    leo = espomail("case", "show", "2", "--json").json
    assert (leo["lead_id"], leo["contact_id"]) == (3, None)


def test_exactly_one_auto_reply_per_new_case_with_loop_safe_headers(espomail, dovecot, case_account, smtp):
    box = case_account(
        "--auto-reply",
        "--reply-subject",
        "We got it: {subject}",
        "--reply-body-file",
        case_account.body,
        "--distribution",
        "round-robin",
    )
    customer_id = "<first@customer.example>"
    dovecot.append(box, build_message(from_="Jane <jane@customer.example>", subject="Printer", message_id=customer_id))
    summary = fetch(espomail)
    assert summary["accounts"][0]["cases_created"] == 1 and summary["accounts"][0]["auto_replies"] == 1
    [sent] = smtp.messages
    reply = sent.message
    assert sent.rcpt_tos == ["jane@customer.example"]
    assert reply["Subject"] == "[#1] We got it: Printer"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All" and reply["Precedence"] == "auto_reply"
    assert reply["In-Reply-To"] == customer_id and customer_id in reply["References"]
    assert "Dear Jane" in reply.get_content() and "case 1 (Printer)" in reply.get_content()
    stored = espomail("email", "list", "--parent", "case:1", "--json").json
    assert {e["status"] for e in stored} == {"Archived", "Sent"}
    assert fetch(espomail)["new"] == 0 and len(smtp.messages) == 1


@pytest.mark.parametrize(
    "headers, sender",
    [
        ({"Precedence": "bulk"}, "news@customer.example"),
        ({"List-Id": "<users.lists.example>"}, "member@customer.example"),
        ({"Auto-Submitted": "auto-generated"}, "robot@customer.example"),
        ({"X-Autoreply": "yes"}, "away@customer.example"),
        ({}, "MAILER-DAEMON@customer.example"),
        ({}, "no-reply@customer.example"),
        ({"X-Auto-Response-Suppress": "OOF, AutoReply"}, "exchange@customer.example"),
    ],
)
def test_no_auto_reply_to_automated_mail(espomail, dovecot, case_account, smtp, headers, sender):
    box = case_account("--auto-reply", "--reply-subject", "ack", "--reply-body-file", case_account.body)
    dovecot.append(box, build_message(from_=sender, headers=headers))
    fetch(espomail)
    assert smtp.messages == []
    [email] = espomail("email", "list", "--json").json
    events = espomail("email", "explain", email["id"], "--json").json["events"]
    assert any(
        e["step"] in ("auto-reply", "email-to-case") and e["decision"] in ("not sent", "no case") for e in events
    )


def test_no_auto_reply_for_a_duplicate(espomail, dovecot, case_account, smtp, group_account):
    box = case_account("--auto-reply", "--reply-subject", "ack", "--reply-body-file", case_account.body)
    _, other = group_account("sales")
    raw = build_message(to=["support@example.com", "sales@example.com"])
    dovecot.append(other, raw)
    fetch(espomail)
    dovecot.append(box, raw)
    summary = fetch(espomail)
    assert summary["duplicates"] == 1
    assert smtp.messages == [] and cases(espomail) == []


def test_the_sixth_message_from_one_sender_gets_no_auto_reply(espomail, dovecot, case_account, smtp):
    box = case_account("--auto-reply", "--reply-subject", "ack", "--reply-body-file", case_account.body)
    dovecot.append(box, [build_message(from_="busy@customer.example", subject=f"issue {i}") for i in range(6)])
    fetch(espomail)
    assert len(cases(espomail)) == 6
    assert len(smtp.messages) == 5
    [last] = espomail("email", "list", "--parent", "case:6", "--json").json
    events = espomail("email", "explain", last["id"], "--json").json["events"]
    assert any(e["step"] == "auto-reply" and "rate limit" in e["detail"] for e in events)


def test_reply_to_the_auto_reply_and_subject_number_link_to_the_case(espomail, dovecot, case_account, smtp):
    box = case_account(
        "--auto-reply",
        "--reply-subject",
        "ack",
        "--reply-body-file",
        case_account.body,
        "--distribution",
        "round-robin",
    )
    dovecot.append(box, build_message(from_="jane@customer.example", subject="Printer"))
    fetch(espomail)
    ack_id = smtp.messages[0].message["Message-ID"]
    dovecot.append(
        box, build_message(from_="jane@customer.example", subject="Re: [#1] ack", in_reply_to=ack_id, references=ack_id)
    )
    dovecot.append(box, build_message(from_="other@customer.example", subject="About [#1] again"))
    summary = fetch(espomail)
    assert summary["accounts"][0]["cases_created"] == 0 and len(smtp.messages) == 1
    assert len(cases(espomail)) == 1
    linked = espomail("email", "list", "--parent", "case:1", "--json").json
    assert len(linked) == 4  # the first, the auto-reply, the reply, the [#1] message
    assert all("u1" in e["users"] for e in linked if e["status"] == "Archived")
    stream = espomail("case", "show", "1", "--json").json["stream"]
    assert len(stream) == 3


def test_reopen_closed_cases(espomail, dovecot, case_account, monkeypatch):
    box = case_account("--distribution", "round-robin")
    dovecot.append(box, build_message(from_="jane@customer.example", subject="Printer"))
    fetch(espomail)
    espomail("case", "update", "1", "--status", "Closed")
    dovecot.append(box, build_message(from_="jane@customer.example", subject="Re: [#1] Printer"))
    fetch(espomail)
    assert cases(espomail)[0]["status"] == "Closed"
    monkeypatch.setenv("ESPOMAIL_REOPEN_CLOSED_CASES", "true")
    dovecot.append(box, build_message(from_="jane@customer.example", subject="Re: [#1] still broken"))
    fetch(espomail)
    assert cases(espomail)[0]["status"] == "Assigned"


def test_auto_reply_smtp_failure_is_stored_failed_and_retried(espomail, dovecot, case_account, smtp, db):
    box = case_account("--auto-reply", "--reply-subject", "ack", "--reply-body-file", case_account.body)
    port = smtp.port
    smtp.stop()
    dovecot.append(box, build_message(from_="jane@customer.example"))
    summary = fetch(espomail)["accounts"][0]
    assert (summary["auto_replies"], summary["auto_replies_failed"]) == (0, 1)
    failed = [e for e in espomail("email", "list", "--parent", "case:1", "--json").json if e["status"] == "Failed"]
    assert len(failed) == 1
    explained = espomail("email", "explain", failed[0]["id"], "--json").json
    assert "refused" in explained["last_error"]
    smtp.port = port
    smtp.start()
    fetch(espomail)
    assert smtp.messages == []  # backoff: the second attempt is due a minute after the first
    db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00Z'")
    fetch(espomail)
    assert len(smtp.messages) == 1
    statuses = {e["status"] for e in espomail("email", "list", "--parent", "case:1", "--json").json}
    assert statuses == {"Archived", "Sent"}


def test_auto_reply_without_case_mode_and_through_the_system_account(espomail, dovecot, group_account, smtp, tmp_path):
    body = tmp_path / "b.txt"
    body.write_text("Thanks, {sender_address}.")
    group_account(
        "system",
        "--smtp-host",
        smtp.host,
        "--smtp-port",
        smtp.port,
        "--smtp-security",
        "none",
        address="crm@example.com",
    )
    assert espomail("outbound", "set", "--address", "crm@example.com", "--name", "CRM").exit_code == 0
    shown = espomail("outbound", "show", "--json").json
    assert shown == {"address": "crm@example.com", "name": "CRM", "shared": False, "account": "system"}
    assert espomail("account", "show", "system", "--json").json["is_system"] is True
    _, box = group_account("info", "--auto-reply", "--reply-subject", "Thanks", "--reply-body-file", body)
    dovecot.append(box, build_message(from_="fan@example.org", to="info@example.com"))
    fetch(espomail)
    [sent] = smtp.messages
    assert sent.message["Subject"] == "Thanks" and sent.message.get_content().strip() == "Thanks, fan@example.org."


def test_template_with_unknown_placeholder_is_refused_when_saved(espomail, agents, tmp_path):
    body = tmp_path / "b.txt"
    body.write_text("Hello {customer}")
    result = espomail(
        "account",
        "add-group",
        "s",
        "--address",
        "s@example.com",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
        "--auto-reply",
        "--reply-subject",
        "x",
        "--reply-body-file",
        body,
    )
    assert result.exit_code == 2 and "{customer}" in result.stderr


def test_case_update_and_errors(espomail, dovecot, case_account):
    box = case_account()
    dovecot.append(box, customers(1))
    fetch(espomail)
    updated = espomail("case", "update", "1", "--assign", "u2", "--priority", "High", "--json").json
    assert (updated["assigned_user"], updated["status"], updated["priority"]) == ("u2", "Assigned", "High")
    assert [c["number"] for c in cases(espomail, "--status", "Assigned")] == [1]
    assert cases(espomail, "--status", "New") == []
    assert espomail("case", "show", "99").exit_code == 3
    assert espomail("case", "update", "1", "--status", "Gone").exit_code == 2
