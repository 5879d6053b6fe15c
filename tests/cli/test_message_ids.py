"""Message-IDs under the sending account's domain (issue 17 Deliver 8).

Generated ids use ``message_id_domain`` when configured, else the domain of the sending
account's address, else the system address's, else a real FQDN, else ``espomail.invalid``;
never ``localhost.localdomain``. The loop guard and the parent step still recognise ids
generated under any of our domains, the old FQDN form included.
"""

from __future__ import annotations

import pytest

from espomail.mail import msgid
from espomail.testing.messages import build_message


@pytest.fixture(autouse=True)
def no_configured_domain(monkeypatch):
    """The suite sets ESPOMAIL_MESSAGE_ID_DOMAIN; these tests want the default unless they say."""
    monkeypatch.delenv("ESPOMAIL_MESSAGE_ID_DOMAIN", raising=False)


@pytest.fixture
def fqdn(monkeypatch):
    """``fqdn("host.example")``: what socket.getfqdn() answers (cached per process in msgid)."""

    def set_name(name: str) -> None:
        monkeypatch.setattr(msgid.socket, "getfqdn", lambda *a: name)
        msgid._fqdn.cache_clear()

    yield set_name
    msgid._fqdn.cache_clear()


def generated_ids(db) -> list[str]:
    rows = db.rows("SELECT message_id FROM emails WHERE status IN ('Sending', 'Sent', 'Failed') ORDER BY id")
    return [row["message_id"] for row in rows]


def states(db) -> list[str]:
    return [row["state"] for row in db.rows("SELECT state FROM email_deliveries ORDER BY id")]


@pytest.fixture
def replying(espomail, group_account, dovecot, smtp, tmp_path):
    """A group account answering with an auto-reply and opening cases; returns its IMAP user."""
    body = tmp_path / "ack.txt"
    body.write_text("We got it.\n")

    def make(*extra: str, address: str = "support@acme.example") -> str:
        espomail("team", "add", "support")
        _, box = group_account(
            "support",
            "--team",
            "support",
            "--create-case",
            "--auto-reply",
            "--reply-subject",
            "We got it",
            "--reply-body-file",
            body,
            "--smtp-host",
            smtp.host,
            "--smtp-port",
            smtp.port,
            "--smtp-security",
            "none",
            "--smtp-shared",
            *extra,
            address=address,
        )
        return box

    return make


# -- the domain a generated id gets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "configured", "system", "host", "expected"),
    [
        ("support@acme.example", None, None, "host.example", "acme.example"),
        ("support@Acme.EXAMPLE", None, None, None, "acme.example"),
        ("support@acme.example", "crm.example.com", None, None, "crm.example.com"),
        ("info@esempio-università.it", None, None, None, "xn--esempio-universit-4ob.it"),
        (None, None, "system@sys.example", "host.example", "sys.example"),
        ("support@localhost", None, "system@sys.example", None, "sys.example"),
        ("support@localhost.localdomain", None, None, "mail.host.example", "mail.host.example"),
        (None, None, None, "mail.host.example", "mail.host.example"),
        (None, None, None, "localhost.localdomain", "espomail.invalid"),
        (None, None, None, "myhost", "espomail.invalid"),
        (None, None, None, "myhost.local", "espomail.invalid"),
        ("bad@[127.0.0.1]", None, None, "localhost", "espomail.invalid"),
    ],
)
def test_the_domain_of_a_generated_id(fqdn, sender, configured, system, host, expected) -> None:
    fqdn(host or "localhost")
    assert msgid.domain_for(sender, configured, system) == expected
    assert msgid.generate(expected).endswith(f"@{expected}>")


def test_known_domains_hold_every_form(fqdn) -> None:
    fqdn("oldhost")
    domains = msgid.known_domains(["a@acme.example", "b@Esempio-Università.it"], "crm.example.com", "s@sys.example")
    for domain in (
        "acme.example",
        "esempio-università.it",
        "xn--esempio-universit-4ob.it",
        "crm.example.com",
        "sys.example",
        "oldhost.localdomain",  # the default before issue 17: mail already out there
        "espomail.invalid",
    ):
        assert domain in domains
    assert msgid.is_system("<espomail.system.1.ab@ACME.example>", domains)
    assert msgid.parse_generated("<espomail.case-7.1.ab@oldhost.localdomain>", domains) == {"type": "case", "id": 7}
    assert msgid.parse_generated("<espomail.case-7.1.ab@other.example>", domains) is None


@pytest.mark.parametrize("value", ["not a domain", "a@b.example", "<x>", "-bad.example", "localhost"])
def test_a_bad_configured_domain_is_refused(espomail, monkeypatch, value) -> None:
    monkeypatch.setenv("ESPOMAIL_MESSAGE_ID_DOMAIN", value)
    result = espomail("email", "list")
    assert result.exit_code == 2, result
    assert "message_id_domain" in result.stderr
    assert "Traceback" not in result.stderr


