"""Notifications and stream notes end to end; per-user mailbox actions."""

import datetime as dt

import pytest

from espomail.testing.messages import build_message

NOTIFICATION_KEYS = {"id", "user", "type", "email_id", "record", "is_read", "created_at"}


@pytest.fixture
def world(espomail):
    espomail("team", "add", "support")
    espomail("team", "add", "sales")
    espomail("role", "add", "own", "--email-read", "own")
    espomail("role", "add", "team", "--email-read", "team")
    espomail("role", "add", "all", "--email-read", "all")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--team", "support", "--role", "team")
    espomail("user", "add", "olga", "--email", "olga@example.com", "--team", "sales", "--role", "own")
    espomail("user", "add", "ari", "--email", "ari@example.com", "--team", "sales", "--role", "all")
    espomail("record", "add", "account", "--name", "Acme", "--email", "info@acme.example")
    espomail("record", "add", "contact", "--name", "Jane", "--email", "jane@acme.example", "--account", "1")


def notifications(espomail, user):
    result = espomail("--as", user, "notification", "list", "--json")
    assert result.exit_code == 0, result
    return result.json


def fetch(espomail):
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    return result.json


def test_followers_are_notified_when_their_read_level_allows(espomail, dovecot, group_account, world):
    for user in ("alice", "olga", "ari"):
        espomail("record", "follow", "account", "1", "--user", user)
    _, box = group_account("support", "--team", "support")
    dovecot.append(box, build_message(from_="jane@acme.example", subject="Order 42"))
    fetch(espomail)
    [alice] = notifications(espomail, "alice")
    assert NOTIFICATION_KEYS <= set(alice)
    assert alice["type"] == "stream-note" and alice["record"] == {"type": "account", "id": 1}
    assert notifications(espomail, "olga") == []  # own, and not among the email's users
    assert [n["type"] for n in notifications(espomail, "ari")] == ["stream-note"]  # level all
    stream = espomail("record", "show", "account", "1", "--json").json["stream"]
    assert [n["type"] for n in stream] == ["email-received"]
    [email] = espomail("email", "list", "--json").json
    notify = [e for e in espomail("email", "explain", email["id"], "--json").json["events"] if e["step"] == "notify"]
    assert "olga" in notify[0]["detail"]["followers not notified"]


def test_newly_reached_users_get_email_received_but_not_the_sender(espomail, dovecot, group_account, world):
    _, box = group_account("support", "--team", "support")
    dovecot.append(box, build_message(from_="olga@example.com", to="support@example.com", cc="ari@example.com"))
    fetch(espomail)
    assert [n["type"] for n in notifications(espomail, "alice")] == ["email-received"]
    assert [n["type"] for n in notifications(espomail, "ari")] == ["email-received"]
    assert notifications(espomail, "olga") == []


def test_old_mail_is_not_notified(espomail, dovecot, group_account, world):
    _, box = group_account("support", "--team", "support")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=5)
    dovecot.append(box, build_message(date=old))
    fetch(espomail)
    assert notifications(espomail, "alice") == []


def test_duplicate_from_another_account_notifies_only_new_users(espomail, dovecot, group_account, world):
    _, support = group_account("support", "--team", "support")
    _, sales = group_account("sales", "--team", "sales")
    raw = build_message(to=["support@example.com", "sales@example.com"])
    dovecot.append(support, raw)
    fetch(espomail)
    assert len(notifications(espomail, "alice")) == 1
    assert notifications(espomail, "ari") == []
    dovecot.append(sales, raw)
    summary = fetch(espomail)
    assert summary["duplicates"] == 1
    assert len(notifications(espomail, "alice")) == 1
    assert len(notifications(espomail, "ari")) == 1 and len(notifications(espomail, "olga")) == 1


def test_notification_read(espomail, dovecot, group_account, world):
    _, box = group_account("support", "--team", "support")
    dovecot.append(box, [build_message(), build_message()])
    fetch(espomail)
    first, second = notifications(espomail, "alice")
    assert espomail("--as", "alice", "notification", "read", first["id"]).exit_code == 0
    unread = espomail("--as", "alice", "notification", "list", "--unread", "--json").json
    assert [n["id"] for n in unread] == [second["id"]]
    assert espomail("--as", "olga", "notification", "read", second["id"]).exit_code == 3
    assert espomail("--as", "alice", "notification", "read", "--all", "--json").json["marked_read"] == 1


def test_per_user_state_changes_nothing_for_others(espomail, dovecot, group_account, world):
    espomail("user", "update", "ari", "--add-team", "support")
    espomail("folder", "add", "Later", "--user", "alice")
    _, box = group_account("support", "--team", "support")
    dovecot.append(box, build_message(subject="shared"))
    fetch(espomail)
    [email] = espomail("--as", "alice", "email", "list", "--json").json
    eid = email["id"]
    assert email["is_read"] is False
    assert espomail("--as", "alice", "email", "read", eid, "--json").json["is_read"] is True
    assert espomail("--as", "alice", "email", "trash", eid).exit_code == 0
    assert espomail("--as", "alice", "email", "list", "--json").json == []
    assert [e["id"] for e in espomail("--as", "ari", "email", "list", "--json").json] == [eid]
    assert espomail("--as", "alice", "email", "restore", eid).exit_code == 0
    assert espomail("--as", "alice", "email", "archive", eid).exit_code == 0
    assert [e["id"] for e in espomail("--as", "alice", "email", "list", "--folder", "archive", "--json").json] == [eid]
    assert espomail("--as", "alice", "email", "move", eid, "--folder", "Later").exit_code == 0
    [filed] = espomail("--as", "alice", "email", "list", "--folder", "Later", "--json").json
    assert filed["folder"] == "Later" and filed["in_archive"] is False
    ari = espomail("--as", "ari", "email", "show", eid, "--json").json
    assert (ari["is_read"], ari["in_trash"], ari["in_archive"], ari["folder"]) == (False, False, False, None)
    assert espomail("email", "trash", eid).exit_code == 2  # per user: needs --as
    assert espomail("--as", "olga", "email", "trash", eid).exit_code == 4  # own, not among its users
