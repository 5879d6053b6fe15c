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
    cleaned = (value or "").strip()
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
    try:
        number = int(ident)
    except ValueError:
        raise InvalidInput(f"'{value}': the ID after ':' must be a number") from None
    return kind, number
