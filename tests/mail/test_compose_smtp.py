"""Generated headers never fail and never inject (issue 12 item 7); international addresses
(EAI, SPEC 11): parsed, stored in one form, sent with SMTPUTF8 when offered, else a clear
SendError (never a UnicodeEncodeError). Sending uses a real aiosmtpd server."""

from __future__ import annotations

import pytest

from espomail.mail import compose, smtp, templates
from espomail.mail.addresses import ascii_form, header_text, matching_key, needs_smtputf8, unicode_form
from espomail.mail.parse import parse_message
from espomail.testing.smtp import RecordingSMTP

EAI = "Marilù.Gioffré@esempio-università.it"
IDN_ONLY = "info@esempio-università.it"
SEPARATORS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\r", "\n", "\r\n", "\x1c", "\x1d", "\x1e", "\x00", "\x7f"]


def build(subject: str = "s", name: str = "Support", to: str = "carol@example.net", **extra) -> bytes:
    return compose.build((name, "support@example.com"), [to], subject, "body\n", "<id@crm.example.com>", **extra)


@pytest.mark.parametrize("separator", SEPARATORS)
def test_a_subject_with_line_separators_is_one_safe_header(separator):
    raw = build(subject=f"Re: help{separator}Bcc: victim@example.org{separator}X-Evil: 1")
    parsed = parse_message(raw)
    assert parsed.bcc == [] and "x-evil" not in parsed.headers
    assert parsed.subject == "Re: help Bcc: victim@example.org X-Evil: 1"
    assert raw.count(b"\r\nSubject:") == 1


@pytest.mark.parametrize("separator", SEPARATORS)
def test_display_names_and_other_headers_cannot_inject(separator):
    raw = build(
        name=f"Support{separator}Bcc: victim@example.org",
        reply_to=f"reply@example.com{separator}Cc: x@example.org",
        in_reply_to=f"<a@b>{separator}X-Evil: 1",
        references=[f"<r@b>{separator}X-Evil: 2"],
        headers={"X-Custom": f"v{separator}X-Evil: 3"},
    )
    parsed = parse_message(raw)
    assert parsed.bcc == [] and parsed.cc == [] and "x-evil" not in parsed.headers
    assert parsed.from_.address == "support@example.com"


def test_an_auto_reply_subject_from_a_hostile_customer_subject_renders():
    """The template {subject} and {sender_name} of issue 12 item 7: U+2028, U+0085, \\x0b,
    \\x0c in the subject, an encoded CR/LF in the display name."""
    incoming = parse_message(
        b"From: =?utf-8?q?Eve=0D=0ABcc=3A_x=40evil=2Eexample?= <eve@example.net>\n"
        b"Subject: =?utf-8?b?T3JkZXIg4oCoIEJjYzogeEBldmlsLmV4YW1wbGUgwoULDA==?=\n\nbody"
    )
    values = {"subject": incoming.subject, "sender_name": incoming.from_.name}
    for template in ("Re: {subject}", "Thanks {sender_name}: {subject}"):
        subject = templates.render(template, values)
        assert templates.render_line(template, values) == header_text(subject)
        raw = build(subject=subject, name=incoming.from_.name)
        parsed = parse_message(raw)
        assert parsed.bcc == [] and "\n" not in parsed.subject and "Order" in parsed.subject


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a\u2028b", "a b"), (" a\r\n\tb ", "a b"), ("x" * 10, "x" * 10), (None, ""), ("\x00", ""), ("ä\x85ö", "ä ö")],
)
def test_header_text(value, expected):
    assert header_text(value) == expected


# ----------------------------------------------------------------------------- EAI


