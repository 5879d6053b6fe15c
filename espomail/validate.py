"""Checks of user input shared by the services; each raises InvalidInput with a hint."""

from __future__ import annotations

import re
import unicodedata

from espomail.errors import InvalidInput
from espomail.mail.addresses import unicode_form

_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
# The local part: any character but controls, separators, spaces and the specials of RFC
# 5322 (so international local parts, RFC 6531, are fine); the domain: letters and digits of
# any script (IDNA U-labels) or ASCII (A-labels, xn--).
_ADDRESS = re.compile(rf"^[^@\s<>(),;:\"\[\]\\\x00-\x1f\x7f-\x9f]+@{_LABEL}(?:\.{_LABEL})*$")


def email_address(value: str) -> str:
    """A plain address such as ``alice@example.com`` or ``marilù@università.it`` (no display
    name), trimmed, in the one stored form of an address (NFC, punycode domain labels as
    Unicode: see mail.addresses), so that it matches mail from it however it is written."""
    address = unicodedata.normalize("NFC", (value or "").strip())
    if not _ADDRESS.match(address) or len(address) > 254 or not _domain_ok(address):
        raise InvalidInput(
            f"'{value}' is not a valid email address; give a plain address like alice@example.com "
            "(international addresses such as marilù@università.it are fine)"
        )
    return unicode_form(address)


def _domain_ok(address: str) -> bool:
    """Every label at most 63 characters, and an ``xn--`` label valid punycode."""
    for label in address.rpartition("@")[2].split("."):
        if len(label) > 63:
            return False
        if label.lower().startswith("xn--"):
            try:
                label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                return False
    return True


def choice(value: str, allowed: tuple[str, ...] | list[str], what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{what} must be one of {', '.join(allowed)}, not '{value}'")
    return value


def name(value: str, what: str, max_length: int = 200) -> str:
    cleaned = single_line((value or "").strip(), what)
    if not cleaned:
        raise InvalidInput(f"{what} must not be empty")
    if len(cleaned) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    return cleaned


def record_ref(value: str) -> tuple[str, int]:
    """``TYPE:ID`` such as ``case:12`` or ``account:3``."""
    kind, sep, ident = (value or "").partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in ("account", "contact", "lead", "opportunity", "case"):
        raise InvalidInput(
            f"'{value}' is not a record reference; use TYPE:ID with TYPE one of "
            "account, contact, lead, opportunity, case (e.g. case:12)"
        )
    return kind, whole_number(ident, f"'{value}': the ID after ':'")


# -- numbers inside text, names and single lines of text (issue 12) ------------------------------

MAX_ID = 2**63 - 1  # SQLite's largest integer: an id above it cannot exist
_DIGITS = re.compile(r"[0-9]+")
# Characters refused in names and single-line text: C0 and C1 controls (newline, ESC ...),
# DEL, the Unicode line and paragraph separators, and the bidi embeddings, overrides and
# isolates that reorder how the text around them is shown.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def is_whole_number(text: str) -> bool:
    """Digits 0-9 only (``str.isdigit`` also takes '²' and other digits int() refuses)."""
    return bool(_DIGITS.fullmatch(text or ""))


def as_id(value: str) -> int | None:
    """The id written in ``value`` (digits, 1 to MAX_ID), else None: for a name-or-id."""
    text = (value or "").strip()
    if not is_whole_number(text) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def whole_number(value: str, what: str) -> int:
    """An id written inside text (``case:12``): 1 to MAX_ID, else InvalidInput."""
    number = as_id(value)
    if number is None:
        if is_whole_number((value or "").strip()):
            raise InvalidInput(f"{what} must be a number from 1 to {MAX_ID}, not '{value}'")
        raise InvalidInput(f"{what} must be a number, not '{value}'")
    return number


def single_line(value: str, what: str) -> str:
    """Refuse line breaks and control characters: names and subjects are one line of text,
    shown in tables and written into mail headers."""
    found = _CONTROL.search(value or "")
    if found:
        raise InvalidInput(
            f"{what} must be one line of text without control characters "
            f"(found U+{ord(found.group()):04X} at position {found.start() + 1})"
        )
    return value


def display_name(value: str | None, what: str, max_length: int = 200) -> str | None:
    """A person's or sender's name: optional (empty means none), one line, trimmed."""
    if value is None:
        return None
    cleaned = single_line(value, what).strip()
    if len(cleaned) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    return cleaned or None
