"""Honest totals (issue 17): a list cut by its limit says how many rows it has in all
(`showing 100 of 105; use --limit/--offset or --all`), counted cheaply: exactly where an
index gives it, else up to 1,000 rows ("of more than 1,000"); --all reads email lists on
with a keyset cursor instead of OFFSET."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from espomail import model
from espomail.cli import output
from espomail.model import Page
from espomail.testing.messages import build_message

NOTICE = "; use --limit/--offset or --all\n"


@pytest.fixture
def mailroom(espomail, tmp_path, db):
    """105 emails to account support (team support: alice), 3 of them without a date (as a
    store written by other tools may have them: imports date undated mail by its arrival), 1
    more skipped by a global filter; alice reads level team."""
    espomail("team", "add", "support")
    espomail("role", "add", "reader", "--email-read", "team")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--team", "support", "--role", "reader")
    added = espomail(
        "account", "add-group", "support", "--address", "support@example.com", "--host", "h", "--username", "u",
        "--password-env", "TEST_IMAP_PASSWORD", "--team", "support",
    )  # fmt: skip
    assert added.exit_code == 0, added
    espomail("filter", "add", "spam", "--global", "--subject", "*viagra*")
    folder = tmp_path / "mail"
    folder.mkdir()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for number in range(102):
        # pairs share a date: the keyset must break ties by id
        when = start + dt.timedelta(hours=number // 2)
        (folder / f"{number:03}.eml").write_bytes(build_message(subject=f"mail {number}", date=when))
    for number in range(3):
        (folder / f"u{number}.eml").write_bytes(build_message(subject=f"undated {number}"))
    (folder / "spam.eml").write_bytes(build_message(subject="cheap viagra"))
    result = espomail("email", "import", folder, "--account", "support", "--json")
    assert result.exit_code == 0, result
    ids = [r["id"] for r in db.rows("SELECT id FROM emails WHERE subject LIKE 'undated%'")]
    marks = ", ".join("?" for _ in ids)
    db.execute(f"UPDATE emails SET date_sent = NULL WHERE id IN ({marks})", ids)
    db.execute(f"UPDATE email_users SET sort_date = NULL WHERE email_id IN ({marks})", ids)


def test_email_lists_say_how_many_there_are(espomail, mailroom):
    admin = espomail("email", "list", "--json")
    assert len(admin.json) == 100
    assert admin.stderr == "showing 100 of 105" + NOTICE  # the filtered one is not in the list
    table = espomail("email", "list", "--limit", "10", "--offset", "20")
    assert table.stderr == "showing 21-30 of 105" + NOTICE
    inbox = espomail("--as", "alice", "email", "list", "--nl")
    assert len(inbox.stdout.splitlines()) == 100
    assert inbox.stderr == "showing 100 of 105" + NOTICE
    assert espomail("--as", "alice", "email", "list", "--folder", "all", "--limit", "5").stderr == (
        "showing 5 of 105" + NOTICE
    )
    assert espomail("email", "list", "--account", "support", "--limit", "5").stderr == "showing 5 of 105" + NOTICE
    assert espomail("email", "list", "--state", "filtered", "--json").stderr == ""  # not cut: 1 of 1
    assert espomail("email", "list", "--limit", "105").stderr == ""
    assert espomail("email", "list", "--all", "--json").stderr == ""


def test_costly_lists_are_counted_up_to_a_bound(espomail, mailroom, monkeypatch):
    monkeypatch.setattr(model, "COUNTED_AT_LEAST", 10)
    inbox = espomail("--as", "alice", "email", "list", "--limit", "5", "--json")
    assert inbox.stderr == "showing 5 of more than 10" + NOTICE
    further = espomail("--as", "alice", "email", "list", "--limit", "5", "--offset", "12", "--json")
    assert further.stderr == "showing 13-17 of more than 20" + NOTICE
    near_the_end = espomail("--as", "alice", "email", "list", "--limit", "5", "--offset", "95", "--json")
    assert near_the_end.stderr == "showing 96-100 of 105" + NOTICE
    # the administrator's whole list is counted exactly from indexes, however long
    assert espomail("email", "list", "--limit", "5").stderr == "showing 5 of 105" + NOTICE


def _ids(result) -> list[int]:
    return [json.loads(line)["id"] for line in result.stdout.splitlines()]


@pytest.mark.parametrize("who", [(), ("--as", "alice")], ids=["admin", "alice"])
def test_all_reads_on_with_a_keyset_in_list_order(espomail, mailroom, monkeypatch, who):
    expected = [e["id"] for e in espomail(*who, "email", "list", "--limit", "200", "--json").json]
    assert len(expected) == 105 and len(set(expected)) == 105
    monkeypatch.setattr(output, "CHUNK", 7)  # chunk edges fall inside same-date pairs and the undated tail
    every = espomail(*who, "email", "list", "--all", "--nl")
    assert (every.exit_code, every.stderr) == (0, "")
    assert _ids(every) == expected
    subjects = [json.loads(line)["subject"] for line in every.stdout.splitlines()]
    # undated mail comes last (among themselves by id: the order a batch wrote them, engine's choice)
    assert sorted(subjects[-3:]) == ["undated 0", "undated 1", "undated 2"]
    offset = espomail(*who, "email", "list", "--all", "--offset", "10", "--nl")
    assert _ids(offset) == expected[10:]


def test_keyset_continuation_does_not_skip_or_repeat_when_mail_arrives(monkeypatch):
    """With a cursor, a row added at the top while --all reads shifts nothing (no OFFSET)."""
    monkeypatch.setattr(output, "CHUNK", 3)
    table = [{"id": n} for n in range(10, 0, -1)]

    def page(after: int | None, limit: int) -> Page:
        start = 0 if after is None else next(i for i, r in enumerate(table) if r["id"] == after) + 1
        rows = table[start : start + limit]
        if after is None:
            table.insert(0, {"id": 11})  # a new email arrives between two chunks
        following = (lambda n, last=rows[-1]["id"]: page(last, n)) if rows else None
        return Page(rows, None, True, following)

    reader = output._Reader(lambda limit, offset: page(None, limit), output.Paging(None))
    assert [r["id"] for r in reader.rows()] == list(range(10, 0, -1))


def test_the_notice_without_a_total_still_says_more_follow():
    fetch = lambda limit, offset: [{"id": n} for n in range(offset, min(offset + limit, 9))]  # noqa: E731
    first = output._Reader(fetch, output.Paging(2))
    list(first.rows())
    assert first.notice() == "showing the first 2; use --limit/--offset or --all"
    later = output._Reader(fetch, output.Paging(2, 4))
    list(later.rows())
    assert later.notice() == "showing 5-6, more follow; use --limit/--offset or --all"


def test_cases_notifications_and_records_say_how_many(espomail, mailroom, tmp_path):
    for number in range(4):
        espomail("record", "add", "contact", "--name", f"c{number}", "--email", f"c{number}@x.example")
    assert espomail("record", "list", "contact", "--limit", "3").stderr == "showing 3 of 4" + NOTICE
    espomail("account", "update", "support", "--create-case", "--target-team", "support")
    folder = tmp_path / "cases"
    folder.mkdir()
    for number in range(3):
        (folder / f"{number}.eml").write_bytes(build_message(subject=f"case {number}"))
    assert espomail("email", "import", folder, "--account", "support", "--create-cases").exit_code == 0
    assert espomail("case", "list", "--limit", "2", "--json").stderr == "showing 2 of 3" + NOTICE
    assert espomail("--as", "alice", "case", "list", "--limit", "1").stderr == "showing 1 of 3" + NOTICE
    assert espomail("case", "list", "--status", "new", "--limit", "1").stderr == "showing 1 of 3" + NOTICE
    notes = espomail("--as", "alice", "notification", "list", "--limit", "2", "--json")
    assert notes.stderr == "showing 2 of 6" + NOTICE  # 3 cases, 3 recent (undated) mails; the rest are too old
    unread = espomail("--as", "alice", "notification", "list", "--unread", "--limit", "2")
    assert unread.stderr == "showing 2 of 6" + NOTICE


def test_lists_read_whole_say_how_many(espomail):
    for name in ("a", "b", "c"):
        espomail("team", "add", name)
        espomail("role", "add", name)
        espomail("user", "add", name, "--email", f"{name}@example.com")
        espomail("folder", "add", f"f{name}", "--user", "a")
        espomail("filter", "add", f"x{name}", "--global", "--subject", f"*{name}*")
        espomail("account", "add-group", name, "--address", f"{name}@example.com", "--host", "h", "--username", "u",
                 "--password-env", "TEST_IMAP_PASSWORD")  # fmt: skip
    for group in ("team", "user", "role", "folder", "filter", "account"):
        assert espomail(group, "list", "--limit", "2").stderr == "showing 2 of 3" + NOTICE, group
