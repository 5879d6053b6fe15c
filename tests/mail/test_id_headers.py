"""In-Reply-To and References are never RFC 2047-encoded (leftovers item 5).

An encoded id is no id: the answer would not thread. Ids go out as they are; one that
cannot (non-ASCII without raw UTF-8 headers, not ``<...>``, too long) is left out.
"""

from __future__ import annotations

import email
import email.policy

import pytest

from espomail.mail import compose
from espomail.mail.parse import parse_message

LONG = "<" + "a" * 300 + "@mail.example>"


def build(to="c@customer.example", in_reply_to=None, references=()):
    return compose.build(
        ("Support", "support@acme.example"),
        [to],
        "Re: x",
        "body",
        "<espomail.case-1.1.a@acme.example>",
        in_reply_to=in_reply_to,
        references=references,
    )


def header_block(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")


@pytest.mark.parametrize(
    ("parent", "references", "sent_parent", "sent_references"),
    [
        ("<p@x.example>", ["<r@x.example>", "<p@x.example>"], "<p@x.example>", ["<r@x.example>", "<p@x.example>"]),
        (LONG, [LONG, "<b@x.example>"], LONG, [LONG, "<b@x.example>"]),  # long ASCII ids: folded, never encoded
        ("<réf@x.example>", ["<r@x.example>", "<réf@x.example>"], None, ["<r@x.example>"]),
        ("<p@x.example>", ["<日本@x.example>", "<p@x.example>"], "<p@x.example>", ["<p@x.example>"]),
        ("<a b@x.example>", ["<a\nb@x.example>", "no-brackets@x.example"], None, []),
        ("<" + "z" * 950 + "@x.example>", [], None, []),
    ],
)
def test_ids_go_out_as_they_are_or_not_at_all(parent, references, sent_parent, sent_references):
    raw = build(in_reply_to=parent, references=references)
    head = header_block(raw)
    assert "=?" not in head.split("Subject:")[0] + head.split("Message-ID:")[1]
    assert raw.isascii()  # an ASCII message stays one: no SMTPUTF8 needed for an id
    parsed = parse_message(raw)
    assert parsed.in_reply_to == sent_parent
    assert parsed.references == sent_references
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Message-ID"] == "<espomail.case-1.1.a@acme.example>"


def test_non_ascii_ids_go_as_they_are_in_an_international_message():
    raw = build(to="marilù@esempio.it", in_reply_to="<réf@x.example>", references=["<réf@x.example>", "<r@x.example>"])
    head = header_block(raw)
    assert "In-Reply-To: <réf@x.example>" in head and "=?" not in head.split("Message-ID:")[1]
    parsed = parse_message(raw)
    assert parsed.in_reply_to == "<réf@x.example>"
    assert parsed.references == ["<réf@x.example>", "<r@x.example>"]


def test_no_ids_no_headers():
    head = header_block(build())
    assert "In-Reply-To" not in head and "References" not in head
