"""Cost bounds on what a message from outside can make the parser do (SPEC 11, issue 13).

Every bound is a config key (espomail/config.py) with the default given here; a message
that goes beyond one is cut or marked (a note in ``ParsedEmail.defects``), never lost and
never failed. Callers that do not pass settings get these defaults, which are safe.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class ParseLimits:
    max_header_count: int = 10_000  # header fields read per message or MIME part
    max_header_length: int = 100_000  # characters kept of one header field value
    max_addresses: int = 1_000  # addresses kept per address field (From, To, Cc, Bcc, Reply-To)
    max_mime_depth: int = 40  # nesting levels of multiparts
    max_mime_parts: int = 5_000  # MIME parts per message
    max_filename_length: int = 255  # characters of an attachment's file name (extension kept)
    max_references: int = 100  # References ids kept: the first (thread root) and the newest
    max_html_bytes: int = 1_000_000  # characters of an html body converted to text

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):  # a bound of 0 or less would refuse every message
            object.__setattr__(self, item.name, max(_MINIMUM[item.name], int(getattr(self, item.name))))

    @classmethod
    def from_settings(cls, settings: Any) -> ParseLimits:
        """The bounds configured in ``settings`` (an espomail.config.Settings)."""
        return cls(**{item.name: getattr(settings, item.name) for item in dataclasses.fields(cls)})


_MINIMUM = {
    "max_header_count": 10,
    "max_header_length": 1_000,
    "max_addresses": 1,
    "max_mime_depth": 1,
    "max_mime_parts": 1,
    "max_filename_length": 16,
    "max_references": 2,
    "max_html_bytes": 1_000,
}

DEFAULT = ParseLimits()
