"""espomail.mail.parse on small hand-made messages: decoding, MIME walking, flags, keys,
and that nothing ever raises."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime

import pytest

from espomail.mail import msgid, parse
from espomail.mail.parse import (
    MAX_BODY_CHARS,
    NO_SUBJECT,
    Address,
    extract_part,
    header_block,
    key_for,
    parse_headers,
    parse_message,
)


def raw(*lines: str | bytes, nl: bytes = b"\n") -> bytes:
    """A message from lines (str as UTF-8), joined with ``nl``."""
    return nl.join(line if isinstance(line, bytes) else line.encode("utf-8") for line in lines)


def simple(*headers: str | bytes, body: str | bytes = "Hello\n") -> bytes:
    return raw("From: Alice <alice@example.com>", "To: bob@example.com", *headers, "", body)


def all_strings(email: parse.ParsedEmail) -> list[str]:
    found = [email.subject, email.body_text or "", email.body_html or "", email.message_id or ""]
    found += [value for values in email.headers.values() for value in values] + email.defects
    for address in [email.from_, *email.to, *email.cc, *email.bcc, *email.reply_to]:
        if address is not None:
            found += [address.name, address.address]
    for attachment in email.attachments:
        found += [attachment.filename or "", attachment.content_id or "", attachment.content_type]
    return found


# ------------------------------------------------------------------------------ headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=", "Grüße aus Köln"),
        ("=?iso-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème"),
        ("=?ISO-8859-1?q?Caf=E9?= and =?UTF-8?Q?cr=C3=A8me?= =?utf-8?B?YnLDu2zDqWU=?=", "Café and crèmebrûlée"),
        ("Re: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= (fwd)", "Re: Grüße (fwd)"),
        # one UTF-8 character split over two encoded words
        ("=?utf-8?B?4oI=?= =?utf-8?B?rA==?= 10", "€ 10"),
        ("=?windows-1251?B?z/Do4uXy?=", "Привет"),
        ("=?NONE?B?VEVTVA==?=", "TEST"),
        ("=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated"),
        ("Folded\r\n  subject", "Folded  subject"),
    ],
)
def test_rfc2047_subjects(header, expected):
    assert parse_message(simple(f"Subject: {header}")).subject == expected


@pytest.mark.parametrize("subject", [None, "", "   ", "=?utf-8?B??="])
def test_empty_subject_becomes_no_subject(subject):
    headers = [] if subject is None else [f"Subject: {subject}"]
    assert parse_message(simple(*headers)).subject == NO_SUBJECT == "(No Subject)"


def test_raw_8bit_headers_utf8_and_latin1():
    email = parse_message(simple("Subject: Grüße".encode(), "Cc: Jürgen Weiß <jw@example.com>".encode("latin-1")))
    assert email.subject == "Grüße"
    assert email.cc == [Address("Jürgen Weiß", "jw@example.com")]
    assert any("8-bit" in note for note in email.defects)


def test_raw_8bit_headers_in_the_message_charset():
    message = raw(
        "From: a@example.com",
        "Subject: 朱镕基".encode("gbk"),
        'Content-Type: text/plain; charset="gb2312"',
        "",
        "正文".encode("gbk"),
    )
    email = parse_message(message)
    assert email.subject == "朱镕基"
    assert email.body_text == "正文"


def test_addresses_decoded_and_filtered():
    email = parse_message(
        raw(
            'From: "=?utf-8?Q?Andr=C3=A9?= Pirard" <andre@example.org>, second@example.org',
            "To: undisclosed-recipients:;",
            "Cc: =?iso-8859-1?Q?M=FCller=2C_Hans?= <hm@example.de>, not-an-address, c@x.example",
            "Bcc: <hidden@example.com>",
            "Reply-To: Support Team <Support@Example.COM>",
            "",
            "x",
        )
    )
    assert email.from_ == Address("André Pirard", "andre@example.org")
    assert email.to == []
    assert email.cc == [Address("Müller, Hans", "hm@example.de"), Address("", "c@x.example")]
    assert email.bcc == [Address("", "hidden@example.com")]
    assert email.reply_to[0].lower == "support@example.com"
    assert email.reply_to[0].address == "Support@Example.COM"


def test_address_lists_are_capped():
    many = ", ".join(f"user{i}@example.com" for i in range(1500))
    email = parse_message(simple(f"Cc: {many}"))
    assert len(email.cc) == parse.MAX_ADDRESSES == 1000
    assert email.cc[-1].address == "user999@example.com"


def test_message_id_references_and_in_reply_to_are_normalised():
    email = parse_message(
        simple(
            "Message-ID:  <Abc.DEF@Mail.Example.COM>",
            "In-Reply-To: <Parent@EXAMPLE.net> (sent earlier)",
            "References: <Root@Example.NET>\r\n <Parent@EXAMPLE.net>",
        )
    )
    assert email.message_id == "<Abc.DEF@mail.example.com>"
    assert email.in_reply_to == "<Parent@example.net>"
    assert email.references == ["<Root@example.net>", "<Parent@example.net>"]
    assert email.message_id == msgid.normalize("<Abc.DEF@Mail.Example.COM>")


def test_no_message_id():
    email = parse_message(simple())
    assert email.message_id is None and email.in_reply_to is None and email.references == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 1 Jul 2003 10:52:37 +0200", datetime(2003, 7, 1, 8, 52, 37, tzinfo=UTC)),
        ("1 Jul 2003 10:52:37 -0000", datetime(2003, 7, 1, 10, 52, 37, tzinfo=UTC)),
        ("Thu, 13 Feb 1969 23:32:54 -0330 (Newfoundland Time)", datetime(1969, 2, 14, 3, 2, 54, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
    ],
)
def test_date_is_aware_utc_or_none(value, expected):
    assert parse_message(simple(f"Date: {value}")).date == expected


def test_headers_dict_keeps_every_value_in_order_decoded():
    email = parse_message(
        simple(
            "Received: from a",
            "X-Custom: =?utf-8?Q?caf=C3=A9?=",
            "received: from b\r\n\tby c",
            "Subject: x\x00y",
        )
    )
    assert email.headers["received"] == ["from a", "from b\tby c"]
    assert email.headers["x-custom"] == ["café"]
    assert email.headers["from"] == ["Alice <alice@example.com>"]
    assert email.subject == "xy"


# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("headers", "auto_reply", "auto_submitted"),
    [
        ([], False, False),
        (["X-Autoreply: yes"], True, True),
        (["X-Autorespond: vacation"], True, True),
        (["Auto-Submitted: auto-replied; owner-email=x@example.com"], True, True),
        (["Auto-Submitted: auto-generated"], False, True),
        (["Auto-Submitted: Auto-Notified"], False, True),
        (["Auto-Submitted: no"], False, False),
        (["Auto-Submitted:  No "], False, False),
    ],
)
def test_auto_reply_flags(headers, auto_reply, auto_submitted):
    email = parse_message(simple(*headers))
    assert (email.is_auto_reply, email.is_auto_submitted) == (auto_reply, auto_submitted)


BOUNCE = raw(
    "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>",
    "To: alice@example.com",
    "Subject: Undelivered Mail Returned to Sender",
    'Content-Type: multipart/report; report-type=delivery-status; boundary="rpt"',
    "",
    "--rpt",
    "Content-Type: text/plain",
    "Content-Disposition: inline; filename=notice.txt",
    "",
    "I'm sorry to have to inform you that your message could not be delivered.",
    "--rpt",
    "Content-Type: message/delivery-status",
    "",
    "Reporting-MTA: dns; mx.example.com",
    "",
    "Final-Recipient: rfc822; nobody@example.com",
    "Action: failed",
    "Status: 5.1.1",
    "--rpt",
    "Content-Type: message/rfc822",
    "",
    "From: alice@example.com",
    "To: nobody@example.com",
    "Subject: Quarterly numbers",
    "",
    "The returned body must not become our text.",
    "--rpt--",
)


def test_multipart_report_is_a_bounce_with_the_human_text_as_body():
    email = parse_message(BOUNCE)
    assert email.is_bounce
    assert email.body_text == "I'm sorry to have to inform you that your message could not be delivered."
    assert [(a.content_type, a.filename, a.part) for a in email.attachments] == [
        ("message/delivery-status", None, "2"),
        ("message/rfc822", "Quarterly numbers.eml", "3"),
    ]
    assert "returned body" not in email.body_text
    assert extract_part(BOUNCE, "3").startswith(b"From: alice@example.com\nTo: nobody@example.com")


@pytest.mark.parametrize(
    "headers",
    [
        ["Content-Type: multipart/report; report-type=feedback-report; boundary=x"],
        ["Sender: x@example.com", "Return-Path: <>"],
        ["Return-Path: < >"],
    ],
)
def test_other_bounce_signals(headers):
    assert parse_message(simple(*headers)).is_bounce


@pytest.mark.parametrize("sender", ["postmaster@example.com", "Mailer-Daemon@example.com", "MAILER-DAEMON"])
def test_bounce_senders(sender):
    assert parse_message(raw(f"From: {sender}", "", "x")).is_bounce


def test_ordinary_mail_is_not_a_bounce():
    email = parse_message(simple("Return-Path: <alice@example.com>", "Content-Type: text/plain"))
    assert not email.is_bounce


# ----------------------------------------------------------------------------- bodies

ALTERNATIVE = raw(
    "From: a@example.com",
    "Subject: alt",
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="=_alt 1"',
    "",
    "This is the preamble.",
    "--=_alt 1",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Gr=C3=BC=C3=9Fe, a long line that is soft=",
    " broken.",
    "--=_alt 1",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<p>Grüße</p>",
    "--=_alt 1--",
    "This is the epilogue.",
    nl=b"\r\n",
)


def test_multipart_alternative_text_and_html():
    email = parse_message(ALTERNATIVE)
    assert email.body_text == "Grüße, a long line that is soft broken."
    assert email.body_html == "<p>Grüße</p>"
    assert email.attachments == [] and email.defects == []


def test_html_only_gives_derived_text():
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<script>alert('x')</script><!-- hidden --><p>Caf&eacute; &amp; bar&nbsp;&lt;ok&gt;</p>"
        "<p></p><p></p><p></p><div>Second&#33;</div><br>third</body></html>"
    )
    email = parse_message(simple("Content-Type: text/html; charset=utf-8", body=html))
    assert email.body_html == html
    assert email.body_text == "Café & bar <ok>\n\nSecond!\n\nthird"


def test_html_charset_from_meta_tag():
    html = '<html><head><meta charset="windows-1252"></head><body>Caf\xe9</body></html>'.encode("latin-1")
    email = parse_message(simple("Content-Type: text/html", body=html))
    assert "Café" in email.body_html


def test_several_inline_text_parts_are_joined():
    message = raw(
        "From: a@example.com",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: text/plain",
        "",
        "first",
        "--b",
        "Content-Type: image/png",
        "Content-Disposition: inline; filename=x.png",
        "Content-Transfer-Encoding: base64",
        "",
        "iVBORw0KGgo=",
        "--b",
        "Content-Type: text/plain",
        "Content-Disposition: inline",
        "",
        "second",
        "--b",
        "Content-Type: text/plain; name=notes.txt",
        "Content-Disposition: attachment; filename=notes.txt",
        "",
        "an attachment",
        "--b--",
    )
    email = parse_message(message)
    assert email.body_text == "first\nsecond"
    assert [(a.filename, a.content_type, a.size, a.is_inline) for a in email.attachments] == [
        ("x.png", "image/png", 8, False),
        ("notes.txt", "text/plain", 13, False),
    ]


def test_body_charset_fallbacks():
    latin1_as_utf8 = parse_message(
        simple("Content-Type: text/plain; charset=utf-8", body="Café crème".encode("latin-1"))
    )
    assert latin1_as_utf8.body_text == "Café crème"
    assert any("labelled utf-8" in note for note in latin1_as_utf8.defects)
    gbk_as_gb2312 = parse_message(simple("Content-Type: text/plain; charset=gb2312", body="朱镕基".encode("gbk")))
    assert gbk_as_gb2312.body_text == "朱镕基"
    utf8_as_latin1 = parse_message(simple("Content-Type: text/plain; charset=iso-8859-1", body="Grüße".encode()))
    assert utf8_as_latin1.body_text == "Grüße"


@pytest.mark.parametrize(
    ("label", "data", "expected"),
    [
        ("unknown-8bit", "Café".encode("cp1252"), "Café"),
        ("x-user-defined", "Grüße".encode(), "Grüße"),
        ("utf8", "Grüße".encode(), "Grüße"),
        ("cp-850", "Café".encode("cp850"), "Café"),
        ("ks_c_5601-1987", "안녕하세요".encode("cp949"), "안녕하세요"),
        ("iso-2022-jp", "日本語のテキスト".encode("iso2022_jp"), "日本語のテキスト"),
        ("iso-2022-jp", b"\x1b$B-b\x1b(B", "№"),  # NEC row 13: only in Microsoft's CP50220
        ("shift_jis", "①髙".encode("cp932"), "①髙"),
        ("x-no-such-charset", "Grüße".encode(), "Grüße"),
        ('"windows-1252"', "€uro".encode("cp1252"), "€uro"),
        ("utf-7", b"+2D3YAQ- A", "?? A"),  # lone surrogates: not storable, replaced
        ("unicode_escape", b"\\x00 ok", "\\x00 ok"),  # a codec, not a charset: not used
    ],
)
def test_charset_labels(label, data, expected):
    email = parse_message(simple(f"Content-Type: text/plain; charset={label}", body=data))
    assert email.body_text == expected
    email.body_text.encode("utf-8")


def test_nul_characters_never_leave_the_parser():
    message = raw(
        b"From: a\x00b <ab@example.com>",
        b"Subject: one\x00two",
        b"Content-Type: multipart/mixed; boundary=b",
        b"",
        b"--b",
        b"Content-Type: text/plain",
        b"",
        b"bo\x00dy",
        b"--b",
        b'Content-Type: application/octet-stream; name="f\x00.bin"',
        b"",
        b"\x00\x00",
        b"--b--",
    )
    email = parse_message(message)
    assert email.subject == "onetwo" and email.body_text == "body"
    assert email.attachments[0].filename == "f.bin"
    assert not any("\x00" in text for text in all_strings(email))


def test_body_text_and_html_are_capped():
    big = "x" * (MAX_BODY_CHARS + 10)
    email = parse_message(simple(body=big))
    assert len(email.body_text) == MAX_BODY_CHARS
    assert any("body_text cut" in note for note in email.defects)
    email = parse_message(simple("Content-Type: text/html", body=f"<p>{big}</p>"))
    assert len(email.body_html) == MAX_BODY_CHARS and len(email.body_text) <= MAX_BODY_CHARS
    assert any("body_html cut" in note for note in email.defects)


def test_message_rfc822_is_one_attachment_not_body():
    message = raw(
        "From: a@example.com",
        "Subject: Fwd",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: text/plain",
        "",
        "See below.",
        "--b",
        "Content-Type: message/rfc822",
        "",
        "From: c@example.com",
        "Subject: =?utf-8?Q?Invoice_3/2024_f=C3=BCr_you?=",
        "Content-Type: multipart/mixed; boundary=inner",
        "",
        "--inner",
        "Content-Type: text/plain",
        "",
        "inner text",
        "--inner",
        "Content-Type: application/pdf; name=inner.pdf",
        "",
        "%PDF",
        "--inner--",
        "--b",
        "Content-Type: message/rfc822",
        "",
        "From: d@example.com",
        "",
        "no subject",
        "--b--",
    )
    email = parse_message(message)
    assert email.body_text == "See below."
    assert [a.filename for a in email.attachments] == ["Invoice 3 2024 für you.eml", "message.eml"]
    assert [a.part for a in email.attachments] == ["2", "3"]


def test_smime_and_tnef_are_attachments():
    signed = raw(
        "From: a@example.com",
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=s',
        "",
        "--s",
        "Content-Type: text/plain",
        "",
        "signed text",
        "--s",
        "Content-Type: application/pkcs7-signature; name=smime.p7s",
        "Content-Transfer-Encoding: base64",
        "",
        "MIAGCSqGSIb3DQEHAqCAMIACAQEx",
        "--s",
        "Content-Type: application/ms-tnef; name=winmail.dat",
        "Content-Transfer-Encoding: base64",
        "",
        "eJ8+IgAA",
        "--s--",
    )
    email = parse_message(signed)
    assert email.body_text == "signed text"
    assert [(a.filename, a.content_type, a.size) for a in email.attachments] == [
        ("smime.p7s", "application/pkcs7-signature", 21),
        ("winmail.dat", "application/ms-tnef", 6),
    ]
    enveloped = parse_message(
        raw(
            "From: a@example.com",
            'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
            "Content-Transfer-Encoding: base64",
            "",
            "MIAGCSqGSIb3DQEHA6CAMIACAQAx",
        )
    )
    assert enveloped.body_text is None
    assert [(a.filename, a.content_type, a.part) for a in enveloped.attachments] == [
        ("smime.p7m", "application/pkcs7-mime", "1")
    ]


def test_text_with_filename_at_top_level_is_still_the_body():
    email = parse_message(simple('Content-Type: text/plain; name="body.txt"', body="the body"))
    assert email.body_text == "the body" and email.attachments == []


# ------------------------------------------------------------------------ attachments

RELATED = raw(
    "From: a@example.com",
    "Content-Type: multipart/related; boundary=rel",
    "",
    "--rel",
    "Content-Type: text/html",
    "",
    '<p>Logo: <img src="CID:Logo.123@Example"> <img src="chart.png"></p>',
    "--rel",
    "Content-Type: image/png",
    "Content-ID: <Logo.123@Example>",
    "Content-Transfer-Encoding: base64",
    "",
    "iVBORw0KGgoAAAANSUhEUg==",
    "--rel",
    "Content-Type: image/png; name=chart.png",
    "Content-Disposition: inline; filename=chart.png",
    "Content-Transfer-Encoding: base64",
    "",
    "iVBORw0K",
    "--rel",
    "Content-Type: image/gif",
    "Content-ID: <unused@example>",
    "Content-Transfer-Encoding: base64",
    "",
    "R0lGODlh",
    "--rel--",
)


def test_inline_images_referenced_by_the_html():
    email = parse_message(RELATED)
    assert [(a.content_id, a.filename, a.is_inline, a.size) for a in email.attachments] == [
        ("Logo.123@Example", None, True, 16),
        (None, "chart.png", True, 6),
        ("unused@example", None, False, 6),
    ]


@pytest.mark.parametrize("length", [0, 1, 2, 3, 56, 57, 58, 1000, 100_001])
@pytest.mark.parametrize("nl", [b"\n", b"\r\n"])
def test_base64_attachment_size_without_decoding(length, nl, monkeypatch):
    payload = random.Random(length).randbytes(length)
    encoded = base64.encodebytes(payload).replace(b"\n", nl)
    message = raw(
        "From: a@example.com",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: application/octet-stream; name=data.bin",
        "Content-Transfer-Encoding: base64",
        "",
        encoded + nl + nl,
        "--b--",
        nl=nl,
    )
    monkeypatch.setattr(parse, "_b64decode", lambda data: pytest.fail("attachment decoded"))
    email = parse_message(message)
    assert email.attachments[0].size == length
    monkeypatch.undo()
    assert extract_part(message, email.attachments[0].part) == payload


def test_base64_size_with_irregular_lines():
    payload = bytes(range(256)) * 3
    text = base64.b64encode(payload)
    lines = [text[:10], text[10:100], text[100:101], text[101:]]
    message = simple("Content-Type: image/jpeg", "Content-Transfer-Encoding: base64", body=b"\n".join(lines) + b"\n")
    email = parse_message(message)
    assert email.attachments[0].size == len(payload)
    assert extract_part(message, "1") == payload


def test_extract_part_returns_exact_decoded_bytes_of_nested_parts():
    pdf = b"%PDF-1.4\n\x00\xff binary \r\n end"
    message = raw(
        "From: a@example.com",
        "Content-Type: multipart/mixed; boundary=outer",
        "",
        "--outer",
        "Content-Type: multipart/alternative; boundary=inner",
        "",
        "--inner",
        "Content-Type: text/plain",
        "",
        "plain",
        "--inner",
        "Content-Type: application/pdf; name=a.pdf",
        "Content-Transfer-Encoding: base64",
        "",
        base64.b64encode(pdf).decode(),
        "--inner--",
        "",
        "--outer",
        "Content-Type: text/csv; name=b.csv",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "a;b=3Dc;=C3=A9",
        "--outer",
        "Content-Type: application/octet-stream; name=c.txt",
        "Content-Transfer-Encoding: x-uuencode",
        "",
        "begin 644 c.txt",
        "#86)C",
        "`",
        "end",
        "--outer--",
    )
    email = parse_message(message)
    assert [(a.filename, a.part, a.size) for a in email.attachments] == [
        ("a.pdf", "1.2", len(pdf)),
        ("b.csv", "2", 8),
        ("c.txt", "3", 3),
    ]
    assert extract_part(message, "1.2") == pdf
    assert extract_part(message, "2") == "a;b=c;é".encode()
    assert extract_part(message, "3") == b"abc"
    assert extract_part(message, "1.1") == b"plain"
    assert extract_part(message, "9") == b""
    assert extract_part(message, "garbage") == b""


def test_rfc2231_and_rfc2047_file_names():
    message = raw(
        "From: a@example.com",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: application/pdf",
        "Content-Disposition: attachment;",
        " filename*0*=utf-8''%E2%82%AC%20rates%20;",
        " filename*1*=f%C3%BCr%202024;",
        ' filename*2=".pdf"',
        "",
        "x",
        "--b",
        "Content-Type: application/pdf; name*=iso-8859-1'de'Gr%FC%DFe.pdf",
        "",
        "x",
        "--b",
        'Content-Type: application/pdf; name="=?utf-8?B?0L7RgtGH0ZHRgi5wZGY=?="',
        "",
        "x",
        "--b",
        "Content-Type: application/pdf",
        'Content-Disposition: attachment; filename="long\r\n name.pdf"; filename*0="ignored"',
        "",
        "x",
        "--b--",
    )
    names = [a.filename for a in parse_message(message).attachments]
    assert names == ["€ rates für 2024.pdf", "Grüße.pdf", "отчёт.pdf", "ignored"]


# -------------------------------------------------------------------- broken structure


def test_missing_closing_boundary():
    message = raw(
        "From: a@example.com",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: text/plain",
        "",
        "text",
        "--b",
        "Content-Type: application/zip; name=a.zip",
        "Content-Transfer-Encoding: base64",
        "",
        "UEsDBA==",
    )
    email = parse_message(message)
    assert email.body_text == "text"
    assert [(a.filename, a.size) for a in email.attachments] == [("a.zip", 4)]
    assert "missing closing MIME boundary" in email.defects


def test_multipart_without_boundary_is_read_as_text():
    email = parse_message(simple("Content-Type: multipart/mixed", body="just text\n"))
    assert email.body_text == "just text\n"
    assert any("boundary" in note for note in email.defects)


def test_wrong_boundary_is_guessed():
    message = raw(
        "From: a@example.com",
        'Content-Type: multipart/alternative; boundary="----=_Part_1"',
        "",
        "----=_Part_1",  # written without the leading "--"
        "Content-Type: text/plain",
        "",
        "plain",
        "----=_Part_1",
        "Content-Type: text/html",
        "",
        "<b>html</b>",
        "----=_Part_1--",
    )
    email = parse_message(message)
    assert (email.body_text, email.body_html) == ("plain", "<b>html</b>")
    assert any("not found" in note for note in email.defects)


def test_boundary_lookalikes_are_not_delimiters():
    message = raw(
        "From: a@example.com",
        "Content-Type: multipart/mixed; boundary=abc",
        "",
        "--abc",
        "Content-Type: multipart/alternative; boundary=abcdef",
        "",
        "--abcdef",
        "Content-Type: text/plain",
        "",
        "x --abc inside a line",
        "--abcdef--",
        "--abc--",
    )
    email = parse_message(message)
    assert email.body_text == "x --abc inside a line"
    assert email.defects == []


@pytest.mark.parametrize("nl", [b"\n", b"\r\n", b"\r"])
def test_line_endings(nl):
    message = raw(
        "From: a@example.com",
        "Subject: endings",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: text/plain",
        "",
        "line one",
        "line two",
        "--b",
        "Content-Type: application/octet-stream; name=x.bin",
        "Content-Transfer-Encoding: base64",
        "",
        "AAECAw==",
        "--b--",
        "",
        nl=nl,
    )
    email = parse_message(message)
    assert email.subject == "endings" and email.from_.address == "a@example.com"
    assert email.body_text == "line one\nline two"
    assert email.attachments[0].size == 4
    assert extract_part(message, "2") == b"\x00\x01\x02\x03"
    headers = [b"From: a@example.com", b"Subject: endings", b"Content-Type: multipart/mixed; boundary=b", b""]
    assert header_block(message) == nl.join(headers)


def test_mbox_from_line_and_bom_are_skipped():
    message = b"\xef\xbb\xbfFrom alice@example.com Mon Jan  1 00:00:00 2024\nSubject: mbox\n\nbody\n"
    email = parse_message(message)
    assert email.subject == "mbox" and email.body_text == "body\n"
    assert "from" not in email.headers
    assert header_block(message) == b"Subject: mbox\n"
    obsolete = parse_message(b"From : Old Syntax <old@example.com>\nSubject: obs\n\nx")
    assert obsolete.from_ == Address("Old Syntax", "old@example.com")


def test_no_blank_line_after_headers():
    email = parse_message(b"Subject: lone\nthis line is the body\n")
    assert email.subject == "lone" and email.body_text == "this line is the body\n"
    assert any("no empty line" in note for note in email.defects)
    assert parse_message(b"Subject: only a header").subject == "only a header"


def test_deep_nesting_is_bounded():
    depth = 200
    lines = ["From: a@example.com", "Content-Type: multipart/mixed; boundary=b0", ""]
    for level in range(depth):
        lines += [f"--b{level}", f"Content-Type: multipart/mixed; boundary=b{level + 1}", ""]
    lines += [f"--b{depth}", "", "deep", f"--b{depth}--"]
    email = parse_message(raw(*lines))
    assert any("too deep" in note for note in email.defects)


# ---------------------------------------------------------------- headers only, keys


def test_parse_headers_and_headers_only():
    fast = parse_headers(ALTERNATIVE)
    assert fast.subject == "alt" and fast.body_text is None and fast.body_html is None
    assert fast.attachments == [] and fast.truncated is False
    truncated = parse_message(ALTERNATIVE, headers_only=True, note="[too big]")
    assert truncated.truncated and truncated.body_text == "[too big]" and truncated.body_html is None
    assert truncated.subject == "alt" and truncated.attachments == []


def test_key_for_message_id():
    message = simple("Message-ID: <X@Example.COM>")
    assert key_for(parse_message(message), message) == ("<X@example.com>", True)


def test_key_for_without_message_id_is_a_stable_fingerprint():
    first = simple("Subject: no id", "Date: Tue, 1 Jul 2003 10:52:37 +0200", body="Body one\n")
    key, has_id = key_for(parse_message(first), first)
    assert has_id is False and key.startswith("<fp.") and msgid.normalize(key) == key
    assert key_for(parse_headers(first), first) == (key, False)
    assert key_for(parse_message(first), first.replace(b"\n", b"\r\n"))[0] == key
    received = b"Received: from mx by imap; Tue, 1 Jul 2003 10:52:38 +0200\n" + first
    assert key_for(parse_message(received), received)[0] == key
    other = simple("Subject: no id", "Date: Tue, 1 Jul 2003 10:52:37 +0200", body="Body two\n")
    assert key_for(parse_message(other), other)[0] != key


# --------------------------------------------------------------------- never raises


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x00",
        b"\r\n\r\n",
        b"From ",
        b":",
        b"\xff\xfe\x00garbage",
        bytes(range(256)) * 20,
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n" * 5000,
        b"Content-Type: text/plain; charset=\x00\n\nx",
        b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n!!!",
        b"Content-Transfer-Encoding: base64\n\n=",
        b"Subject: =?utf-8?B?" + b"A" * 100_000 + b"?=\n\n",
        b"To: " + b"(" * 5000 + b"a@b\n\n",
    ],
)
def test_odd_input_never_raises(message):
    email = parse_message(message)
    assert isinstance(email.subject, str) and email.subject
    assert not any("\x00" in text for text in all_strings(email))
    key_for(email, message)
    parse_headers(message)
    header_block(message)
    for attachment in email.attachments:
        extract_part(message, attachment.part)


def test_random_bytes_never_raise():
    generator = random.Random(7)
    for _ in range(200):
        message = generator.randbytes(generator.randrange(1, 3000))
        if generator.random() < 0.5:
            message = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n" + message
        email = parse_message(message)
        assert not any("\x00" in text for text in all_strings(email))
        assert not any(note.startswith(("unparseable", "MIME structure unreadable")) for note in email.defects)


def test_not_even_bytes_does_not_raise():
    assert parse_message(None).subject == NO_SUBJECT  # type: ignore[arg-type]
    assert parse_message("Subject: str\n\nbody").subject == "str"  # type: ignore[arg-type]
    assert extract_part(None, "1") == b""  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ speed


def test_five_megabyte_attachment_is_parsed_in_milliseconds():
    payload = random.Random(1).randbytes(3_700_000)
    message = raw(
        "From: a@example.com",
        "Subject: big",
        "Content-Type: multipart/mixed; boundary=big",
        "",
        "--big",
        "Content-Type: text/plain",
        "",
        "see attachment",
        "--big",
        "Content-Type: application/octet-stream; name=big.bin",
        "Content-Transfer-Encoding: base64",
        "",
        base64.encodebytes(payload).replace(b"\n", b"\r\n"),
        "--big--",
        nl=b"\r\n",
    )
    assert len(message) > 5_000_000
    # No timing assertion here (bench/parse.py measures it): only the result.
    email = parse_message(message)
    assert email.attachments[0].size == len(payload) and email.body_text == "see attachment"


def test_named_text_parts_that_are_the_only_text_are_the_body():
    mcafee_like = raw(
        "From: a@example.com",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        'Content-Type: text/plain; name="deliveryproblems.txt"',
        "",
        "--- The following addresses had delivery problems ---",
        "--b",
        "Content-Type: message/delivery-status; name=deliverystatus.txt",
        "",
        "Action: failed",
        "--b--",
    )
    email = parse_message(mcafee_like)
    assert email.body_text == "--- The following addresses had delivery problems ---"
    assert [a.content_type for a in email.attachments] == ["message/delivery-status"]
    alternative = raw(
        "From: a@example.com",
        "Content-Type: multipart/alternative; boundary=b",
        "",
        "--b",
        'Content-Type: text/plain; name="plain.txt"',
        "",
        "plain",
        "--b",
        "Content-Type: text/html",
        "",
        "<b>html</b>",
        "--b--",
    )
    email = parse_message(alternative)
    assert (email.body_text, email.body_html, email.attachments) == ("plain", "<b>html</b>", [])
