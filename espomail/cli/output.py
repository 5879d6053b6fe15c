"""The one renderer: JSON with ``--json``; a rich table on a terminal; plain text otherwise.

Only this module and the root command print. Data goes to stdout, messages to stderr.

Untrusted text is data (SPEC 11): every value shown to a human goes through ``clean()``,
which shows control characters escaped (``\\x1b``, ``\\u2028``), and rich renders only
``rich.text.Text`` objects built from it, never markup strings, so ``[#126]`` stays
``[#126]`` and ``Order [/] status?`` is just a subject. JSON output is not cleaned: JSON
escapes by itself.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click
from rich.cells import cell_len

from espomail.cli.app import get_app
from espomail.cli.types import COUNT
from espomail.errors import InvalidInput
from espomail.model import Page

# -- untrusted text --------------------------------------------------------------------

# C0 and C1 controls, DEL, line and paragraph separators, the bidi embeddings, overrides
# and isolates ("Trojan Source"), and lone surrogates (which no terminal can print).
_ESCAPED = [
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    *range(0xD800, 0xE000),
]


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ONE_LINE = {code: _escape(code) for code in _ESCAPED}
_MULTI_LINE = {code: text for code, text in _ONE_LINE.items() if code not in (0x09, 0x0A)}


def clean(value: object, multiline: bool = False) -> str:
    """``value`` as text safe for a terminal: controls shown escaped (``\\x1b``, ``\\u2028``).

    One line unless ``multiline`` (bodies), which keeps newlines and tabs (CRLF becomes a
    newline). Backslashes are not doubled: human output, not a round-trippable format.
    """
    text = value if isinstance(value, str) else str(value)
    if multiline:
        return text.replace("\r\n", "\n").translate(_MULTI_LINE)
    return text.translate(_ONE_LINE)


def message(text: str) -> None:
    """A human message on stderr (never disturbs JSON on stdout); untrusted parts escaped."""
    click.echo(clean(text), err=True)


def say(text: str) -> None:
    """A human line on stdout (not JSON), escaped like every other output."""
    click.echo(clean(text))


def confirm(question: str, yes: bool, refusal: str) -> None:
    """Go on when ``yes`` (--yes) or when the person at the terminal answers yes (else click
    aborts: exit 1, nothing changed); off a terminal without --yes, refuse with ``refusal``
    (exit 2): a script must say it means it."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInput(refusal)
    click.confirm(clean(question), abort=True, err=True)


# -- options ---------------------------------------------------------------------------


