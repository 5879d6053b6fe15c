"""``--mark-seen`` marks every fetched message seen, over-size ones too (issue 17 mission gap).

A message over ``max_message_size_mb`` is downloaded with a headers-only FETCH, which does
not set \\Seen: espomail now stores the flag on it. Runs on Dovecot and on Cyrus.
"""

from __future__ import annotations

import pytest

from espomail.testing.messages import build_message

BIG_BODY = "x" * 70 + "\n"


def flags_by_subject(server, user: str) -> dict[str, bool]:
    with server.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        found = client.fetch(client.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    seen = {}
    for data in found.values():
        subject = data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().partition(":")[2].strip()
        seen[subject] = b"\\Seen" in data[b"FLAGS"]
    return seen


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setenv("ESPOMAIL_MAX_MESSAGE_SIZE_MB", "0.01")  # about 10 kB


@pytest.mark.parametrize("mark_seen", [True, False], ids=["mark-seen", "keep-unread"])
def test_over_size_messages_are_marked_seen_too(espomail, imap_server, group_account, small_limit, mark_seen):
    _, box = group_account("support", "--mark-seen" if mark_seen else "--keep-unread")
    imap_server.append(box, build_message(subject="small"))
    imap_server.append(box, build_message(subject="big one", body=BIG_BODY * 400))  # about 28 kB
    imap_server.append(box, build_message(subject="big two", body=BIG_BODY * 2000))
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    assert result.json["new"] == 3
    truncated = {e["subject"]: e.get("truncated") for e in espomail("email", "list", "--json").json}
    assert truncated["big one"] and truncated["big two"] and not truncated["small"], truncated
    assert flags_by_subject(imap_server, box) == {"small": mark_seen, "big one": mark_seen, "big two": mark_seen}


def test_a_later_fetch_marks_its_over_size_message_seen(espomail, dovecot, group_account, small_limit):
    _, box = group_account("support", "--mark-seen")
    dovecot.append(box, build_message(subject="big", body=BIG_BODY * 400))
    assert espomail("fetch").exit_code == 0
    dovecot.append(box, build_message(subject="later big", body=BIG_BODY * 400))
    second = espomail("fetch", "--json")
    assert second.exit_code == 0 and second.json["new"] == 1, second
    assert flags_by_subject(dovecot, box) == {"big": True, "later big": True}
