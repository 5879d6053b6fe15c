"""The renderer: untrusted text is data (SPEC 11), tables fit the terminal, honest lists."""

from __future__ import annotations

import base64
import json
import logging
import re

import pytest
from rich.cells import cell_len

from espomail.cli import output
from espomail.cli.output import Column, Kind, Page, Paging, clean, date, key, layout, short, text

HOSTILE = {
    "[#126] We got it": "[#126] We got it",
    "Order [/] status?": "Order [/] status?",
    "Esc \x1b[31mred\x1b[0m here": "Esc \\x1b[31mred\\x1b[0m here",
    "line\u2028sep\u2029para": "line\\u2028sep\\u2029para",
    "bidi \u202eevil\u202c \u2066iso\u2069": "bidi \\u202eevil\\u202c \\u2066iso\\u2069",
    "c1 \x85 \x9b2J bell\x07 del\x7f nul\x00": "c1 \\x85 \\x9b2J bell\\x07 del\\x7f nul\\x00",
    "tab\there\nnewline\rcr": "tab\\x09here\\x0anewline\\x0dcr",
}
CJK = "发票问题：请尽快处理我们的订单付款和退款"


def test_clean_escapes_controls_and_keeps_text():
    for raw, shown in HOSTILE.items():
        assert clean(raw) == shown
    assert clean(CJK + " 🔥 Grüße") == CJK + " 🔥 Grüße"
    assert clean("lone \udcff surrogate") == "lone \\udcff surrogate"
    assert clean(42) == "42"


def test_clean_multiline_keeps_lines_and_tabs():
    assert clean("a\r\nb\tc\n\x1b[2Jd\u2028", multiline=True) == "a\nb\tc\n\\x1b[2Jd\\u2028"


def _eml(tmp_path, subjects: list[str], from_name: str = "Jane Roe"):
    folder = tmp_path / "mails"
    folder.mkdir(exist_ok=True)
    for number, subject in enumerate(subjects):
        encoded = "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
        name = "=?utf-8?b?" + base64.b64encode(from_name.encode()).decode() + "?="
        raw = (
            f"From: {name} <jane{number}@acme.example>\r\nTo: support@example.com\r\nSubject: {encoded}\r\n"
            f"Message-ID: <m{number}@x.example>\r\nDate: Mon, 2 Nov 2026 09:{number:02d}:00 +0000\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nhello \x1b[2J world\r\n"
        )
        (folder / f"m{number}.eml").write_bytes(raw.encode())
    return folder


@pytest.fixture
def hostile_store(espomail, tmp_path):
    subjects = [*HOSTILE, CJK, "A very long subject that goes on and on about the printer that is on fire again"]
    result = espomail("email", "import", _eml(tmp_path, subjects), "--json")
    assert result.exit_code == 0, result
    return subjects


@pytest.fixture
def terminal(monkeypatch):
    """Render as on a terminal of the given width (rich without colours)."""

    def use(width: int) -> None:
        monkeypatch.setattr(output, "_is_tty", lambda: True)
        monkeypatch.setenv("COLUMNS", str(width))

    return use


def _no_raw_controls(text: str) -> None:
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text), text


@pytest.mark.parametrize("on_terminal", [False, True])
def test_subjects_are_never_markup_nor_control_sequences(espomail, hostile_store, terminal, on_terminal):
    if on_terminal:
        terminal(200)
    result = espomail("email", "list")
    assert result.exit_code == 0, result
    assert "[#126] We got it" in result.stdout
    assert "Order [/] status?" in result.stdout
    assert "Esc \\x1b[31mred\\x1b[0m here" in result.stdout
    assert "line\\u2028sep\\u2029para" in result.stdout
    _no_raw_controls(result.stdout)


@pytest.mark.parametrize("on_terminal", [False, True])
def test_item_card_and_body_are_escaped(espomail, hostile_store, terminal, on_terminal):
    if on_terminal:
        terminal(100)
    emails = espomail("email", "list", "--json").json
    ids = {e["subject"]: e["id"] for e in emails}
    shown = espomail("email", "show", ids["Esc \x1b[31mred\x1b[0m here"])
    assert shown.exit_code == 0, shown
    assert "Esc \\x1b[31mred\\x1b[0m here" in shown.stdout
    assert "hello \\x1b[2J world" in shown.stdout
    _no_raw_controls(shown.stdout)
    explained = espomail("email", "explain", ids["bidi \u202eevil\u202c \u2066iso\u2069"])
    assert "bidi \\u202eevil\\u202c \\u2066iso\\u2069" in explained.stdout
    _no_raw_controls(explained.stdout)


def test_json_output_keeps_the_exact_text(espomail, hostile_store):
    subjects = {e["subject"] for e in espomail("email", "list", "--json").json}
    assert {
        "Esc \x1b[31mred\x1b[0m here",
        "line\u2028sep\u2029para",
        "bidi \u202eevil\u202c \u2066iso\u2069",
    } <= subjects
    lines = espomail("email", "list", "--nl").stdout.splitlines()
    assert {json.loads(line)["subject"] for line in lines} == subjects