def json_option(func: Callable) -> Callable:
    """Add ``--json`` (one JSON document on stdout) to a command."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            get_app().json = True
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=remember,
        help="Output as JSON (stable snake_case keys, times in UTC).",
    )(func)


MAX_INT = 2**63 - 1  # SQLite's largest integer: beyond it a query would overflow
DEFAULT_LIMIT = 100
CHUNK = 5000  # rows per query when a list is read whole (--all)


@dataclasses.dataclass(frozen=True)
class Paging:
    """What part of a list to show and how: ``limit`` None means all of it."""

    limit: int | None = DEFAULT_LIMIT
    offset: int = 0
    nl: bool = False


def paging_options(func: Callable) -> Callable:
    """Add ``--limit``, ``--offset``, ``--all`` and ``--nl`` to a list command.

    The command receives one ``paging: Paging`` argument. ``--limit 0`` means no limit
    (the same as ``--all``). ``--nl`` prints one JSON object per line as rows arrive (for
    big exports); ``--json`` stays one array.
    """

    @click.option(
        "--limit",
        type=COUNT,
        default=DEFAULT_LIMIT,
        show_default=True,
        help="At most this many rows (0: no limit, like --all).",
    )
    @click.option("--offset", type=COUNT, default=0, help="Skip this many rows first.")
    @click.option("--all", "all_rows", is_flag=True, help="Every row (no limit).")
    @click.option("--nl", is_flag=True, help="One JSON object per line, streamed (for big exports).")
    @functools.wraps(func)
    def wrapper(*args: Any, limit: int, offset: int, all_rows: bool, nl: bool, **kwargs: Any) -> Any:
        if nl:
            app = get_app()
            if app.json:
                raise click.UsageError("give one of --json (one array) and --nl (one object per line)")
            app.json = True  # errors come as JSON objects on stderr too
        everything = all_rows or limit == 0
        return func(*args, paging=Paging(None if everything else limit, offset, nl), **kwargs)

    return wrapper


# -- lists -----------------------------------------------------------------------------


# A list source: (limit, offset) -> the rows, or a Page (model.Page: the rows, the list's
# total, and maybe a keyset cursor to the rows that follow).
Fetch = Callable[[int, int], "list | Page"]


def from_list(rows: list) -> Fetch:
    """A source over a short list that is read whole (teams, users, roles, accounts ...)."""
    return lambda limit, offset: Page(rows[offset : offset + limit], len(rows))


@dataclasses.dataclass
class _Reader:
    """Reads a list page by page; knows afterwards whether the limit cut it."""

    fetch: Fetch
    paging: Paging
    shown: int = 0
    cut: bool = False
    total: int | None = None
    exact: bool = True

    def rows(self) -> Iterator[dict]:
        limit, offset = self.paging.limit, self.paging.offset
        if limit is not None:
            # One row more than asked tells whether there are more (services give no count).
            page = _as_page(self.fetch(min(limit + 1, MAX_INT), offset))
            self.total, self.exact = page.total, page.exact
            self.cut = len(page.items) > limit
            rows = page.items[:limit]
            self.shown = len(rows)
            yield from rows
            return
        previous: set = set()
        page = _as_page(self.fetch(CHUNK, offset))
        while True:
            # Rows added at the top while we read shift the next chunk: skip what was just shown.
            keys = set()
            for row in page.items:
                key = _identity(row)
                keys.add(key)
                if key is None or key not in previous:
                    self.shown += 1
                    yield row
            if len(page.items) < CHUNK:
                return
            if page.next is not None:  # a keyset cursor: on after the last row, nothing shifts
                previous, page = set(), _as_page(page.next(CHUNK))
            else:
                previous, offset = keys, offset + CHUNK
                page = _as_page(self.fetch(CHUNK, offset))

    def notice(self) -> str | None:
        """The stderr line of a list cut by its limit, else None."""
        if not self.cut:
            return None
        first, last = self.paging.offset + 1, self.paging.offset + self.shown
        where = f"{self.shown:,}" if first == 1 else f"{first:,}-{last:,}"
        if self.total is not None:
            total = f"{self.total:,}" if self.exact else f"more than {self.total:,}"
            return f"showing {where} of {total}; use --limit/--offset or --all"
        if first == 1:
            return f"showing the first {self.shown:,}; use --limit/--offset or --all"
        return f"showing {where}, more follow; use --limit/--offset or --all"


def _as_page(result: list | Page) -> Page:
    return result if isinstance(result, Page) else Page(list(result))


def _identity(row: Any) -> Any:
    if not isinstance(row, dict):
        return None
    return (row.get("type"), row.get("id"), row.get("number"))


# Characters that some line readers (Python's splitlines, older JavaScript) take for line
# ends although JSON allows them raw in strings: --nl writes them escaped, same data.
_LINE_BREAKS_IN_JSON = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def show_list(fetch: Fetch | list, columns: Sequence[Column | tuple[str, str]], paging: Paging) -> None:
    """Print a list as JSON (``--json``), JSON lines (``--nl``) or a table; say on stderr
    when the limit cut it (``showing 100 of 5,590; ...``)."""
    reader = _Reader(from_list(fetch) if isinstance(fetch, list) else fetch, paging)
    if paging.nl:
        for number, row in enumerate(reader.rows(), 1):
            sys.stdout.write(json.dumps(row, ensure_ascii=False).translate(_LINE_BREAKS_IN_JSON) + "\n")
            if number % 100 == 0:
                sys.stdout.flush()  # streamed: a reader sees rows while the rest are read
        sys.stdout.flush()
    else:
        emit(list(reader.rows()), columns)
    note = reader.notice()
    if note:
        message(note)


# -- rendering -------------------------------------------------------------------------


def emit(data: Any, columns: Sequence[Column | tuple[str, str]] | None = None, title: str | None = None) -> None:
    """Print ``data`` (a dict or a list of dicts) as JSON, a table or key/value lines."""
    if get_app().json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if isinstance(data, list):
        _table(data, [as_column(c) for c in (columns or _guess_columns(data))], title)
    else:
        _item(data, title)


def fmt(value: Any) -> str:
    """A value as one line of human text (not yet cleaned)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if set(value) >= {"type", "id"}:
            return f"{value['type']}:{value['id']}"
        if "name" in value:
            return fmt(value["name"]) + (f":{value['position']}" if value.get("position") else "")
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value) if value else "-"
    return str(value)


