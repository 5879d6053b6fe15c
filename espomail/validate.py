"""Checks of user input shared by the services; each raises InvalidInput with a hint."""

from __future__ import annotations

import re

from espomail.errors import InvalidInput

_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_ADDRESS = re.compile(rf"^[^@\s<>(),;:\"\[\]\\]+@{_LABEL}(?:\.{_LABEL})*$")


def email_address(value: str) -> str:
    """A plain address such as ``alice@example.com`` (no display name), trimmed."""
    address = (value or "").strip()
    if not _ADDRESS.match(address) or len(address) > 254:
        raise InvalidInput(f"'{value}' is not a valid email address; give a plain address like alice@example.com")
    return address


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
