"""The operator's day at the shell (issue 17): one vocabulary, short confirmations, dry runs,
helpful errors, help with examples, completion and man pages."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from espomail.testing.messages import build_message

# -- one vocabulary --------------------------------------------------------------------


@pytest.fixture
def people(espomail):
    espomail("team", "add", "support", "--position", "agent")
    espomail("team", "add", "sales")
    espomail("role", "add", "reader", "--email-read", "team")
    for name in ("alice", "bob"):
        added = espomail(
            "user", "add", name, "--email", f"{name}@example.com", "--team", "support:agent", "--role", "reader"
        )
        assert added.exit_code == 0, added


@pytest.fixture
def cased(espomail, dovecot, group_account, people):
    """Two cases from two customer emails (no assignment)."""
    _, box = group_account("support", "--team", "support", "--create-case", address="support@example.com")
    dovecot.append(box, [build_message(subject="one"), build_message(subject="two")])
    assert espomail("fetch").exit_code == 0
    return espomail("case", "list", "--json").json


def test_assignee_is_one_option_and_old_spellings_still_work(espomail, cased):
    assert espomail("case", "update", "1", "--assignee", "alice").exit_code == 0
    assert espomail("case", "update", "2", "--assign", "bob").exit_code == 0  # old spelling
    mine = espomail("case", "list", "--assignee", "alice", "--json").json
    assert [c["number"] for c in mine] == [1]
    old = espomail("case", "list", "--assigned", "bob", "--json").json
    assert [c["number"] for c in old] == [2]
    helped = espomail("case", "list", "--help").stdout + espomail("case", "update", "--help").stdout
    assert "--assignee" in helped and "--assigned" not in helped and "--assign " not in helped


def test_choices_are_case_insensitive_and_stored_canonical(espomail, cased):
    updated = espomail("case", "update", "1", "--status", "pending", "--priority", "HIGH", "--json")
    assert updated.exit_code == 0, updated
    assert (updated.json["status"], updated.json["priority"]) == ("Pending", "High")
    assert [c["number"] for c in espomail("case", "list", "--status", "PENDING", "--json").json] == [1]
    role = espomail("role", "add", "agent", "--email-read", "TEAM", "--group-send", "All", "--json").json
    assert (role["email_read"], role["group_send"]) == ("team", "all")
    assert espomail("account", "update", "support", "--security", "STARTTLS", "--json").json["security"] == "starttls"


def test_filter_skip_notifications_matches_folder(espomail, people):
    new = espomail("filter", "add", "quiet", "--user", "alice", "--from", "*@noisy.example", "--skip-notifications")
    assert new.exit_code == 0, new
    old = espomail("filter", "add", "old", "--user", "alice", "--from", "*@x.example", "--skip-notification", "--json")
    assert old.exit_code == 0 and old.json["skip_notification"] is True
    assert espomail("filter", "show", "quiet", "--json").json["skip_notification"] is True
    assert "--skip-notification " not in espomail("filter", "add", "--help").stdout


def test_account_update_adds_and_removes_teams(espomail, group_account, people):
    group_account("support", "--team", "support")
    added = espomail("account", "update", "support", "--add-team", "sales", "--json")
    assert added.exit_code == 0 and sorted(added.json["teams"]) == ["sales", "support"]
    removed = espomail("account", "update", "support", "--remove-team", "SUPPORT", "--json")
    assert removed.json["teams"] == ["sales"]
    replaced = espomail("account", "update", "support", "--team", "support", "--json")  # old spelling: replaces
    assert replaced.json["teams"] == ["support"]
    missing = espomail("account", "update", "support", "--remove-team", "sales")
    assert missing.exit_code == 2 and "has no team 'sales'" in missing.stderr
    last = espomail("account", "update", "support", "--remove-team", "support")
    assert last.exit_code == 2 and "without a team" in last.stderr
    assert espomail("account", "show", "support", "--json").json["teams"] == ["support"]
    helped = espomail("account", "update", "--help").stdout
    assert "--add-team" in helped and "--team " not in helped


def test_records_by_id_or_name(espomail, people):
    espomail("record", "add", "account", "--name", "Acme Ltd", "--email", "info@acme.example")
    espomail("record", "add", "account", "--name", "Twice")
    espomail("record", "add", "account", "--name", "Twice")
    by_name = espomail("record", "show", "account", "Acme Ltd", "--json")
    assert by_name.exit_code == 0 and by_name.json["id"] == 1
    assert espomail("record", "show", "account", "1", "--json").json["name"] == "Acme Ltd"
    assert espomail("record", "show", "ACCOUNT", "Acme Ltd").exit_code == 0
    ambiguous = espomail("record", "show", "account", "Twice")
    assert ambiguous.exit_code == 2 and "ids 2, 3" in ambiguous.stderr
    assert espomail("record", "show", "account", "Nobody").exit_code == 3
    followed = espomail("record", "follow", "account", "Acme Ltd", "--user", "alice")
    assert followed.exit_code == 0 and followed.stderr == "alice follows account 1\n" and followed.stdout == ""
    assert espomail("record", "show", "account", "Acme Ltd", "--json").json["followers"] == ["alice"]
    assert espomail("record", "unfollow", "account", "Acme Ltd", "--user", "alice", "--json").json["followers"] == []
    assert espomail("record", "follow", "case", "first", "--user", "alice").exit_code == 2


# -- short confirmations ---------------------------------------------------------------


def test_per_user_actions_confirm_in_one_line(espomail, dovecot, group_account, people):
    espomail("folder", "add", "Later", "--user", "alice")
    _, box = group_account("support", "--team", "support")
    dovecot.append(box, build_message(subject="shared"))
    assert espomail("fetch").exit_code == 0
    [email] = espomail("--as", "alice", "email", "list", "--json").json
    eid = email["id"]
    expected = {
        ("read",): f"Marked email {eid} read for alice",
        ("unread",): f"Marked email {eid} unread for alice",
        ("trash",): f"Trashed email {eid} for alice",
        ("restore",): f"Restored email {eid} for alice",
        ("archive",): f"Archived email {eid} for alice",
        ("move", "--folder", "Later"): f"Moved email {eid} to Later for alice",
    }
    for (action, *rest), line in expected.items():
        result = espomail("--as", "alice", "email", action, eid, *rest)
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", line + "\n"), action
    as_json = espomail("--as", "alice", "email", "read", eid, "--json")
    assert as_json.json["id"] == eid and as_json.json["is_read"] is True  # --json unchanged
    read = espomail("--as", "alice", "notification", "read", "--all")
    assert read.exit_code == 0 and read.stderr.startswith("Marked ") and read.stderr.endswith("for alice\n")
    deleted = espomail("email", "delete", eid, "--yes")
    assert deleted.stderr == f"Deleted email {eid} for every user\n"


# -- fetch --dry-run -------------------------------------------------------------------


def test_dry_run_prints_when_piped_and_stores_nothing(espomail, dovecot, group_account):
    _, box = group_account("support")
    dovecot.append(box, [build_message(), build_message()])
    result = espomail("fetch", "--dry-run")
    assert result.exit_code == 0, result
    header, row = result.stdout.splitlines()
    assert header.split()[:4] == ["account", "status", "to", "fetch"] and row.split()[:3] == ["support", "ok", "2"]
    assert "dry run: nothing was stored" in result.stderr
    assert espomail("email", "list", "--json").json == []
    assert espomail("fetch", "--dry-run", "--json").json["accounts"][0]["new"] == 2


# -- errors ----------------------------------------------------------------------------


def test_missing_config_hint_names_the_root_option(espomail, tmp_path):
    path = tmp_path / "nope.yaml"
    result = espomail("--config", path, "status")
    assert result.exit_code == 2
    assert f"'espomail --config {path} init'" in result.stderr
    assert espomail("--config", path, "init").exit_code == 0  # the hint works
    assert path.exists() and espomail("--config", path, "status").exit_code == 0


def test_password_command_failure_says_what_the_command_said(espomail, group_account, tmp_path):
    script = tmp_path / "pw.sh"
    script.write_text(
        "echo hunter2-secret\n"
        "echo 'vault: permission denied for support (token=abcdef123456) hunter2-secret' >&2\n"
        "echo 'second line' >&2\n"
        "exit 1\n"
    )
    group_account("support")
    espomail("account", "update", "support", "--password-cmd", f"sh {script}")
    result = espomail("fetch")
    assert result.exit_code == 1
    assert "the password command failed with exit code 1: vault: permission denied for support" in result.stderr
    assert "token=***" in result.stderr and "hunter2" not in result.stderr + result.stdout
    assert "second line" not in result.stderr
    shown = espomail("account", "test", "support")
    assert "permission denied" in shown.stderr and "hunter2" not in shown.stderr + shown.stdout


def test_command_said_scrubs_secrets():
    from espomail.secrets import command_said

    assert command_said(b"\n  gpg: decryption failed: No secret key\nmore\n") == "gpg: decryption failed: No secret key"
    assert command_said(b"bad pw s3cr3t!", b"s3cr3t!\n") == "bad pw ***"
    assert command_said(b"GET https://bob:pa55@vault.example/x: 403") == "GET https://bob:***@vault.example/x: 403"
    assert command_said(b"password: hunter2 api_key=XYZ") == "password: *** api_key=***"
    assert command_said(b"client_secret=zz AUTH_TOKEN: qq") == "client_secret=*** AUTH_TOKEN: ***"
    assert command_said(b"/bin/sh: 1: pass: not found") == "/bin/sh: 1: pass: not found"
    assert command_said(b"Error: password: incorrect.") == "Error: password: incorrect."
    assert command_said(b"token ghp_16C7e42F292c6912E7710c838347Ae178B4a rejected") == "token *** rejected"
    assert command_said(b"cat: /etc/espomail/support.pass: No such file or directory") == (
        "cat: /etc/espomail/support.pass: No such file or directory"
    )
    assert len(command_said(b"x" * 1000)) == 200
    assert command_said(b"") == ""


# -- help, completion, man pages -------------------------------------------------------


def _all_commands():
    from espomail.cli import cli
    from espomail.cli.manpages import walk

    # With the root's context settings (-h): click caches each command's help option.
    top = click.Context(cli, info_name="espomail", **cli.context_settings)
    return [ctx.command_path.split()[1:] for ctx in walk(cli, top)]


def test_every_command_help_has_an_example(espomail):
    commands = _all_commands()
    assert len(commands) >= 70
    missing = []
    for path in commands:
        helped = espomail(*path, "--help")
        assert helped.exit_code == 0, path
        if "Example" not in helped.stdout or "  espomail " not in helped.stdout:
            missing.append(" ".join(path))
    assert missing == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(espomail, shell):
    result = espomail("completion", shell)
    assert result.exit_code == 0 and "_ESPOMAIL_COMPLETE" in result.stdout


def test_completion_completes_lazy_commands_and_options():
    env = {**os.environ, "_ESPOMAIL_COMPLETE": "bash_complete", "COMP_WORDS": "espomail em", "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-m", "espomail"], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,email" in done.stdout.splitlines()
    env.update(COMP_WORDS="espomail case list --st", COMP_CWORD="3")
    done = subprocess.run([sys.executable, "-m", "espomail"], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,--status" in done.stdout.splitlines()


def test_man_pages_are_current():
    from espomail.cli import manpages

    assert manpages.stale() == [], "run 'python -m espomail.cli.manpages' and commit espomail/man"
    pages = manpages.pages()
    assert len(pages) == len(_all_commands())
    page = pages["espomail-email-list.1"]
    assert page.startswith('.TH "ESPOMAIL-EMAIL-LIST" "1"') and ".SH OPTIONS" in page and "\\-\\-nl" in page


def test_man_page_check_finds_stale_pages(tmp_path):
    from espomail.cli import manpages

    manpages.write(tmp_path)
    assert manpages.main([str(tmp_path), "--check"]) == 0
    (tmp_path / "espomail-gone.1").write_text("old")
    (tmp_path / "espomail-email-list.1").write_text("edited")
    assert manpages.stale(tmp_path) == ["espomail-email-list.1", "espomail-gone.1"]
    assert manpages.main([str(tmp_path), "--check"]) == 1