class Kind(enum.Enum):
    """How a table column behaves when the terminal is narrow."""

    KEY = "key"  # ids, numbers: never cut, never wrapped, never hidden
    DATE = "date"  # times: never cut or wrapped; shown as YYYY-MM-DD HH:MM (UTC) on a terminal
    SHORT = "short"  # states, flags, counts, record references: never cut or wrapped
    TEXT = "text"  # subjects, names, addresses, lists: cut with an ellipsis to fit


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: the row key, its header, its kind and its priority.

    Column priorities (what gives way first on a narrow terminal):
    1. TEXT columns shrink first, down to ``MIN_TEXT`` cells (or their header, if wider),
       cut with an ellipsis; spare width goes to them in proportion to ``weight`` times
       what each still lacks (subjects and names get weight 3 or 2, lists 1).
    2. If even the minimum widths do not fit, whole columns are hidden, lowest
       ``priority`` first (ties: the rightmost); a caption names them (``--json`` has
       everything). KEY columns are never hidden.
    3. KEY, DATE and SHORT columns are never cut or wrapped, and a header is never split:
       every column is at least as wide as its header.
    The plain table (stdout not a terminal) never cuts nor hides: it aligns full values by
    terminal cells (CJK and emoji count 2) for grep, awk and less.
    """

    key: str
    header: str
    kind: Kind = Kind.TEXT
    priority: int = 5
    weight: int = 1


def key(name: str, header: str | None = None) -> Column:
    return Column(name, header or name, Kind.KEY, priority=100)


def date(name: str, header: str, priority: int = 6) -> Column:
    return Column(name, header, Kind.DATE, priority)


def short(name: str, header: str | None = None, priority: int = 5) -> Column:
    return Column(name, header or name, Kind.SHORT, priority)


def text(name: str, header: str | None = None, priority: int = 5, weight: int = 1) -> Column:
    return Column(name, header or name, Kind.TEXT, priority, weight)


def as_column(column: Column | tuple[str, str]) -> Column:
    return column if isinstance(column, Column) else Column(column[0], column[1])


GAP = 2  # cells between two columns
MIN_TEXT = 10  # a TEXT column is never narrower than this (or its header)


def layout(columns: Sequence[Column], cells: Sequence[Sequence[str]], width: int) -> list[int | None]:
    """The width of each column (None: hidden) so that the table fits ``width`` cells.

    ``cells`` are the rows' texts in column order. See ``Column`` for the priorities.
    """
    count = len(columns)
    natural = [max([cell_len(columns[i].header)] + [cell_len(row[i]) for row in cells]) for i in range(count)]
    minimum = [
        min(natural[i], max(cell_len(c.header), MIN_TEXT)) if c.kind is Kind.TEXT else natural[i]
        for i, c in enumerate(columns)
    ]
    shown = list(range(count))

    def needed(indexes: list[int]) -> int:
        return sum(minimum[i] for i in indexes) + GAP * max(0, len(indexes) - 1)

    while needed(shown) > width:
        hideable = [i for i in shown if columns[i].kind is not Kind.KEY]
        if not hideable:
            break
        shown.remove(min(reversed(hideable), key=lambda i: columns[i].priority))
    widths: list[int | None] = [minimum[i] if i in shown else None for i in range(count)]
    spare = width - needed(shown)
    growing = [i for i in shown if natural[i] > minimum[i]]
    while spare > 0 and growing:
        lacks = {i: (natural[i] - widths[i]) * columns[i].weight for i in growing}
        total = sum(lacks.values())
        given = 0
        for i in growing:
            share = max(1, spare * lacks[i] // total) if given < spare else 0
            share = min(share, natural[i] - widths[i], spare - given)
            widths[i] += share
            given += share
        spare -= given
        growing = [i for i in growing if widths[i] < natural[i]]
    return widths


_ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(:\d\d(\.\d+)?)?Z?$")


def _cell(value: Any, column: Column, terminal: bool) -> str:
    shown = fmt(value)
    if terminal and column.kind is Kind.DATE:
        match = _ISO_TIME.match(shown)
        if match:
            shown = f"{match[1]} {match[2]}"
    return clean(shown)


def _guess_columns(rows: list[dict]) -> list[Column]:
    if not rows:
        return [key("id")]
    return [Column(k, k) for k, v in rows[0].items() if not isinstance(v, dict | list) or k in ("teams",)]


def _is_tty() -> bool:
    return sys.stdout.isatty()


def console():  # noqa: ANN201 - rich.console.Console, imported lazily
    """The rich console of stdout (width from the terminal, else $COLUMNS, else 80)."""
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, emoji=False, markup=False)


def _table(rows: list[dict], columns: list[Column], title: str | None) -> None:
    terminal = _is_tty()
    cells = [[_cell(row.get(c.key), c, terminal) for c in columns] for row in rows]
    if terminal:
        _rich_table(columns, cells, title)
        if not rows:
            message("(none)")
        return
    headers = [c.header for c in columns]
    widths = [max(cell_len(line[i]) for line in [headers, *cells]) for i in range(len(columns))]
    for line in [headers, *cells]:
        padded = (value + " " * (width - cell_len(value)) for value, width in zip(line, widths, strict=True))
        click.echo((" " * GAP).join(padded).rstrip())


def _rich_table(columns: list[Column], cells: list[list[str]], title: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    out = console()
    widths = layout(columns, cells, out.width)
    visible = [i for i, w in enumerate(widths) if w is not None]
    hidden = [columns[i].header for i, w in enumerate(widths) if w is None]
    caption = Text(f"not shown at this width: {', '.join(hidden)} (--json has all)", style="dim") if hidden else None
    table = Table(
        title=Text(clean(title)) if title else None,
        caption=caption,
        box=None,
        pad_edge=False,
        padding=(0, GAP // 2),
        header_style="bold",
        show_edge=False,
    )
    for i in visible:
        cut = columns[i].kind is Kind.TEXT
        table.add_column(
            Text(columns[i].header), width=widths[i], no_wrap=True, overflow="ellipsis" if cut else "ignore"
        )
    for line in cells:
        table.add_row(*(Text(line[i]) for i in visible))
    out.print(table)


def _item(item: dict, title: str | None) -> None:
    simple = {k: v for k, v in item.items() if k not in ("body_text", "body_html")}
    if _is_tty():
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(clean(title)) if title else None, show_header=False, box=None)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for name, value in simple.items():
            table.add_row(Text(clean(name)), Text(clean(fmt(value))))
        console().print(table)
    else:
        width = max((cell_len(k) for k in simple), default=0)
        for name, value in simple.items():
            click.echo(f"{clean(name).ljust(width)}  {clean(fmt(value))}")
    body = item.get("body_text")
    if body:
        click.echo("")
        click.echo(clean(body.rstrip("\n"), multiline=True))
