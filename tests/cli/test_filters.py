"""Filters end to end: global, account and user scopes, ``filter test``, allowed actions."""

import pytest

from espomail.testing.messages import build_message

FILTER_KEYS = {
    "id",
    "name",
    "scope",
    "account",
    "user",
    "from",
    "to",
    "subject",
    "body_contains",
    "body_contains_all",
    "action",
    "folder",
    "mark_read",
    "skip_notification",
}


@pytest.fixture
def team(espomail):
    espomail("team", "add", "support")
    espomail("role", "add", "reader", "--email-read", "own")
    for name in ("alice", "bob"):
        espomail("user", "add", name, "--email", f"{name}@example.com", "--team", "support", "--role", "reader")


def fetch(espomail):
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    return result.json


def test_global_skip_filter_keeps_spam_out_of_every_account(espomail, dovecot, group_account, team, db):
    added = espomail("filter", "add", "spam", "--global", "--from", "*@spam.example", "--json")
    assert added.exit_code == 0, added
    assert FILTER_KEYS <= set(added.json)
    _, support = group_account("support", "--team", "support")
    _, sales = group_account("sales")
    for user in (support, sales):
        dovecot.append(
            user,
            [
                build_message(from_="Bad <BAD@SPAM.example>", subject="win"),
                build_message(from_="good@customer.example", subject=f"real {user}"),
            ],
        )
    summary = fetch(espomail)
    assert summary["new"] == 2
    assert sum(a["filtered"] for a in summary["accounts"]) == 2
    subjects = {e["subject"] for e in espomail("email", "list", "--json").json}
    assert subjects == {f"real {support}", f"real {sales}"}
    filtered = espomail("email", "list", "--state", "filtered", "--json").json
    assert [e["subject"] for e in filtered] == ["win", "win"]
    why = espomail("email", "explain", filtered[0]["id"], "--json").json
    skip = [e for e in why["events"] if e["step"] == "account-filter"]
    assert skip[0]["decision"] == "skipped" and skip[0]["detail"]["filter"] == "spam"


def test_user_skip_filter_trashes_for_that_user_only(espomail, dovecot, group_account, team):
    espomail("filter", "add", "no-news", "--user", "alice", "--subject", "*NEWSLETTER*")
    _, user = group_account("support", "--team", "support")
    dovecot.append(user, build_message(subject="Our Newsletter of May"))
    fetch(espomail)
    alice_inbox = espomail("--as", "alice", "email", "list", "--json").json
    alice_trash = espomail("--as", "alice", "email", "list", "--folder", "trash", "--json").json
    bob_inbox = espomail("--as", "bob", "email", "list", "--json").json
    assert alice_inbox == [] and [e["subject"] for e in alice_trash] == ["Our Newsletter of May"]
    assert [e["subject"] for e in bob_inbox] == ["Our Newsletter of May"]
    assert alice_trash[0]["in_trash"] is True and bob_inbox[0]["in_trash"] is False


def test_user_filter_moves_to_folder_and_marks_read(espomail, dovecot, group_account, team):
    espomail("folder", "add", "Invoices", "--user", "bob")
    espomail(
        "filter",
        "add",
        "inv",
        "--user",
        "bob",
        "--body-contains",
        "invoice",
        "--body-contains",
        "bill",
        "--action",
        "move-to-folder",
        "--folder",
        "Invoices",
        "--mark-read",
    )
    _, user = group_account("support", "--team", "support")
    dovecot.append(user, build_message(subject="March", body="Please find the INVOICE attached."))
    fetch(espomail)
    assert espomail("--as", "bob", "email", "list", "--json").json == []
    [filed] = espomail("--as", "bob", "email", "list", "--folder", "Invoices", "--json").json
    assert filed["folder"] == "Invoices" and filed["is_read"] is True


def test_subject_filter_ignores_case(espomail, dovecot, group_account, team):
    espomail("filter", "add", "alerts", "--account", "support", "--subject", "*alert*")
    _, user = group_account("support", "--team", "support")
    espomail("filter", "add", "alerts", "--account", "support", "--subject", "*alert*")
    dovecot.append(user, [build_message(subject="DISK ALERT on db1"), build_message(subject="hello")])
    assert fetch(espomail)["new"] == 1


def test_body_contains_all_needs_every_phrase(espomail, dovecot, group_account, team):
    _, user = group_account("support")
    espomail(
        "filter", "add", "both", "--account", "support", "--body-contains-all", "alpha", "--body-contains-all", "beta"
    )
    dovecot.append(user, [build_message(body="alpha only"), build_message(body="Alpha and BETA")])
    assert fetch(espomail)["accounts"][0]["filtered"] == 1


