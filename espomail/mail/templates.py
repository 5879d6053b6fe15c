"""Auto-reply templates: ``{placeholder}`` fields, checked when an account is saved.

An unknown placeholder is an error when the account is saved, never when mail is sent
(SPEC 6). Write ``{{`` and ``}}`` for literal braces.
"""

from __future__ import annotations

import string

from espomail.errors import InvalidInput
from espomail.mail.addresses import header_text

PLACEHOLDERS = {
    "case_number": "the case number (empty without a case)",
    "case_name": "the case name",
    "sender_name": "the display name of the person who wrote",
    "sender_address": "the address of the person who wrote",
    "subject": "the subject of the incoming email",
    "assignee_name": "the name of the user the case was assigned to",
    "account_name": "the name of the group mail account",
    "account_address": "the address of the group mail account",
}


def check(template: str, what: str) -> str:
    """Raise InvalidInput naming a bad or unknown placeholder; return the template."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}; write {{{{ and }}}} for literal braces") from None
    for field in fields:
        if field not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise InvalidInput(f"{what}: unknown placeholder {{{field}}}; known: {known}")
    return template


def render(template: str, values: dict[str, object]) -> str:
    full = {key: "" for key in PLACEHOLDERS}
    full.update({k: "" if v is None else v for k, v in values.items()})
    return template.format_map(full)


def render_line(template: str, values: dict[str, object]) -> str:
    """``render`` for a header (the subject): one line, control and line-separator
    characters of the values (a customer's subject, a decoded display name) as spaces."""
    return header_text(render(template, values))
