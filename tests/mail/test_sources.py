"""Reading import sources (issue 12 items 2 and 14, SPEC 11): mbox files split only at real
separators, ``>From`` unquoted, directories take only files that look like mail."""

from __future__ import annotations

import mailbox

import pytest

from espomail.errors import NotFound
from espomail.mail.parse import looks_like_mail, parse_message
from espomail.mail.sources import SEPARATOR, read_source, split_mbox, unquote
from espomail.testing.messages import build_message

BODY_WITH_FROM = (
    "Hello,\n\nFrom the start of 2019 at 10:30 we have been waiting.\nFrom me, with love\n\nFrom here on.\n"
)


def mbox_text(*messages: bytes, separator: bytes = b"From sender@example.com Mon Feb  8 02:53:47 1993") -> bytes:
    return b"".join(separator + b"\n" + message.rstrip(b"\n") + b"\n\n" for message in messages)


def subjects(path) -> list[str]:
    return [parse_message(source.raw).subject for source in read_source(path) if not source.skipped]


@pytest.mark.parametrize(
    "line",
    [
        b"From mrc@CAC.Washington.EDU Mon Feb  8 02:53:47 PST 1993",
        b"From MAILER-DAEMON Fri Apr 06 16:46:09 2001",
        b"From - Mon Jan 1 00:00:00 2001",
        b"From  Mon Jan 1 00:00:00 2001",
        b"From 1234567890@xxx Mon Jan 01 00:00:00 +0000 2020",
        b'From "a b"@c.example Sat Jan  3 01:05:34 1996',
        b"From a@b.example Thu, 1 Jan 2020 10:00:00 +0100",
        b"From a@b.example Mon Jan 1 00:00:00 2001\r",
    ],
)
def test_separator_shapes(line):
    assert SEPARATOR.match(line)


@pytest.mark.parametrize(
    "line",
    [
        b"From the start of 2019 at 10:30 we",
        b"From here on, Jan 5 we meet",
        b"From: a@b.example",
        b"From me Mon Jan 1 2001",
        b"From Mon Jan 5 10:00 2020 the meeting starts",
        b"From a@b.example Mon Jan 1 00:00:00 2001 and some text",
    ],
)
def test_body_lines_are_not_separators(line):
    assert not SEPARATOR.match(line)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_mbox_body_lines_starting_with_from_stay_in_their_message(tmp_path, newline):
    first = build_message(subject="one", body=BODY_WITH_FROM)
    second = build_message(subject="two", body="From Mon Jan 5 10:00 2020 the meeting\n")
    # A separator-shaped line after a non-empty line is body too.
    third = build_message(subject="three", body="line\nFrom x@y.example Mon Jan 1 00:00:00 2001\n")
    data = mbox_text(first, second, third).replace(b"\n", newline)
    path = tmp_path / "box.mbox"
    path.write_bytes(data)
    assert subjects(path) == ["one", "two", "three"]
    [one, *_rest] = list(read_source(path))
    assert b"From the start of 2019" in one.raw and b"From here on." in one.raw
    assert one.name == "box.mbox#1"


def test_mbox_written_by_python_mailbox_round_trips(tmp_path):
    box = mailbox.mbox(str(tmp_path / "py.mbox"))
    # (Python writes mboxo: a body line ">From x" would come back as "From x", read as mboxrd.)
    originals = [build_message(subject=f"m{n}", body=BODY_WITH_FROM) for n in range(3)]
    for raw in originals:
        box.add(raw)
    box.close()
    found = list(read_source(tmp_path / "py.mbox"))
    assert [parse_message(s.raw).subject for s in found] == ["m0", "m1", "m2"]
    for source, original in zip(found, originals, strict=True):
        assert parse_message(source.raw).body_text == parse_message(original).body_text


@pytest.mark.parametrize(
    ("quoted", "plain"),
    [
        (b">From a\n", b"From a\n"),
        (b">>From a\n", b">From a\n"),
        (b"x\n>>>From a\n", b"x\n>>From a\n"),
        (b"> From a\n", b"> From a\n"),
        (b"x >From a\n", b"x >From a\n"),
    ],
)
def test_mboxrd_unquoting(quoted, plain):
    assert unquote(quoted) == plain


