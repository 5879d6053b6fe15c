"""The one renderer: JSON with ``--json``; a rich table on a terminal; plain text otherwise.

Only this module and the root command print. Data goes to stdout, messages to stderr.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from espomail.cli.app import get_app

Columns = Sequence[tuple[str, str]]  # (key, header)


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


def paging_options(func: Callable) -> Callable:
    """Add ``--limit`` and ``--offset`` to a list command."""

    @click.option("--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many rows.")
    @click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many rows first.")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def page(rows: list, limit: int, offset: int) -> list:
    """One page of a short list that is read whole (teams, users, roles, accounts ...)."""
    return rows[offset : offset + limit]


def emit(data: Any, columns: Columns | None = None, title: str | None = None) -> None:
    """Print ``data`` (a dict or a list of dicts) as JSON, a table or key/value lines."""
    if get_app().json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if isinstance(data, list):
        _table(data, columns or _guess_columns(data), title)
    else:
        _item(data, title)


def message(text: str) -> None:
    """A human message on stderr (never disturbs JSON on stdout)."""
    click.echo(text, err=True)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if set(value) >= {"type", "id"}:
            return f"{value['type']}:{value['id']}"
        if "name" in value:
            return value["name"] + (f":{value['position']}" if value.get("position") else "")
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value) if value else "-"
    return str(value)


def _guess_columns(rows: list[dict]) -> Columns:
    if not rows:
        return [("id", "id")]
    return [(k, k) for k, v in rows[0].items() if not isinstance(v, dict | list) or k in ("teams",)]


def _is_tty() -> bool:
    return sys.stdout.isatty()


def _table(rows: list[dict], columns: Columns, title: str | None) -> None:
    if _is_tty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for _key, header in columns:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*(fmt(row.get(key)) for key, _ in columns))
        Console().print(table)
        if not rows:
            message("(none)")
        return
    cells = [[header for _, header in columns]] + [
        [fmt(row.get(key)).replace("\n", " ") for key, _ in columns] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for line in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _item(item: dict, title: str | None) -> None:
    simple = {k: v for k, v in item.items() if k not in ("body_text", "body_html")}
    width = max((len(k) for k in simple), default=0)
    if _is_tty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in simple.items():
            table.add_row(key, fmt(value))
        Console().print(table)
    else:
        for key, value in simple.items():
            click.echo(f"{key.ljust(width)}  {fmt(value)}")
    body = item.get("body_text")
    if body:
        click.echo("")
        click.echo(body.rstrip("\n"))