def test_the_corpus_eai_sender_is_parsed_and_kept():
    raw = (
        "From: =?ISO-8859-1?Q?Maril=F9?= Gioffré ♥ <Marilù.Gioffré@esempio-università.it>\n"
        "To: info@xn--esempio-universit-4ob.it\nCc: θσερ@εχαμπλε.ψομ\n\nx"
    ).encode()
    parsed = parse_message(raw)
    assert parsed.from_.address == EAI and parsed.from_.name == "Marilù Gioffré ♥"
    assert parsed.to[0].address == IDN_ONLY  # the punycode domain is stored in its Unicode form
    assert parsed.cc[0].address == "θσερ@εχαμπλε.ψομ"
    assert parsed.from_.lower == "marilù.gioffré@esempio-università.it"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("info@xn--esempio-universit-4ob.it", IDN_ONLY),
        ("INFO@XN--ESEMPIO-UNIVERSIT-4OB.IT", IDN_ONLY),
        ("Marilu\u0300.Gioffre\u0301@esempio-università.it", EAI),  # decomposed (NFD) accents
        ("x@Sörensen.example.com", "x@xn--srensen-90a.example.com"),
    ],
)
def test_punycode_and_unicode_forms_match(one, other):
    assert matching_key(one) == matching_key(other)
    assert unicode_form(one).lower() == unicode_form(other).lower()


@pytest.mark.parametrize(
    ("address", "wire", "utf8"),
    [
        ("a@example.com", "a@example.com", False),
        (IDN_ONLY, "info@xn--esempio-universit-4ob.it", False),
        ("x@faß.de", "x@xn--fa-hia.de", False),  # IDNA 2008: not fass.de
        (EAI, "Marilù.Gioffré@xn--esempio-universit-4ob.it", True),
        ("θσερ@εχαμπλε.ψομ", "θσερ@xn--mxahbxey0c.xn--xxaf0a", True),
    ],
)
def test_wire_forms(address, wire, utf8):
    assert ascii_form(address) == wire and needs_smtputf8(address) is utf8


def test_a_message_to_an_eai_address_has_raw_utf8_headers():
    raw = build(to=EAI, name="Zoë")
    assert "To: Marilù.Gioffré@xn--esempio-universit-4ob.it".encode() in raw
    parsed = parse_message(raw)
    assert parsed.to[0].address == EAI and parsed.from_.name == "Zoë"
    ascii_raw = build(to=IDN_ONLY)
    assert ascii_raw.isascii() and b"To: info@xn--esempio-universit-4ob.it" in ascii_raw


def config(server: RecordingSMTP) -> smtp.SmtpConfig:
    return smtp.SmtpConfig("test", server.host, server.port, "none", None, None)


@pytest.mark.parametrize(("sender", "recipient"), [("support@example.com", EAI), (EAI, "carol@example.net")])
def test_sending_eai_uses_smtputf8_when_offered(sender, recipient):
    with RecordingSMTP(smtputf8=True) as server:
        raw = compose.build(("S", sender), [recipient], "Grüße", "body é\n", "<x@crm.example.com>")
        smtp.send(config(server), 10, sender, [recipient], raw)
        [received] = server.messages
    assert ascii_form(recipient) in received.rcpt_tos
    assert received.mail_from == ascii_form(sender)
    assert parse_message(received.data).subject == "Grüße"


@pytest.mark.parametrize(("sender", "recipient"), [("support@example.com", EAI), (EAI, "carol@example.net")])
def test_sending_eai_without_smtputf8_is_a_clear_send_error(sender, recipient):
    with RecordingSMTP(smtputf8=False) as server:
        raw = compose.build(("S", sender), [recipient], "s", "body\n", "<x@crm.example.com>")
        with pytest.raises(smtp.SendError) as error:
            smtp.send(config(server), 10, sender, [recipient], raw)
        assert server.messages == []
    message = error.value.message
    assert "does not support SMTPUTF8" in message and "Marilù.Gioffré@" in message
    assert error.value.exit_code == 1


def test_an_idn_domain_with_an_ascii_local_part_needs_no_smtputf8():
    with RecordingSMTP(smtputf8=False) as server:
        raw = compose.build(("S", "support@example.com"), [IDN_ONLY], "s", "body\n", "<x@crm.example.com>")
        smtp.send(config(server), 10, "support@example.com", [IDN_ONLY], raw)
        [received] = server.messages
    assert received.rcpt_tos == ["info@xn--esempio-universit-4ob.it"]
