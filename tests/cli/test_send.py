"""``espomail email send`` end to end: SMTP choice, From checks, case rules, answers link back."""

import pytest

from espomail.testing.messages import build_message


@pytest.fixture
def shop(espomail, group_account, dovecot, smtp):
    espomail("team", "add", "support")
    espomail("team", "add", "sales")
    for role, level in (("send-no", "no"), ("send-team", "team"), ("send-all", "all")):
        espomail("role", "add", role, "--email-create", "yes", "--email-read", "own", "--group-send", level)
    espomail("role", "update", "send-all", "--email-read", "all")  # sending into case 1 needs access to it
    espomail("user", "add", "nina", "--email", "nina@example.com", "--team", "support", "--role", "send-no")
    espomail("user", "add", "tom", "--email", "tom@example.com", "--team", "support", "--role", "send-team")
    espomail("user", "add", "tess", "--email", "tess@example.com", "--team", "sales", "--role", "send-team")
    espomail("user", "add", "ada", "--email", "ada@example.com", "--team", "sales", "--role", "send-all")
    _, box = group_account(
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
        "--smtp-shared",
        "--reply-to-address",
        "help@example.com",
        "--store-sent",
        "Sent",
        address="support@example.com",
    )
    dovecot.append(
        box, build_message(from_="jane@customer.example", subject="Printer", message_id="<q1@customer.example>")
    )
    assert espomail("fetch").exit_code == 0
    return box


def send(espomail, user, *extra, sender="support@example.com"):
    return espomail(
        "--as",
        user,
        "email",
        "send",
        "--from",
        sender,
        "--to",
        "jane@customer.example",
        "--subject",
        "Your printer",
        "--body",
        "It is fixed.",
        "--parent",
        "case:1",
        "--json",
        *extra,
    )


def test_group_send_no_is_refused(espomail, shop, smtp):
    result = send(espomail, "nina")
    assert result.exit_code == 4
    assert "group send" in result.stderr
    assert smtp.messages == []


def test_group_send_team_needs_a_shared_team(espomail, shop, smtp):
    assert send(espomail, "tess").exit_code == 4
    result = send(espomail, "tom")
    assert result.exit_code == 0, result
    assert len(smtp.messages) == 1


def test_sent_with_case_rules_and_the_answer_links_back(espomail, shop, smtp, dovecot):
    result = send(espomail, "ada")
    assert result.exit_code == 0, result
    stored = result.json
    assert stored["status"] == "Sent" and stored["parent"] == {"type": "case", "id": 1}
    assert stored["stored_in_sent_folder"] is True
    [sent] = smtp.messages
    message = sent.message
    assert message["Subject"] == "[#1] Your printer"
    assert message["Reply-To"] == "help@example.com"
    assert message["From"].endswith("<support@example.com>")
    assert dovecot.message_count(shop, "Sent") == 1
    ours = message["Message-ID"]
    assert ".case-1." in ours
    dovecot.append(
        shop,
        build_message(from_="jane@customer.example", subject="Re: Your printer", in_reply_to=ours, references=ours),
    )
    summary = espomail("fetch", "--json").json
    assert summary["accounts"][0]["cases_created"] == 0
    linked = espomail("email", "list", "--parent", "case:1", "--json").json
    assert len(linked) == 3
    case = espomail("case", "show", "1", "--json").json
    assert [n["type"] for n in case["stream"]] == ["email-received", "email-sent", "email-received"]


def test_reply_to_an_email_sets_in_reply_to_and_references(espomail, shop, smtp):
    [first] = espomail("email", "list", "--json").json
    result = espomail(
        "email",
        "send",
        "--from",
        "support@example.com",
        "--to",
        "jane@customer.example",
        "--subject",
        "Re: Printer",
        "--body",
        "On it.",
        "--reply-to-email",
        first["id"],
        "--json",
    )
    assert result.exit_code == 0, result
    message = smtp.messages[0].message
    assert message["In-Reply-To"] == "<q1@customer.example>"
    assert "<q1@customer.example>" in message["References"]
    assert result.json["parent"] == {"type": "case", "id": 1}
    assert result.json["replied_id"] == first["id"]


def test_from_must_be_yours(espomail, shop):
    result = send(espomail, "tom", sender="ceo@example.com")
    assert result.exit_code == 4 and "ceo@example.com" in result.stderr


def test_no_smtp_for_your_own_address_is_a_clear_error(espomail, shop):
    result = send(espomail, "tom", sender="tom@example.com")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no SMTP to send from tom@example.com")


def test_system_smtp_shared_sends_your_own_address(espomail, shop, smtp, group_account):
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
    espomail("outbound", "set", "--address", "crm@example.com", "--shared")
    result = send(espomail, "tom", sender="tom@example.com")
    assert result.exit_code == 0, result
    assert smtp.messages[0].message["From"].endswith("<tom@example.com>")


def test_refused_recipient_is_a_failed_email_not_a_traceback(espomail, shop, smtp):
    smtp.refuse.add("jane@customer.example")
    result = send(espomail, "ada")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: SMTP server") and "refused" in result.stderr
    assert "Traceback" not in result.stderr
    failed = [e for e in espomail("email", "list", "--parent", "case:1", "--json").json if e["status"] == "Failed"]
    assert len(failed) == 1


