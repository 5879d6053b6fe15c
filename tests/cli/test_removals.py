"""Safe removals (issue 17, Deliver 4): removing a team, user, role, mail account or folder
that is still in use is refused with what uses it, unless --force, which leaves the
dependants consistent; every removal asks on a terminal and needs --yes elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from espomail.testing.messages import build_message


def snapshot(db) -> dict:
    return db.dump()


def imported(espomail, tmp_path, account: str, *messages: bytes) -> None:
    for number, raw in enumerate(messages):
        path = tmp_path / f"in{number}.eml"
        path.write_bytes(raw)
        result = espomail("email", "import", path, "--account", account, "--create-cases")
        assert result.exit_code == 0, result


@pytest.fixture
def support(espomail):
    """Team support (alice, bob, carol) is the team and round-robin target of account support."""
    espomail("team", "add", "support", "--position", "agent")
    for name in ("alice", "bob", "carol"):
        espomail("user", "add", name, "--email", f"{name}@example.com", "--team", "support:agent")
    added = espomail(
        "account", "add-group", "support", "--address", "support@example.com", "--host", "imap.example.com",
        "--username", "u", "--password-env", "TEST_IMAP_PASSWORD", "--team", "support", "--create-case",
        "--distribution", "round-robin", "--target-team", "support",
    )  # fmt: skip
    assert added.exit_code == 0, added


# -- teams ------------------------------------------------------------------------------------


def test_a_team_in_use_is_refused_with_what_uses_it(espomail, support, db):
    before = snapshot(db)
    refused = espomail("team", "remove", "support", "--yes")
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == (
        "Error: team 'support' is the team of account 'support' and the target team of its case "
        "distribution; 3 users are members; use --force to remove it anyway\n"
    )
    assert snapshot(db) == before


def test_a_forced_team_removal_leaves_the_account_usable(espomail, support, db):
    unconfirmed = espomail("team", "remove", "support", "--force")
    assert unconfirmed.exit_code == 2
    assert unconfirmed.stderr == "Error: removing team 'support' cannot be undone; confirm with --yes\n"
    removed = espomail("team", "remove", "support", "--force", "--yes", "--json")
    assert removed.exit_code == 0, removed
    assert removed.json["name"] == "support"
    assert removed.json["notes"] == [
        "account 'support' has no target team now: its distribution round-robin became none"
    ]
    account = espomail("account", "show", "support", "--json").json
    assert (account["distribution"], account["target_team"], account["teams"]) == ("none", None, [])
    # the regression: every 'account update support ...' failed after 'team remove support'
    updated = espomail("account", "update", "support", "--mark-seen", "--json")
    assert updated.exit_code == 0, updated
    assert espomail("user", "show", "alice", "--json").json["teams"] == []


def test_a_team_used_by_a_group_folder_and_shared_mail(espomail, tmp_path):
    espomail("team", "add", "sales")
    espomail("folder", "add", "Leads", "--group", "--team", "sales")
    espomail("account", "add-group", "sales", "--address", "sales@example.com", "--host", "h", "--username", "u",
             "--password-env", "TEST_IMAP_PASSWORD", "--team", "sales")  # fmt: skip
    imported(espomail, tmp_path, "sales", build_message(to="sales@example.com"))
    refused = espomail("team", "remove", "sales")
    assert refused.stderr == (
        "Error: team 'sales' is the team of account 'sales' and a team of group folder 'Leads'; "
        "1 email is shared with it; use --force to remove it anyway\n"
    )


def test_an_unused_team_needs_only_a_confirmation(espomail, db):
    espomail("team", "add", "idle")
    before = snapshot(db)
    piped = espomail("team", "remove", "idle")
    assert (piped.exit_code, piped.stderr) == (2, "Error: removing team 'idle' cannot be undone; confirm with --yes\n")
    assert snapshot(db) == before
    assert espomail("team", "remove", "idle", "--yes").exit_code == 0
    assert espomail("team", "show", "idle").exit_code == 3


# -- users ------------------------------------------------------------------------------------


@pytest.fixture
def dave(espomail, support, tmp_path, isolated):
    """dave owns a personal account (password in the keyring), is the direct assign-to user of
    account orders and has an open (Assigned) case from it."""
    espomail("role", "add", "own", "--email-read", "own", "--personal-accounts", "yes")
    espomail("user", "add", "dave", "--email", "dave@example.com", "--role", "own")
    personal = espomail(
        "account", "add-personal", "dave-mail", "--user", "dave", "--address", "dave@example.com",
        "--host", "h", "--username", "dave", "--password-stdin", input="dave-secret\n",
    )  # fmt: skip
    assert personal.exit_code == 0, personal
    orders = espomail(
        "account", "add-group", "orders", "--address", "orders@example.com", "--host", "h", "--username", "u",
        "--password-env", "TEST_IMAP_PASSWORD", "--create-case", "--distribution", "direct", "--assign-user", "dave",
    )  # fmt: skip
    assert orders.exit_code == 0, orders
    imported(espomail, tmp_path, "orders", build_message(to="orders@example.com", subject="order 1"))
    assert espomail("case", "show", "1", "--json").json["assigned_user"] == "dave"
    assert "dave-secret" in (isolated / "keyring.json").read_text()


def test_a_user_in_use_is_refused(espomail, dave, db):
    before = snapshot(db)
    refused = espomail("user", "remove", "dave", "--yes")
    assert refused.exit_code == 2
    assert refused.stderr == (
        "Error: user 'dave' is the owner of personal account 'dave-mail' and the assign-to user of account "
        "'orders'; 1 open case is assigned to them; use --force to remove it anyway\n"
    )
    assert snapshot(db) == before


def test_a_forced_user_removal_leaves_accounts_and_cases_consistent(espomail, dave, isolated):
    removed = espomail("user", "remove", "dave", "--force", "--yes")
    assert removed.exit_code == 0, removed
    assert removed.stderr == (
        "Note: personal account 'dave-mail' was removed with the user\n"
        "Note: account 'orders' has no assign-to user now: its distribution direct became none\n"
        "Note: 1 case is unassigned now (Assigned ones are New again)\n"
    )
    assert espomail("account", "show", "dave-mail").exit_code == 3
    assert "dave-secret" not in (isolated / "keyring.json").read_text()
    orders = espomail("account", "show", "orders", "--json").json
    assert (orders["distribution"], orders["assign_user"]) == ("none", None)
    case = espomail("case", "show", "1", "--json").json
    assert (case["assigned_user"], case["status"]) == (None, "New")
    assert espomail("account", "update", "orders", "--mark-seen").exit_code == 0


def test_a_user_without_uses_goes_with_their_own_things(espomail, support):
    espomail("folder", "add", "Later", "--user", "carol")
    espomail("filter", "add", "mine", "--user", "carol", "--subject", "*x*", "--action", "none")
    assert espomail("user", "remove", "carol", "--yes").exit_code == 0
    assert espomail("folder", "list", "--json").json == []
    assert espomail("filter", "list", "--json").json == []


# -- roles ------------------------------------------------------------------------------------


def test_a_role_in_use_is_refused_then_forced(espomail, support):
    espomail("role", "add", "agent", "--email-read", "team")
    for name in ("alice", "bob", "carol"):
        espomail("user", "update", name, "--add-role", "agent")
    espomail("user", "add", "erin", "--email", "erin@example.com", "--role", "agent")
    refused = espomail("role", "remove", "agent", "--yes")
    assert (refused.exit_code, refused.stderr) == (
        2,
        "Error: role 'agent' is the role of 4 users ('alice', 'bob', 'carol' and 1 more); "
        "use --force to remove it anyway\n",
    )
    assert espomail("role", "remove", "agent", "--force", "--yes").exit_code == 0
    assert espomail("user", "show", "alice", "--json").json["roles"] == []


# -- mail accounts ----------------------------------------------------------------------------


def test_an_account_in_use_is_refused_then_forced(espomail, support, tmp_path, db):
    espomail("account", "update", "support", "--smtp-host", "smtp.example.com")
    espomail("outbound", "set", "--address", "support@example.com")
    espomail("filter", "add", "spam", "--account", "support", "--subject", "*viagra*")
    imported(espomail, tmp_path, "support", build_message(subject="help"))
    before = snapshot(db)
    refused = espomail("account", "remove", "support", "--yes")
    assert refused.exit_code == 2
    assert refused.stderr == (
        "Error: account 'support' is the system's outbound sender ('espomail outbound show'); 1 filter of its own "
        "('spam') would go with it; 1 open case came in through it (replies use its Reply-To); "
        "use --force to remove it anyway\n"
    )
    assert snapshot(db) == before
    removed = espomail("account", "remove", "support", "--force", "--yes")
    assert removed.exit_code == 0, removed
    assert (
        removed.stderr == "Note: system mail has no sender now; name one with 'espomail outbound set --address ADDR'\n"
    )
    assert espomail("filter", "list", "--json").json == []
    assert espomail("case", "show", "1", "--json").json["inbound_account"] is None


def test_an_unused_account_is_removed_with_yes(espomail, dovecot, mailbox):
    espomail("account", "add-group", "idle", "--address", "idle@example.com", "--host", "h", "--username", "u",
             "--password-env", "TEST_IMAP_PASSWORD")  # fmt: skip
    assert espomail("account", "remove", "idle").exit_code == 2
    removed = espomail("account", "remove", "idle", "--yes")
    assert (removed.exit_code, removed.stderr) == (0, "")
    assert espomail("account", "list", "--json").json == []


# -- folders ----------------------------------------------------------------------------------


@pytest.fixture
def filed(espomail, tmp_path):
    """alice's folder Work: her personal account's folder and folder map target, a filter moves
    mail to it and one email is in it."""
    espomail("role", "add", "own", "--email-read", "own", "--personal-accounts", "yes")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--role", "own")
    espomail("folder", "add", "Work", "--user", "alice")
    espomail("folder", "add", "Other", "--user", "alice")
    added = espomail(
        "account", "add-personal", "alice-mail", "--user", "alice", "--address", "alice@example.com", "--host", "h",
        "--username", "a", "--password-env", "TEST_IMAP_PASSWORD", "--personal-folder", "Work",
        "--folder", "INBOX", "--folder", "Projects", "--folder-map", "Projects=Work", "--folder-map", "INBOX=Other",
    )  # fmt: skip
    assert added.exit_code == 0, added
    espomail("filter", "add", "jobs", "--user", "alice", "--subject", "*job*", "--action", "move-to-folder",
             "--folder", "Work")  # fmt: skip
    imported(espomail, tmp_path, "alice-mail", build_message(to="alice@example.com", subject="a job"))
    [email] = espomail("--as", "alice", "email", "list", "--folder", "Work", "--json").json
    return email["id"]


def test_a_folder_in_use_is_refused(espomail, filed, db):
    before = snapshot(db)
    refused = espomail("folder", "remove", "Work", "--user", "alice", "--yes")
    assert refused.exit_code == 2
    assert refused.stderr == (
        "Error: folder 'Work' of user 'alice' is the personal folder of account 'alice-mail' and where account "
        "'alice-mail' files IMAP folder 'Projects'; filter 'jobs' moves mail to it; 1 email is in it; "
        "use --force to remove it anyway\n"
    )
    assert snapshot(db) == before
    denied = espomail("--as", "alice", "folder", "remove", "Work", "--user", "alice", "--yes")
    assert denied.exit_code == 2  # her own folder: allowed, but in use


def test_a_forced_folder_removal_puts_everything_back_in_the_inbox(espomail, filed):
    removed = espomail("--as", "alice", "folder", "remove", "Work", "--user", "alice", "--force", "--yes")
    assert removed.exit_code == 0, removed
    assert removed.stderr == (
        "Note: filter 'jobs' was removed with it\n"
        "Note: account 'alice-mail' files IMAP folder 'Projects' in the inbox now\n"
        "Note: 1 email is back in the inbox\n"
    )
    account = espomail("account", "show", "alice-mail", "--json").json
    assert (account["personal_folder"], account["folder_map"]) == (None, {"INBOX": "Other"})
    assert [e["id"] for e in espomail("--as", "alice", "email", "list", "--json").json] == [filed]
    assert espomail("filter", "list", "--json").json == []


def test_group_folders_are_the_administrators(espomail, tmp_path):
    espomail("team", "add", "sales")
    espomail("user", "add", "sam", "--email", "sam@example.com", "--team", "sales")
    espomail("folder", "add", "Leads", "--group", "--team", "sales")
    assert espomail("--as", "sam", "folder", "remove", "Leads", "--group", "--yes").exit_code == 4
    assert espomail("folder", "remove", "Leads", "--yes").exit_code == 2  # --user or --group
    assert espomail("folder", "remove", "Nope", "--group", "--yes").exit_code == 3
    removed = espomail("folder", "remove", "Leads", "--group", "--yes", "--json")
    assert removed.exit_code == 0 and removed.json["name"] == "Leads"
    assert espomail("folder", "list", "--json").json == []


# -- filters and confirmation on a terminal -------------------------------------------------------


def test_a_filter_removal_needs_yes_off_a_terminal(espomail):
    espomail("filter", "add", "spam", "--global", "--subject", "*viagra*")
    assert espomail("filter", "remove", "spam").exit_code == 2
    assert espomail("filter", "list", "--json").json != []
    assert espomail("filter", "remove", "spam", "--yes").exit_code == 0


def _on_a_terminal(args: list[str], answer: str) -> subprocess.CompletedProcess:
    """Run espomail with a pseudo-terminal as stdin, answering ``answer`` to its question."""
    controller, terminal = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "espomail", *args],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_a_terminal_is_asked_and_no_changes_nothing(espomail, support, db):
    before = snapshot(db)
    declined = _on_a_terminal(["team", "remove", "support", "--force"], "n")
    assert declined.returncode == 1
    assert declined.stderr.startswith(
        "team 'support' is the team of account 'support' and the target team of its case distribution; "
        "3 users are members. Remove it anyway? [y/N]: "
    )
    assert "Error: aborted; nothing was changed" in declined.stderr
    assert snapshot(db) == before
    espomail("team", "add", "idle")
    accepted = _on_a_terminal(["team", "remove", "idle", "--json"], "y")
    assert accepted.returncode == 0, accepted
    assert accepted.stderr.startswith("Remove team 'idle'? [y/N]: ")
    assert json.loads(accepted.stdout)["name"] == "idle"
    assert espomail("team", "show", "idle").exit_code == 3


def test_an_account_left_without_its_target_team_by_an_older_version_says_how_to_fix_it(espomail, support, db):
    db.execute("UPDATE mail_accounts SET target_team_id = NULL")  # what 'team remove support' used to leave behind
    refused = espomail("account", "update", "support", "--mark-seen")
    assert (refused.exit_code, refused.stderr) == (
        2,
        "Error: --distribution round-robin needs --target-team T (or give --distribution none)\n",
    )
    fixed = espomail("account", "update", "support", "--distribution", "none", "--mark-seen", "--json")
    assert fixed.exit_code == 0 and fixed.json["distribution"] == "none"