def test_split_mbox_edge_cases():
    assert list(split_mbox(b"")) == []
    data = mbox_text(b"Subject: a\n\nx", b"Subject: b\n\ny")
    ranges = list(split_mbox(data))
    assert [data[s:e] for s, e in ranges] == [b"Subject: a\n\nx\n", b"Subject: b\n\ny\n"]
    # two separators in a row: no empty message
    sep = b"From a@b.example Mon Jan 1 00:00:00 2001\n"
    assert [data for data in (sep + b"\n" + sep + b"Subject: c\n\nz\n",) for _ in split_mbox(data)]


def test_mbox_with_empty_message_between_separators(tmp_path):
    sep = b"From a@b.example Mon Jan 1 00:00:00 2001\n"
    path = tmp_path / "e.mbox"
    path.write_bytes(sep + b"\n" + sep + b"Subject: c\n\nz\n")
    assert subjects(path) == ["c"]


def test_a_message_starting_with_from_colon_is_not_an_mbox(tmp_path):
    path = tmp_path / "obs.eml"
    path.write_bytes(b"From : Old Syntax <old@example.com>\nSubject: obs\n\nx")
    [source] = read_source(path)
    assert source.raw.startswith(b"From : Old") and parse_message(source.raw).subject == "obs"


def test_directory_takes_only_mail(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a.eml").write_bytes(build_message(subject="a"))
    (tmp_path / "sub" / "b").write_bytes(b"Date: Mon, 1 Jan 2001 00:00:00 +0000\nSubject: b\n\nbody")
    (tmp_path / "sub" / "c.msg").write_bytes(b"\xef\xbb\xbfMessage-ID: <c@x>\r\nSubject: c\r\n\r\nbody")
    (tmp_path / "sub" / "box").write_bytes(mbox_text(build_message(subject="d"), build_message(subject="e")))
    (tmp_path / "LICENSE").write_text("MIT License\n\nCopyright (c) 2024\n")
    (tmp_path / "README.md").write_text("# Title\n\nSubject: not a header\n")
    (tmp_path / "notes.txt").write_text("Subject: no sender, no date\n\ntext\n")
    (tmp_path / "script.py").write_text("from x import y\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / ".hidden" / "x.eml").write_bytes(build_message(subject="hidden"))
    (tmp_path / ".dotfile").write_bytes(build_message(subject="hidden"))
    found = list(read_source(tmp_path))
    taken = sorted(parse_message(s.raw).subject for s in found if not s.skipped)
    assert taken == ["a", "b", "c", "d", "e"]
    skipped = {s.name: s.skipped for s in found if s.skipped}
    assert set(skipped) == {"LICENSE", "README.md", "notes.txt", "script.py", "empty"}
    assert skipped["empty"] == "empty file" and skipped["LICENSE"].startswith("not mail")


@pytest.mark.parametrize(
    ("head", "mail"),
    [
        (b"From: a@b\n\nx", True),
        (b"Date: Mon, 1 Jan 2001 00:00:00 +0000\n", True),
        (b"message-id: <x@y>\n", True),
        (b"Received: from x\n\tby y\nFrom: a@b\n\n", True),
        (b"Subject: only\n\nx", False),
        (b"# README\nFrom: a@b\n", False),
        (b"\x00\x01\x02", False),
        (b"", False),
    ],
)
def test_looks_like_mail(head, mail):
    assert looks_like_mail(head) is mail


def test_missing_source():
    with pytest.raises(NotFound):
        list(read_source(__import__("pathlib").Path("/nonexistent/espomail/x")))


def test_import_of_an_mbox_with_from_lines_in_bodies(espomail, tmp_path):
    path = tmp_path / "two.mbox"
    path.write_bytes(mbox_text(build_message(subject="first", body=BODY_WITH_FROM), build_message(subject="second")))
    result = espomail("email", "import", path, "--json")
    assert result.exit_code == 0, result
    assert result.json["messages"] == 2 and result.json["new"] == 2 and result.json["skipped"] == []
    assert sorted(e["subject"] for e in espomail("email", "list", "--json").json) == ["first", "second"]


def test_import_of_a_directory_lists_what_it_skipped(espomail, tmp_path):
    tmp_path = tmp_path / "import"
    tmp_path.mkdir()
    (tmp_path / "m.eml").write_bytes(build_message(subject="mail"))
    (tmp_path / "LICENSE").write_text("MIT License\n")
    (tmp_path / "README.md").write_text("# readme\n")
    result = espomail("email", "import", tmp_path, "--json")
    assert result.exit_code == 0, result
    assert result.json["new"] == 1 and sorted(result.json["skipped"]) == ["LICENSE", "README.md"]
    assert [e["subject"] for e in espomail("email", "list", "--json").json] == ["mail"]
