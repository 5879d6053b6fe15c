"""Loop guards (SPEC 6, issue 12 item 13): every copy of a header counts, lists separated by
commas, semicolons or spaces are read, and a huge From still gives the sender."""

from __future__ import annotations

import pytest

from espomail.mail.loops import auto_reply_blocker, automated_reason
from espomail.mail.parse import parse_message

DOMAIN = "crm.example.com"


def blocker(*headers: str, sender: str = "Carol <carol@customer.example>") -> str | None:
    raw = "\n".join([f"From: {sender}", "To: support@example.com", "Subject: help", *headers, "", "body"]).encode()
    return auto_reply_blocker(parse_message(raw), ("noreply", "no-reply"), {"support@example.com"}, DOMAIN)


@pytest.mark.parametrize(
    "headers",
    [
        ("Auto-Submitted: no", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-replied", "Auto-Submitted: no"),
        ("Auto-Submitted: no", "Auto-Submitted: auto-generated; owner-email=x@y"),
        ("Auto-Submitted: No", "Auto-Submitted: AUTO-NOTIFIED (comment)"),
        ("Auto-Submitted:   auto-replied (vacation)",),
    ],
)
def test_any_copy_of_auto_submitted_other_than_no_blocks(headers):
    reason = blocker(*headers)
    assert reason is not None and reason.startswith("Auto-Submitted")
    raw = ("From: c@customer.example\n" + "\n".join(headers) + "\n\nx").encode()
    assert parse_message(raw).is_auto_submitted


@pytest.mark.parametrize(
    "headers", [(), ("Auto-Submitted: no",), ("Auto-Submitted: no", "Auto-Submitted: NO"), ("Auto-Submitted:",)]
)
def test_auto_submitted_no_does_not_block(headers):
    assert blocker(*headers) is None
    raw = ("From: c@customer.example\n" + "\n".join(headers) + "\n\nx").encode()
    assert not parse_message(raw).is_auto_submitted


@pytest.mark.parametrize(
    "value",
    ["RN;AutoReply", "RN; AutoReply", "DR, RN, NRN, OOF, AutoReply", "rn ; oof", "All", "  autoreply  ", "RN,All"],
)
def test_x_auto_response_suppress_lists(value):
    assert blocker(f"X-Auto-Response-Suppress: {value}").startswith("X-Auto-Response-Suppress")


@pytest.mark.parametrize("value", ["RN", "DR; NRN", "AutoReplyX", "none"])
def test_x_auto_response_suppress_without_autoreply(value):
    assert blocker(f"X-Auto-Response-Suppress: {value}") is None


def test_x_auto_response_suppress_in_a_second_copy():
    assert blocker("X-Auto-Response-Suppress: RN", "X-Auto-Response-Suppress: OOF") is not None


@pytest.mark.parametrize(
    "headers",
    [
        ("Precedence: normal", "Precedence: bulk"),
        ("Precedence: first-class", "X-Precedence: list"),
        ("Precedence: Junk (spam)",),
        ("Precedence: auto_reply",),
        ("X-Autoreply: yes",),
        ("X-Autorespond: anything", "X-Autorespond: again"),
        ("List-Id: <list.example.com>",),
        ("List-Unsubscribe: <mailto:u@example.com>",),
    ],
)
def test_duplicated_and_annotated_automation_headers_block(headers):
    assert blocker(*headers) is not None


def test_precedence_normal_does_not_block():
    assert blocker("Precedence: normal", "Precedence: first-class") is None
    assert automated_reason(parse_message(b"From: a@b.example\nPrecedence: normal\n\nx")) is None


@pytest.mark.parametrize("size", [200_001, 1_000_000])
def test_huge_from_header_keeps_the_sender_and_blocks_nothing_else(size):
    assert blocker(sender='"' + "N" * size + '" <carol@customer.example>') is None
    assert blocker(sender="N" * size + " <noreply@customer.example>").startswith("sender noreply@")


def test_huge_automation_header_values_are_read_in_bounded_time():
    assert blocker("Auto-Submitted: " + "(" * 500_000) is None
    assert blocker("X-Auto-Response-Suppress: " + "RN;" * 300_000 + "OOF") is None  # beyond the first 1,000
    assert blocker("X-Auto-Response-Suppress: OOF;" + "RN;" * 300_000) is not None