def test_error_lines_escape_and_json_errors_keep(espomail):
    result = espomail("user", "show", "bad\x1b]0;owned\x07name", "--json")
    assert result.exit_code == 3
    first, second = result.stderr.splitlines()
    assert first.startswith("Error: ") and "bad\\x1b]0;owned\\x07name" in first
    _no_raw_controls(first)
    assert json.loads(second)["error"]["message"].startswith("no user named 'bad\x1b]0;owned\x07name'")


def test_log_lines_are_escaped():
    from espomail.cli.app import CleanFormatter

    record = logging.LogRecord("espomail", logging.INFO, __file__, 1, "subject %s", ("a\nforged\x1b[2J",), None)
    assert CleanFormatter("%(message)s").format(record) == "subject a\\x0aforged\\x1b[2J"


# -- tables ----------------------------------------------------------------------------

EMAIL_COLUMNS = [
    key("id"),
    date("date_sent", "date"),
    text("from", priority=5, weight=2),
    text("subject", priority=7, weight=3),
    short("parent", priority=3),
    text("accounts", priority=2),
    short("status", priority=4),
]


def _cells(rows):
    return [[output._cell(r.get(c.key), c, True) for c in EMAIL_COLUMNS] for r in rows]


def _rows(count=5):
    return [
        {
            "id": 1000 + n,
            "date_sent": "2026-11-02T09:30:00Z",
            "from": f"very.long.sender.name.{n}@a-long-customer-domain.example",
            "subject": CJK + " and a long tail of English words " * 2,
            "parent": {"type": "case", "id": 120 + n},
            "accounts": ["support", "sales", "billing"],
            "status": "Archived",
        }
        for n in range(count)
    ]


@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_layout_fits_and_never_cuts_keys_dates_or_headers(width):
    cells = _cells(_rows())
    widths = layout(EMAIL_COLUMNS, cells, width)
    shown = [(c, w) for c, w in zip(EMAIL_COLUMNS, widths, strict=True) if w is not None]
    assert sum(w for _, w in shown) + output.GAP * (len(shown) - 1) <= width
    for column, column_width in shown:
        assert column_width >= cell_len(column.header)
        if column.kind is not Kind.TEXT:
            assert column_width >= max(cell_len(r[EMAIL_COLUMNS.index(column)]) for r in cells)
    assert widths[0] is not None  # the id is never hidden


def test_layout_hides_lowest_priority_first_and_gives_text_the_rest():
    cells = _cells(_rows())
    assert layout(EMAIL_COLUMNS, cells, 200)[5] is not None
    narrow = layout(EMAIL_COLUMNS, cells, 60)
    hidden = [c.key for c, w in zip(EMAIL_COLUMNS, narrow, strict=True) if w is None]
    assert hidden == ["parent", "accounts"]  # priorities 3 and 2: the lowest go first
    assert narrow[3] is not None and narrow[3] >= output.MIN_TEXT  # the subject stays
    roomy = layout(EMAIL_COLUMNS, cells, 1000)
    assert roomy[3] == max(cell_len(r[3]) for r in cells)  # nothing cut when there is room


@pytest.mark.parametrize("width", [60, 80, 200])
def test_rich_table_lines_fit_the_terminal(espomail, hostile_store, terminal, width):
    terminal(width)
    result = espomail("email", "list")
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= width for line in lines), [cell_len(line) for line in lines]
    header = lines[0].split()
    assert header[:2] == ["id", "date"] and "subject" in header  # whole words, one line
    rows = [line for line in lines[1:] if re.match(r"^\d+ ", line)]
    assert len(rows) == len(hostile_store)  # one line per email: nothing wraps
    for line in rows:
        assert re.match(r"^\d+\s+2026-11-02 09:\d\d  ", line), line  # id and date whole
    if width == 60:
        assert "…" in result.stdout  # long subjects cut with an ellipsis
        assert "not shown at this width" in result.stdout


def test_plain_table_aligns_by_terminal_cells(espomail, hostile_store):
    result = espomail("email", "list")
    lines = result.stdout.splitlines()
    header = lines[0]
    column = cell_len(header[: header.index("parent")])
    for line in lines[1:]:
        # The parent column starts at the same cell on every line, after CJK and emoji too.
        prefix = line[: len(line) - len(line.lstrip())]
        assert prefix == ""
        cut = next(i for i in range(len(line) + 1) if cell_len(line[:i]) >= column)
        assert cell_len(line[:cut]) == column and line[cut:].startswith("-"), line
    assert any(CJK in line for line in lines)  # the plain table never cuts


def test_table_cells_are_text_not_markup(monkeypatch, capsys):
    from rich.console import Console

    printed = []
    monkeypatch.setattr(output, "console", lambda: Console(width=60, force_terminal=True, record=True))
    original = output._rich_table

    def spy(columns, cells, title):
        printed.append(cells)
        original(columns, cells, title)

    monkeypatch.setattr(output, "_rich_table", spy)
    monkeypatch.setattr(output, "_is_tty", lambda: True)
    monkeypatch.setattr(output, "get_app", lambda: type("A", (), {"json": False})())
    output.emit([{"id": 1, "name": "[bold]not bold[/bold] [/]"}], [key("id"), text("name")])
    out = capsys.readouterr().out
    assert "[bold]not bold[/bold] [/]" in re.sub(r"\x1b\[[0-9;]*m", "", out)