def test_to_pattern_matches_cc(espomail, dovecot, group_account, team):
    _, user = group_account("support")
    espomail("filter", "add", "cc", "--account", "support", "--to", "list@lists.example")
    dovecot.append(user, build_message(to="support@example.com", cc="LIST@lists.example"))
    assert fetch(espomail)["accounts"][0]["filtered"] == 1


def test_filter_test_reports_without_storing(espomail, team, tmp_path, db):
    espomail("filter", "add", "spam", "--global", "--from", "*@spam.example")
    espomail(
        "filter", "add", "mine", "--user", "alice", "--subject", "*urgent*", "--action", "none", "--skip-notification"
    )
    path = tmp_path / "m.eml"
    path.write_bytes(build_message(from_="x@spam.example", subject="URGENT offer"))
    result = espomail("filter", "test", path, "--user", "alice", "--json")
    assert result.exit_code == 0, result
    data = result.json
    assert data["account_decision"]["action"] == "skip" and data["account_decision"]["filter"] == "spam"
    assert data["user_decision"]["filter"] == "mine"
    assert {f["name"] for f in data["matching_filters"]} == {"spam", "mine"}
    text = espomail("filter", "test", path, "--user", "alice").stdout
    assert "skip by filter 'spam'" in text
    assert db.value("SELECT COUNT(*) FROM emails") == 0


@pytest.mark.parametrize(
    "args, words",
    [
        (["--global", "--from", "*", "--action", "move-to-folder", "--folder", "X"], "not allowed for a global"),
        (["--global"], "needs at least one"),
        (["--global", "--user", "alice", "--from", "x"], "exactly one"),
        (["--user", "alice", "--from", "x", "--action", "move-to-folder"], "needs --folder"),
        (["--user", "alice", "--from", "x", "--action", "move-to-folder", "--folder", "Nope"], "has no folder"),
        (["--global", "--from", "x", "--mark-read"], "apply to user filters"),
    ],
)
def test_invalid_filters_are_refused(espomail, team, args, words):
    result = espomail("filter", "add", "bad", *args)
    assert result.exit_code in (2, 3), result
    assert words in result.stderr
    assert espomail("filter", "list", "--json").json == []


def test_group_account_filter_moves_to_group_folder(espomail, dovecot, group_account, team):
    espomail("folder", "add", "Escalations", "--group", "--team", "support")
    _, user = group_account("support")
    added = espomail(
        "filter",
        "add",
        "esc",
        "--account",
        "support",
        "--subject",
        "*escalat*",
        "--action",
        "move-to-group-folder",
        "--folder",
        "Escalations",
    )
    assert added.exit_code == 0, added
    dovecot.append(user, build_message(subject="Escalation: outage"))
    fetch(espomail)
    [email] = espomail("--as", "alice", "email", "list", "--folder", "Escalations", "--json").json
    assert email["subject"] == "Escalation: outage" and "support" in email["teams"]
    assert espomail("--as", "alice", "email", "list", "--json").json == []


def test_personal_account_filters_may_only_skip(espomail, team):
    espomail(
        "account",
        "add-personal",
        "alice-mail",
        "--user",
        "alice",
        "--address",
        "alice@example.com",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
    )
    espomail("folder", "add", "Escalations", "--group", "--team", "support")
    refused = espomail(
        "filter",
        "add",
        "x",
        "--account",
        "alice-mail",
        "--from",
        "a*",
        "--action",
        "move-to-group-folder",
        "--folder",
        "Escalations",
    )
    assert refused.exit_code == 2
    assert espomail("filter", "add", "x", "--account", "alice-mail", "--from", "a*").exit_code == 0


def test_filter_show_and_remove(espomail, team):
    espomail("filter", "add", "spam", "--global", "--from", "*@spam.example")
    assert espomail("filter", "show", "spam", "--json").json["from"] == "*@spam.example"
    assert espomail("filter", "remove", "spam", "--yes").exit_code == 0
    assert espomail("filter", "show", "spam").exit_code == 3


@pytest.mark.parametrize(
    "option, value",
    [
        ("--subject", "*a" * 600 + "*b"),
        ("--from", "x" * 1001),
        ("--to", "*" * 2000),
        ("--subject", "line\nbreak*"),
        ("--body-contains", "y" * 1500),
    ],
)
def test_a_too_long_or_multi_line_pattern_is_refused_and_nothing_is_saved(espomail, option, value):
    result = espomail("filter", "add", "hostile", "--global", option, value)
    assert result.exit_code == 2, result
    assert result.stderr.startswith("Error: --"), result
    assert espomail("filter", "list", "--json").json == []
