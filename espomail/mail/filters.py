"""Filter matching (SPEC 4): wildcard patterns over the whole value, case-insensitive.

``*`` stands for any characters and a pattern matches the whole value, so
``*@example.com`` and ``*invoice*`` work and ``example.com`` alone does not match
``a@example.com``. From, To and Subject compare case-insensitively (EspoCRM's subject
match is case-sensitive; ours is not, on purpose). To matches any To **or Cc** address.
Body-contains matches when any phrase is found, body-contains-all when all are, in the text
or the html body, case-insensitively. A filter without criteria never matches; body
criteria never match a truncated (headers-only) email.
"""

from __future__ import annotations

import dataclasses
import functools
import json

from espomail.mail.parse import ParsedEmail


@dataclasses.dataclass(frozen=True)
class Criteria:
    from_pattern: str | None = None
    to_pattern: str | None = None
    subject_pattern: str | None = None
    body_contains: tuple[str, ...] = ()
    body_contains_all: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row) -> Criteria:  # noqa: ANN001 - a filters Row
        return cls(
            row["from_pattern"],
            row["to_pattern"],
            row["subject_pattern"],
            tuple(json.loads(row["body_contains"] or "[]")),
            tuple(json.loads(row["body_contains_all"] or "[]")),
        )

    @property
    def needs_body(self) -> bool:
        return bool(self.body_contains or self.body_contains_all)

    @property
    def empty(self) -> bool:
        return not (
            self.from_pattern or self.to_pattern or self.subject_pattern or self.body_contains or self.body_contains_all
        )


MAX_PATTERN_LENGTH = 1_000  # default of the config key max_filter_pattern_length


@dataclasses.dataclass(frozen=True)
class Glob:
    """A ``*`` pattern split at its stars: the value must start with ``head``, end with
    ``tail`` and hold the ``middle`` pieces in order between them (``exact`` without a star)."""

    head: str
    middle: tuple[str, ...]
    tail: str
    exact: bool

    def matches(self, value: str) -> bool:
        """Greedy leftmost search of each middle piece: linear in the value (``str.find``),
        and correct for ``*``-only globs (taking a piece as early as possible never hurts
        the pieces after it)."""
        if self.exact:
            return value == self.head
        if len(value) < len(self.head) + len(self.tail) or not value.startswith(self.head):
            return False
        if not value.endswith(self.tail):
            return False
        position, stop = len(self.head), len(value) - len(self.tail)
        for piece in self.middle:
            found = value.find(piece, position, stop)
            if found < 0:
                return False
            position = found + len(piece)
        return True


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Glob:
    """The pattern as it is matched: stripped, lower-case, split at ``*`` (runs of stars
    count as one)."""
    pieces = pattern.strip().lower().split("*")
    if len(pieces) == 1:
        return Glob(pieces[0], (), "", exact=True)
    return Glob(pieces[0], tuple(piece for piece in pieces[1:-1] if piece), pieces[-1], exact=False)


def wildcard(pattern: str, value: str | None) -> bool:
    """Whether ``value`` (stripped, case-insensitive) matches ``pattern`` as a whole;
    O(len(value) + len(pattern)) whatever either holds."""
    return value is not None and compile_pattern(pattern).matches(value.strip().lower())


def check_pattern(pattern: str, max_length: int = MAX_PATTERN_LENGTH) -> str | None:
    """Why ``pattern`` cannot be saved as a filter pattern, or None when it can."""
    if len(pattern) > max_length:
        return (
            f"the pattern is {len(pattern):,} characters long; at most {max_length:,} are allowed "
            "(config key max_filter_pattern_length)"
        )
    if any(char in pattern for char in "\r\n\x00"):
        return "the pattern holds a line break or NUL character"
    return None


def match(criteria: Criteria, parsed: ParsedEmail) -> tuple[bool, list[str]]:
    """(matches, the reasons: one line per criterion that held)."""
    if criteria.empty:
        return False, []
    reasons: list[str] = []
    checks = (
        _from(criteria, parsed, reasons),
        _to(criteria, parsed, reasons),
        _subject(criteria, parsed, reasons),
        _body_any(criteria, parsed, reasons),
        _body_all(criteria, parsed, reasons),
    )
    return all(checks), reasons


def _from(c: Criteria, parsed: ParsedEmail, reasons: list[str]) -> bool:
    if not c.from_pattern:
        return True
    address = parsed.from_.address if parsed.from_ else None
    if wildcard(c.from_pattern, address):
        reasons.append(f"From {address} matches '{c.from_pattern}'")
        return True
    return False


def _to(c: Criteria, parsed: ParsedEmail, reasons: list[str]) -> bool:
    if not c.to_pattern:
        return True
    for address in [*parsed.to, *parsed.cc]:
        if wildcard(c.to_pattern, address.address):
            reasons.append(f"To/Cc {address.address} matches '{c.to_pattern}'")
            return True
    return False


def _subject(c: Criteria, parsed: ParsedEmail, reasons: list[str]) -> bool:
    if not c.subject_pattern:
        return True
    if wildcard(c.subject_pattern, parsed.subject):
        reasons.append(f"Subject matches '{c.subject_pattern}'")
        return True
    return False


def _bodies(parsed: ParsedEmail) -> list[str]:
    if parsed.truncated:
        return []
    return [b.lower() for b in (parsed.body_text, parsed.body_html) if b]


def _body_any(c: Criteria, parsed: ParsedEmail, reasons: list[str]) -> bool:
    phrases = [p for p in c.body_contains if p.strip()]
    if not phrases:
        return True
    bodies = _bodies(parsed)
    for phrase in phrases:
        if any(phrase.lower() in body for body in bodies):
            reasons.append(f"body contains '{phrase}'")
            return True
    return False


def _body_all(c: Criteria, parsed: ParsedEmail, reasons: list[str]) -> bool:
    phrases = [p for p in c.body_contains_all if p.strip()]
    if not phrases:
        return True
    bodies = _bodies(parsed)
    if bodies and all(any(p.lower() in body for body in bodies) for p in phrases):
        reasons.append(f"body contains all of {', '.join(repr(p) for p in phrases)}")
        return True
    return False
