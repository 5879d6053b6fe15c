"""An encoded word never holds an address (issue 17 item 4, RFC 2047 section 5).

A display name such as ``=?utf-8?q?Jane=0D=0ABcc:_x@evil.example?= <jane@customer.example>``
was split as a group ``=?utf-8?q?Jane=0D=0ABcc`` holding ``_x@evil.example?=``: From became
the attacker's address and an auto-reply went there. Encoded words are now opaque while
an address list is split, and decoded only inside the display names afterwards.
"""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from espomail.mail.parse import parse_headers, parse_message

FAST = settings(
    max_examples=300, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
FIELDS = ("from", "to", "cc", "reply-to")


def q_word(text: str, charset: str = "utf-8") -> str:
    """A hostile Q-encoded word: specials left literal (as an attacker writes them), only
    what cannot stand in an encoded word escaped."""
    out = []
    for byte in text.encode(charset):
        char = chr(byte)
        if char == " ":
            out.append("_")
        elif byte < 0x21 or byte > 0x7E or char in "?=_":
            out.append(f"={byte:02X}")
        else:
            out.append(char)
    return f"=?{charset}?q?{''.join(out)}?="


def b_word(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode('ascii')}?="


def parsed(field: str, value: str):
    raw = f"{field}: {value}\r\nMessage-ID: <m@x.example>\r\nSubject: s\r\n\r\nbody\r\n".encode()
    email = parse_message(raw)
    if field == "from":
        return [email.from_] if email.from_ else []
    return getattr(email, field.replace("-", "_"))


HOSTILE_NAMES = [
    "Jane\r\nBcc: x@evil.example",
    "Jane x@evil.example",
    "Jane <x@evil.example>",
    "x@evil.example",
    "<x@evil.example>",
    "Jane, x@evil.example",
    "a@evil.example, b@evil.example",
    "grp: x@evil.example;",
    'Jane" <x@evil.example>, "',
    "Jane\nTo: x@evil.example",
    "Jane\r\n\r\nx@evil.example",
    "(x@evil.example)",
    "Jane\\ <x@evil.example>",
]


@pytest.mark.parametrize("encode", [q_word, b_word], ids=["q", "b"])
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_an_encoded_display_name_never_gives_an_address(encode, field: str, name: str) -> None:
    found = parsed(field, f"{encode(name)} <jane@customer.example>")
    assert [address.address for address in found] == ["jane@customer.example"]
    assert "evil" not in found[0].address
    assert "\r" not in found[0].name and "\n" not in found[0].name  # decoded, on one line
    assert "@evil.example" in found[0].name  # kept as the name it is


def test_the_reported_header() -> None:
    found = parsed("from", "=?utf-8?q?Jane=0D=0ABcc:_x@evil.example?= <jane@customer.example>")
    assert [(a.name, a.address) for a in found] == [("Jane Bcc: x@evil.example", "jane@customer.example")]


@pytest.mark.parametrize("encode", [q_word, b_word], ids=["q", "b"])
@pytest.mark.parametrize("field", ("to", "cc", "reply-to"))
def test_several_addresses_each_keep_their_own(encode, field: str) -> None:
    value = ", ".join(
        [
            f"{encode('A, <a@evil.example>')} <a@customer.example>",
            "b@customer.example",
            '"Quoted, C" <c@customer.example>',
            f"{encode('D')} {encode(':d@evil.example;')} <d@customer.example>",
        ]
    )
    found = parsed(field, value)
    assert [a.address for a in found] == [f"{x}@customer.example" for x in "abcd"]
    assert found[0].name == "A, <a@evil.example>"
    assert found[3].name == "D:d@evil.example;"  # adjacent words of one charset are joined


@pytest.mark.parametrize("encode", [q_word, b_word], ids=["q", "b"])
def test_group_syntax_with_encoded_names(encode) -> None:
    value = f"{encode('Team: x@evil.example')}: {encode('Ann;')} <ann@customer.example>, bob@customer.example;"
    found = parsed("to", value)
    assert [a.address for a in found] == ["ann@customer.example", "bob@customer.example"]
    assert found[0].name == "Ann;"


def test_latin1_and_adjacent_words_still_decode() -> None:
    value = "=?iso-8859-1?q?J=F6rg?= =?iso-8859-1?q?_M=FCller?= <j@customer.example>"
    assert [(a.name, a.address) for a in parsed("from", value)] == [("Jörg Müller", "j@customer.example")]


def test_an_encoded_word_inside_an_address_is_no_address() -> None:
    found = parsed("to", "=?utf-8?q?x?=@evil.example, ok@customer.example")
    assert [a.address for a in found] == ["ok@customer.example"]


def test_an_unterminated_word_inside_an_encoded_looking_name() -> None:
    # '=?utf-8?q?Jane' is no encoded word: the angle address after it is the literal one
    found = parsed("from", "=?utf-8?q?Jane <jane@customer.example>")
    assert [a.address for a in found] == ["jane@customer.example"]


def test_a_field_too_long_to_read_whole_keeps_the_literal_first_address() -> None:
    name = q_word("<x@evil.example> " + "y" * 300_000)
    raw = f"From: {name} <jane@customer.example>\r\nSubject: s\r\n\r\n".encode()
    email = parse_headers(raw)
    assert email.from_ is None or email.from_.address == "jane@customer.example"


def test_placeholder_lookalikes_in_the_header_stay_as_written() -> None:
    value = f"Ew0x Ewq1x {q_word('Bob')} <bob@customer.example>, Ew0x@customer.example"
    found = parsed("to", value)
    assert [(a.name, a.address.lower()) for a in found] == [
        ("Ew0x Ewq1x Bob", "bob@customer.example"),
        ("", "ew0x@customer.example"),
    ]


# ---------------------------------------------------------------- the property

LITERAL = [f"{local}@customer.example" for local in ("jane", "bob", "c.d", "e+f")]
EVIL = ["x@evil.example", "y@evil.example"]
hostile_text = st.lists(
    st.sampled_from([*EVIL, "<", ">", ",", ";", ":", '"', "(", ")", "\\", "\r\n", "\n", " ", "Bcc:", "Jane", "é", "@"]),
    max_size=8,
).map("".join)
words = st.tuples(hostile_text, st.sampled_from([q_word, b_word]), st.sampled_from(["utf-8", "iso-8859-1"])).map(
    lambda item: item[1](item[0], item[2])
)
names = st.lists(st.one_of(words, st.sampled_from(["Jane", "Mr.", '"Q, R"'])), max_size=3).map(" ".join)
items = st.tuples(names, st.sampled_from(LITERAL), st.booleans()).map(
    lambda item: f"{item[0]} <{item[1]}>" if item[0] or item[2] else item[1]
)
fields = st.tuples(st.lists(items, min_size=1, max_size=4).map(", ".join), st.booleans()).map(
    lambda item: f"{q_word('grp: x@evil.example')}: {item[0]};" if item[1] else item[0]
)


@FAST
@given(field=st.sampled_from(FIELDS), value=fields)
@example(field="from", value="=?utf-8?q?Jane=0D=0ABcc:_x@evil.example?= <jane@customer.example>")
def test_every_parsed_address_appears_literally_outside_encoded_words(field: str, value: str) -> None:
    found = parsed(field, value)
    assert found, value
    for address in found:
        assert address.address in LITERAL, (value, address)
        assert "\n" not in address.name and "\r" not in address.name
    if field != "from":
        expected = [item.rsplit("<", 1)[-1].rstrip(">;") for item in _items(value)]
        assert [a.address for a in found] == expected, value


def _items(value: str) -> list[str]:
    """The literal items of a generated field (its encoded words never hold a comma in the
    masked text, so splitting the text after masking them is exact)."""
    masked = re.sub(r"=\?[^?\s]{1,80}\?[bBqQ]\?[^?]*\?=", "W", value)
    masked = re.sub(r'"[^"]*"', "Q", masked)
    if masked.startswith("W: "):
        masked = masked[3:]
    return [item.strip() for item in masked.split(",") if item.strip()]