def test_dead_smtp_server(espomail, shop, smtp):
    smtp.stop()
    result = send(espomail, "ada")
    assert result.exit_code == 1
    assert "connection refused" in result.stderr


def test_attachments_and_permission_to_create(espomail, shop, smtp, tmp_path):
    espomail("role", "update", "send-all", "--email-create", "no")
    assert send(espomail, "ada").exit_code == 4
    espomail("role", "update", "send-all", "--email-create", "yes")
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4\n" * 50)
    result = send(espomail, "ada", "--attach", report)
    assert result.exit_code == 0, result
    assert [a["filename"] for a in result.json["attachments"]] == ["report.pdf"]
    assert smtp.messages[0].message.get_payload()[1].get_filename() == "report.pdf"


# -- the outbox: every send is counted; a failed one is retried or resent by hand (issue 12) -------


def outbox_row(db, email_id):
    [row] = db.rows(
        """SELECT e.status, e.send_attempts, o.next_attempt_at, o.gave_up_at FROM emails e
           LEFT JOIN outbox o ON o.email_id = e.id WHERE e.id = ?""",
        [email_id],
    )
    return row


def failed_id(espomail):
    [failed] = [e for e in espomail("email", "list", "--parent", "case:1", "--json").json if e["status"] == "Failed"]
    return failed["id"]


def test_a_send_to_a_server_that_is_down_is_retried_by_a_later_fetch_once(espomail, shop, smtp, db):
    port = smtp.port
    smtp.stop()
    result = send(espomail, "ada")
    assert result.exit_code == 1
    email_id = failed_id(espomail)
    assert f"stored as Failed (id {email_id}): later fetches try again (1 of 3 attempts made" in result.stderr
    assert outbox_row(db, email_id)["send_attempts"] == 1
    shown = espomail("email", "show", email_id, "--json").json
    assert (shown["status"], shown["send_attempts"]) == ("Failed", 1) and "refused" in shown["last_error"]
    smtp.port = port
    smtp.start()
    assert espomail("fetch").exit_code == 0
    assert smtp.messages == []  # not before its next attempt is due
    db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00Z'")
    assert espomail("fetch").exit_code == 0
    assert espomail("fetch").exit_code == 0
    assert len(smtp.messages) == 1
    assert outbox_row(db, email_id) == {
        "status": "Sent",
        "send_attempts": 2,
        "next_attempt_at": None,
        "gave_up_at": None,
    }


def test_resend_by_its_sender_or_an_admin_only(espomail, shop, smtp, db):
    smtp.refuse.add("jane@customer.example")
    assert send(espomail, "ada").exit_code == 1
    email_id = failed_id(espomail)
    assert outbox_row(db, email_id)["gave_up_at"]  # 550: permanent, no automatic retry
    espomail("role", "update", "send-team", "--email-read", "all")
    denied = espomail("--as", "tom", "email", "resend", email_id)
    assert denied.exit_code == 4 and "resend email" in denied.stderr
    still = espomail("--as", "ada", "email", "resend", email_id)
    assert still.exit_code == 1 and "550" in still.stderr and "no automatic retry" in still.stderr
    smtp.refuse.clear()
    espomail("role", "update", "send-all", "--email-create", "no")
    assert espomail("--as", "ada", "email", "resend", email_id).exit_code == 4
    espomail("role", "update", "send-all", "--email-create", "yes")
    result = espomail("--as", "ada", "email", "resend", email_id, "--json")
    assert result.exit_code == 0, result
    assert result.json["status"] == "Sent" and result.json["send_attempts"] == 1
    assert result.json["stored_in_sent_folder"] is True
    [sent] = smtp.messages
    assert sent.message["Subject"] == "[#1] Your printer"
    again = espomail("email", "resend", email_id)
    assert again.exit_code == 2 and "was sent already" in again.stderr


def test_resend_refuses_what_is_not_a_failed_outgoing_email(espomail, shop, smtp):
    [incoming] = [e for e in espomail("email", "list", "--json").json if e["status"] == "Archived"]
    result = espomail("email", "resend", incoming["id"])
    assert result.exit_code == 2 and "not an outgoing email" in result.stderr
    assert espomail("email", "resend", "999").exit_code == 3
    assert smtp.messages == []


def test_an_admin_resends_anyones_email_and_a_failure_says_what_next(espomail, shop, smtp):
    port = smtp.port
    smtp.stop()
    assert send(espomail, "ada").exit_code == 1
    email_id = failed_id(espomail)
    failed = espomail("email", "resend", email_id)
    assert failed.exit_code == 1
    assert failed.stderr.startswith("Error: SMTP: ") and f"'espomail email resend {email_id}'" in failed.stderr
    smtp.port = port
    smtp.start()
    done = espomail("email", "resend", email_id)
    assert done.exit_code == 0 and done.stderr.strip() == f"Sent email {email_id} to jane@customer.example"


def test_recipients_refused_by_some_only_is_sent_to_the_others(espomail, shop, smtp):
    smtp.refuse.add("gone@customer.example")
    result = send(espomail, "ada", "--cc", "gone@customer.example")
    assert result.exit_code == 0, result
    assert result.json["status"] == "Sent" and "gone@customer.example (550" in result.json["refused"]
    [sent] = smtp.messages
    assert sent.rcpt_tos == ["jane@customer.example"]
    assert espomail("fetch").exit_code == 0 and len(smtp.messages) == 1  # never sent again