# -- end to end: auto-replies and email send ----------------------------------------------------


def test_auto_reply_and_send_use_the_account_domain(espomail, replying, dovecot, smtp, db, fqdn) -> None:
    fqdn("localhost.localdomain")
    box = replying()
    dovecot.append(box, build_message(from_="jane@customer.example", to="support@acme.example"))
    assert espomail("fetch").exit_code == 0
    espomail("user", "add", "tom", "--email", "tom@acme.example", "--team", "support", "--admin")
    result = espomail(
        "--as", "tom", "email", "send", "--from", "support@acme.example", "--to", "jane@customer.example",
        "--subject", "Fixed", "--body", "Done.", "--parent", "case:1",
    )  # fmt: skip
    assert result.exit_code == 0, result
    ids = generated_ids(db)
    assert len(ids) == 2 and all(i.endswith("@acme.example>") for i in ids), ids
    assert ids[0].startswith("<espomail.system.") and ids[1].startswith("<espomail.case-")
    sent = [m.message["Message-ID"] for m in smtp.messages]
    assert sent == ids
    assert not any("localdomain" in m.data.decode("latin-1") for m in smtp.messages)


def test_reply_from_address_gives_its_domain(espomail, replying, dovecot, smtp, db) -> None:
    box = replying("--reply-from-address", "noreply@help.acme.example")
    dovecot.append(box, build_message(from_="jane@customer.example", to="support@acme.example"))
    assert espomail("fetch").exit_code == 0
    assert generated_ids(db)[0].endswith("@help.acme.example>")


def test_configured_domain_overrides(espomail, replying, dovecot, smtp, db, monkeypatch) -> None:
    monkeypatch.setenv("ESPOMAIL_MESSAGE_ID_DOMAIN", "CRM.Example.com")
    box = replying()
    dovecot.append(box, build_message(from_="jane@customer.example", to="support@acme.example"))
    assert espomail("fetch").exit_code == 0
    assert generated_ids(db)[0].endswith("@crm.example.com>")


# -- recognising our ids: loop guard and parent -------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "configured", "dropped"),
    [
        ("acme.example", None, True),  # the account's domain
        ("ACME.example", None, True),
        ("crm.example.com", "crm.example.com", True),  # the configured one
        ("oldhost.localdomain", None, True),  # the old FQDN form
        ("other.example", None, False),
        ("customer.example", None, False),
    ],
)
def test_loop_guard_knows_every_domain_of_ours(
    espomail, replying, dovecot, smtp, db, fqdn, monkeypatch, domain, configured, dropped
) -> None:
    fqdn("oldhost")
    if configured:
        monkeypatch.setenv("ESPOMAIL_MESSAGE_ID_DOMAIN", configured)
    box = replying()
    back = build_message(
        from_="jane@customer.example", to="support@acme.example", message_id=f"<espomail.system.65f0.a1b2@{domain}>"
    )
    dovecot.append(box, back)
    assert espomail("fetch").exit_code == 0
    assert states(db) == (["dropped"] if dropped else ["done"])
    assert len(smtp.messages) == (0 if dropped else 1)


@pytest.mark.parametrize(
    ("configured", "generated_under"),
    [
        ("crm.example.com", "crm.example.com"),
        ("crm.example.com", "acme.example"),  # made before message_id_domain was set
        ("crm.example.com", "oldhost.localdomain"),  # made by an older espomail
        (None, "acme.example"),
        (None, "oldhost.localdomain"),
    ],
)
def test_answers_link_back_whatever_domain_the_id_was_made_under(
    espomail, replying, dovecot, smtp, db, fqdn, monkeypatch, configured, generated_under
) -> None:
    fqdn("oldhost")
    if configured:
        monkeypatch.setenv("ESPOMAIL_MESSAGE_ID_DOMAIN", configured)
    box = replying()
    dovecot.append(box, build_message(from_="jane@customer.example", to="support@acme.example", subject="First"))
    assert espomail("fetch").exit_code == 0
    answer = build_message(
        from_="someone@elsewhere.example",
        to="support@acme.example",
        subject="Re: something",
        references=f"<espomail.case-1.65f0.a1b2@{generated_under}>",
    )
    dovecot.append(box, answer)
    assert espomail("fetch").exit_code == 0
    shown = espomail("email", "list", "--json").json
    rows = shown["items"] if isinstance(shown, dict) else shown
    newest = next(r for r in rows if r["subject"] == "Re: something")
    assert newest["parent"] == {"type": "case", "id": 1}, newest
