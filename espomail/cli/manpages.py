"""Man pages generated from the commands' help (one page per command, like git's).

``python -m espomail.cli.manpages`` writes them to espomail/man/man1/ (shipped with the
package, and installed to share/man/man1 by pip); ``--check`` exits 1 when a committed page
differs from what the commands say now (the test suite runs it). Written here rather than
with click-man, which reads ``Group.commands`` and so sees none of our lazily imported
commands, and stamps a date that would make every page stale each day.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from espomail import __version__

MAN_DIR = Path(__file__).resolve().parents[1] / "man" / "man1"


def walk(command: click.Command, ctx: click.Context) -> Iterator[click.Context]:
    """The context of ``command`` and of every command below it, in help order."""
    yield ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, click.Context(sub, parent=ctx, info_name=name, **sub.context_settings))


def pages(root: click.Command | None = None) -> dict[str, str]:
    """File name -> troff text of every command's page."""
    if root is None:
        from espomail.cli import cli as root
    top = click.Context(root, info_name="espomail", **root.context_settings)
    return {_file_name(ctx): _page(ctx) for ctx in walk(root, top)}


def _file_name(ctx: click.Context) -> str:
    return ctx.command_path.replace(" ", "-") + ".1"


def _esc(text: str) -> str:
    """Text for troff: backslashes and dashes escaped, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.split("\n"))


def _page(ctx: click.Context) -> str:
    command = ctx.command
    name = ctx.command_path.replace(" ", "-")
    summary = command.get_short_help_str(limit=200)
    out = [
        f'.TH "{name.upper()}" "1" "" "espomail {__version__}" "espomail manual"',
        ".SH NAME",
        f"{_esc(name)} \\- {_esc(summary)}",
        ".SH SYNOPSIS",
        f".B {_esc(ctx.command_path)}",
        _esc(" ".join(command.collect_usage_pieces(ctx))),
        ".SH DESCRIPTION",
        *_description(command.help or ""),
    ]
    options = [record for param in command.get_params(ctx) if (record := param.get_help_record(ctx))]
    if options:
        out.append(".SH OPTIONS")
        for names, help_text in options:
            out += [".TP", f"\\fB{_esc(names)}\\fR", _esc(help_text)]
    if isinstance(command, click.Group):
        out.append(".SH COMMANDS")
        for sub_ctx in walk(command, ctx):
            if sub_ctx.parent is ctx:
                sub_name = sub_ctx.command_path.replace(" ", "-")
                out += [
                    ".TP",
                    f"\\fB{_esc(sub_ctx.info_name or '')}\\fR",
                    f"{_esc(sub_ctx.command.get_short_help_str(limit=200))} See \\fB{_esc(sub_name)}\\fR(1).",
                ]
    see_also = ["espomail(1)"] if ctx.parent else []
    if ctx.parent is not None and ctx.parent.parent is not None:
        see_also.append(ctx.parent.command_path.replace(" ", "-") + "(1)")
    if see_also:
        out += [".SH SEE ALSO", _esc(", ".join(see_also))]
    return "\n".join(out) + "\n"


def _description(help_text: str) -> list[str]:
    """click help paragraphs as troff: \\b blocks verbatim (.nf), others filled (.PP)."""
    lines: list[str] = []
    text = inspect.cleandoc(help_text).partition("\f")[0]
    for paragraph in text.split("\n\n"):
        if paragraph.startswith("\b\n"):
            lines += [".PP", ".nf", _esc(paragraph[2:]), ".fi"]
        elif paragraph.strip():
            lines += [".PP", _esc(" ".join(paragraph.split()))]
    return lines


def write(directory: Path = MAN_DIR) -> list[Path]:
    """Write every page to ``directory`` (removing pages of commands that are gone)."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = pages()
    for stale in directory.glob("*.1"):
        if stale.name not in wanted:
            stale.unlink()
    written = []
    for name, text in wanted.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path = MAN_DIR) -> list[str]:
    """Names of pages that are missing, out of date or left over in ``directory``."""
    wanted = pages()
    present = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.1")} if directory.is_dir() else {}
    names = set(wanted) | set(present)
    return sorted(n for n in names if wanted.get(n) != present.get(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m espomail.cli.manpages", description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=MAN_DIR, help="where the pages go")
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is out of date")
    args = parser.parse_args(argv)
    if args.check:
        behind = stale(args.directory)
        if behind:
            print(f"man pages out of date: {', '.join(behind)}; run 'python -m espomail.cli.manpages'", file=sys.stderr)
            return 1
        return 0
    print(f"{len(write(args.directory))} man pages in {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
