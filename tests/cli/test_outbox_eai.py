"""International addresses (SPEC 11 EAI, issue 12 Deliver 2): accepted where people type
addresses, stored in one form (NFC, Unicode domain), shown, matched and linked whichever
form mail uses; sent with SMTPUTF8 when the server offers it, else Failed with a reason."""

from __future__ import annotations

import unicodedata

import pytest

from espomail.testing.smtp import RecordingSMTP

PUNY = "xn--universit-y1a.it"  # università.it
assert PUNY.encode().decode("idna") == "università.it"


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("marilù@università.it", "marilù@università.it"),
        (f"marilù@{PUNY}", "marilù@università.it"),  # punycode domain: one stored form
        (unicodedata.normalize("NFD", "marilù@università.it"), "marilù@università.it"),  # NFC
        ("Marilù.Gioffré@esempio-università.it", "Marilù.Gioffré@esempio-università.it"),
        ("θσερ@εχαμπλε.ψομ", "θσερ@εχαμπλε.ψομ"),
        ("info@xn--esempio-universit-4ob.it", "info@esempio-università.it"),
        ("  plain@example.com ", "plain@example.com"),
    ],
)
def test_international_addresses_are_accepted_and_stored_in_one_form(espomail, typed, stored):
    result = espomail("user", "add", "mari", "--email", typed, "--json")
    assert result.exit_code == 0, result
    assert result.json["emails"] == [stored]
    record = espomail("record", "add", "contact", "--name", "Marilù", "--email", typed, "--json")
    assert record.exit_code == 0, record
    assert record.json["emails"] == [stored]


@pytest.mark.parametrize(
    "typed",
    [
        "bad\x1b[31m@example.com",  # a terminal escape
        "a\u2028b@example.com",  # a line separator
        "a\x85b@example.com",
        "two words@example.com",
        "x@xn--a-ecp.xn--zz--.it",  # not valid punycode
        "x@" + "a" * 64 + ".com",  # a label over 63 characters
        "Jane <jane@example.com>",
    ],
)
def test_broken_addresses_are_refused_and_nothing_is_stored(espomail, db, typed):
    result = espomail("user", "add", "mari", "--email", typed)
    assert result.exit_code == 2 and result.stderr.startswith("Error: '")
    assert "\x1b" not in result.stderr and "\u2028" not in result.stderr
    assert db.value("SELECT COUNT(*) FROM users") == 0


def test_mail_from_either_form_links_to_the_contact_and_reaches_the_user(espomail, dovecot, group_account):
    espomail("record", "add", "account", "--name", "Università", "--email", f"info@{PUNY}")
    espomail("record", "add", "contact", "--name", "Marilù", "--email", "Marilù@università.it", "--account", "1")
    espomail("user", "add", "dörte", "--email", f"dörte@{PUNY}")
    _, box = group_account("support")
    raws = [
        "From: Marilù <marilù@università.it>\r\nTo: support@example.com, dörte@università.it\r\n",
        f"From: =?utf-8?q?Maril=C3=B9?= <MARILÙ@{PUNY}>\r\nTo: support@example.com\r\nCc: dörte@{PUNY.upper()}\r\n",
    ]
    for i, head in enumerate(raws):
        dovecot.append(box, (head + f"Subject: {i}\r\nMessage-ID: <eai{i}@università.it>\r\n\r\nCiao\r\n").encode())
    result = espomail("fetch")
    assert result.exit_code == 0, result
    emails = sorted(espomail("email", "list", "--json").json, key=lambda e: e["subject"])
    assert [e["parent"] for e in emails] == [{"type": "account", "id": 1}] * 2
    assert [e["from"] for e in emails] == ["marilù@università.it", "MARILÙ@università.it"]
    assert all("dörte" in e["users"] for e in emails)
    shown = espomail("email", "show", str(emails[0]["id"])).stdout
    assert "marilù@università.it" in shown


@pytest.fixture
def sender(espomail, group_account):
    def make(server):
        group_account(
            "support",
            "--smtp-host",
            server.host,
            "--smtp-port",
            server.port,
            "--smtp-security",
            "none",
        )

    return make


def send_to(espomail, *recipients):
    args = [a for r in recipients for a in ("--to", r)]
    return espomail(
        "email", "send", "--from", "support@example.com", *args, "--subject", "Ciao", "--body", "Grazie", "--json"
    )


def test_sending_to_an_international_address_uses_smtputf8(espomail, sender, db):
    with RecordingSMTP(smtputf8=True) as server:
        sender(server)
        result = send_to(espomail, "marilù@università.it", f"info@{PUNY}")
        assert result.exit_code == 0, result
        [sent] = server.messages
    assert sent.rcpt_tos == [f"marilù@{PUNY}", f"info@{PUNY}"]  # domains as A-labels on the wire
    assert result.json["status"] == "Sent" and result.json["to"] == ["marilù@università.it", "info@università.it"]


def test_without_smtputf8_it_fails_with_a_reason_and_is_not_retried(espomail, sender, smtp, db):
    sender(smtp)
    result = send_to(espomail, "marilù@università.it")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "does not support SMTPUTF8, needed for marilù@" in result.stderr
    assert "UnicodeEncodeError" not in result.stderr and "no automatic retry" in result.stderr
    assert smtp.messages == []
    [row] = db.rows("SELECT e.status, e.send_attempts, o.gave_up_at FROM emails e JOIN outbox o ON o.email_id = e.id")
    status, attempts, given_up = row["status"], row["send_attempts"], row["gave_up_at"]
    assert (status, attempts) == ("Failed", 1) and given_up


def test_an_ascii_local_part_at_an_international_domain_needs_no_smtputf8(espomail, sender, smtp):
    sender(smtp)
    result = send_to(espomail, "info@università.it")
    assert result.exit_code == 0, result
    assert smtp.messages[0].rcpt_tos == [f"info@{PUNY}"]
    assert smtp.messages[0].message["To"] == f"info@{PUNY}"
