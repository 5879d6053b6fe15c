"""Click parameter types for what users type most: ids, counts, ports and paths.

One type for every id and count (SPEC 2, issue 12): digits only, at most SQLite's largest
integer (2^63 - 1), else exit 2 with an ``Error:`` line, never an OverflowError from the
store. Paths must not be empty ('' would mean the current directory).
"""

from __future__ import annotations

from typing import Any

import click

from espomail.validate import MAX_ID, is_whole_number


class WholeNumber(click.IntRange):
    """A whole number from ``low`` to ``high`` written with the digits 0-9 (an IntRange, so
    that help shows the range)."""

    def __init__(self, low: int = 0, high: int = MAX_ID) -> None:
        super().__init__(low, high)
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:  # noqa: ANN401
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not is_whole_number(text):
                self.fail(f"'{value}' is not a whole number", param, ctx)
            number = int(text) if len(text) <= 30 else self.high + 1
        if not self.low <= number <= self.high:
            self.fail(f"'{value}' is out of range: give a number from {self.low} to {self.high}", param, ctx)
        return number

    def _describe_range(self) -> str:
        return f"x>={self.low}" if self.high == MAX_ID else super()._describe_range()

    def __repr__(self) -> str:
        return f"WholeNumber({self.low}, {self.high})"


ID = WholeNumber(1)  # an email, case, notification or record id
COUNT = WholeNumber(0)  # --limit, --offset
PORT = WholeNumber(1, 65535)


class NonEmptyPath(click.Path):
    """A path that is not empty: ``''`` is refused rather than read as the current directory."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:  # noqa: ANN401
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path; give a file or directory", param, ctx)
        return super().convert(value, param, ctx)