# -- lists -----------------------------------------------------------------------------


@pytest.fixture
def five_teams(espomail):
    for name in ("a", "b", "c", "d", "e"):
        assert espomail("team", "add", f"team-{name}").exit_code == 0


def test_cut_list_says_so_with_the_total(espomail, five_teams):
    result = espomail("team", "list", "--limit", "2", "--json")
    assert result.exit_code == 0 and len(result.json) == 2
    assert result.stderr == "showing 2 of 5; use --limit/--offset or --all\n"
    middle = espomail("team", "list", "--limit", "2", "--offset", "2")
    assert middle.stderr == "showing 3-4 of 5; use --limit/--offset or --all\n"
    assert espomail("team", "list", "--limit", "5").stderr == ""
    assert espomail("team", "list", "--offset", "4", "--limit", "1").stderr == ""


def test_all_and_limit_zero_show_everything_silently(espomail, five_teams):
    for args in (["--all"], ["--limit", "0"], ["--all", "--limit", "1"]):
        result = espomail("team", "list", *args, "--json")
        assert (len(result.json), result.stderr) == (5, ""), args


def test_nl_prints_one_object_per_line(espomail, five_teams):
    result = espomail("team", "list", "--nl", "--limit", "3")
    lines = result.stdout.splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["team-a", "team-b", "team-c"]
    assert "showing 3 of 5" in result.stderr
    everything = espomail("team", "list", "--nl", "--all")
    assert len(everything.stdout.splitlines()) == 5 and everything.stderr == ""
    both = espomail("team", "list", "--nl", "--json")
    assert both.exit_code == 2 and "one of --json" in both.stderr


def test_sql_lists_ask_one_row_more(espomail, monkeypatch):
    for number in range(5):
        espomail("record", "add", "contact", "--name", f"c{number}", "--email", f"c{number}@example.com")
    first = espomail("record", "list", "contact", "--limit", "2", "--json")
    assert [r["name"] for r in first.json] == ["c0", "c1"]
    assert first.stderr == "showing 2 of 5; use --limit/--offset or --all\n"  # record lists count (test_totals)
    later = espomail("record", "list", "contact", "--limit", "2", "--offset", "2", "--json")
    assert later.stderr == "showing 3-4 of 5; use --limit/--offset or --all\n"
    assert espomail("record", "list", "contact", "--limit", "5").stderr == ""
    monkeypatch.setattr(output, "CHUNK", 2)  # --all reads in chunks
    every = espomail("record", "list", "contact", "--all", "--nl")
    assert [json.loads(line)["name"] for line in every.stdout.splitlines()] == [f"c{n}" for n in range(5)]


def test_huge_limits_are_refused(espomail):
    result = espomail("team", "list", "--limit", "99999999999999999999")
    assert result.exit_code == 2 and result.stderr.startswith("Error: ")
    assert espomail("team", "list", "--offset", "-1").exit_code == 2


def test_all_skips_rows_shifted_in_by_new_ones(monkeypatch):
    """Newest-first lists shift while --all reads them: no row is given twice."""
    monkeypatch.setattr(output, "CHUNK", 3)
    table = [{"id": n} for n in range(10, 0, -1)]

    def fetch(limit, offset):
        rows = table[offset : offset + limit]
        if offset == 0:
            table.insert(0, {"id": 11})  # a new email arrives between two chunks
        return rows

    reader = output._Reader(fetch, Paging(None))
    assert [r["id"] for r in reader.rows()] == list(range(10, 0, -1))


def test_page_total_from_a_service():
    reader = output._Reader(lambda limit, offset: Page([{"id": 1}, {"id": 2}, {"id": 3}][:limit], 5590), Paging(2))
    assert len(list(reader.rows())) == 2
    assert reader.notice() == "showing 2 of 5,590; use --limit/--offset or --all"
    assert Column("x", "x").kind is Kind.TEXT


def test_progress_bar_shows_account_names_as_text(monkeypatch):
    import rich.progress

    from espomail.cli import fetch

    added = []

    class FakeProgress:
        def __init__(self, **_):
            pass

        def start(self):
            pass

        def stop(self):
            pass

        def add_task(self, description, total):
            added.append(description)
            return len(added)

        def update(self, *_, **__):
            pass

    monkeypatch.setattr(rich.progress, "Progress", FakeProgress)
    monkeypatch.setattr(fetch.sys, "stdout", type("T", (), {"isatty": lambda self: True})())
    monkeypatch.setattr(fetch.sys, "stderr", type("T", (), {"isatty": lambda self: True})())
    update, finish = fetch._progress_bar(type("A", (), {"json": False})())
    update("[bold]acme[/] \x1b[2J", 1, 2)
    finish()
    assert added == ["\\[bold]acme\\[/] \\x1b[2J"]  # rich markup escaped: shown literally
