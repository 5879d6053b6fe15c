"""``espomail account``: options stored, validation, secrets never stored, ``account test``."""

import json

import pytest

from espomail.testing.messages import build_message

ACCOUNT_KEYS = {
    "id",
    "name",
    "kind",
    "address",
    "owner",
    "active",
    "host",
    "port",
    "security",
    "username",
    "folders",
    "fetch_since",
    "teams",
    "create_case",
    "distribution",
    "target_team",
    "target_position",
    "assign_user",
    "auto_reply",
    "smtp_host",
    "smtp_shared",
    "is_system",
}


@pytest.fixture
def admin_setup(espomail):
    espomail("team", "add", "support", "--position", "agent")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--team", "support:agent")


def add_group(espomail, dovecot, user, *extra, name="support", **kwargs):
    return espomail(
        "account",
        "add-group",
        name,
        "--address",
        f"{name}@example.com",
        "--host",
        dovecot.host,
        "--port",
        dovecot.port,
        "--security",
        "none",
        "--username",
        user,
        *extra,
        **kwargs,
    )


def test_every_option_is_stored_and_shown(espomail, admin_setup, tmp_path):
    body = tmp_path / "reply.txt"
    body.write_text("Hello {sender_name}, we got your mail about {subject}. Case {case_number}.\n")
    result = espomail(
        "account",
        "add-group",
        "support",
        "--address",
        "support@example.com",
        "--host",
        "imap.example.com",
        "--username",
        "support",
        "--password-cmd",
        "echo s3cret",
        "--folder",
        "INBOX",
        "--folder",
        "Tickets",
        "--fetch-since",
        "2024-02-03",
        "--team",
        "support",
        "--no-add-team-users",
        "--mark-seen",
        "--create-case",
        "--distribution",
        "round-robin",
        "--target-team",
        "support",
        "--target-position",
        "agent",
        "--auto-reply",
        "--reply-subject",
        "Re: {subject}",
        "--reply-body-file",
        body,
        "--reply-from-address",
        "noreply@example.com",
        "--reply-from-name",
        "Support",
        "--reply-to-address",
        "support@example.com",
        "--smtp-host",
        "smtp.example.com",
        "--smtp-port",
        "2525",
        "--smtp-security",
        "none",
        "--smtp-username",
        "support",
        "--smtp-password-env",
        "SMTP_PASS",
        "--smtp-shared",
        "--store-sent",
        "Sent",
        "--json",
    )
    assert result.exit_code == 0, result
    account = result.json
    assert ACCOUNT_KEYS <= set(account)
    assert account["port"] == 993 and account["security"] == "ssl"
    assert account["folders"] == ["INBOX", "Tickets"]
    assert account["teams"] == ["support"] and account["add_team_users"] is False
    assert account["distribution"] == "round-robin" and account["target_position"] == "agent"
    assert account["smtp_port"] == 2525 and account["smtp_shared"] is True
    assert account["password"] == "command" and "s3cret" not in result.stdout
    listed = espomail("account", "list", "--json").json
    assert [a["name"] for a in listed] == ["support"]


@pytest.mark.parametrize(
    "extra, code, words",
    [
        (["--address", "nope"], 2, "not a valid email address"),
        (["--distribution", "least-busy"], 2, "needs --target-team"),
        (["--distribution", "direct"], 2, "needs --assign-user"),
        (["--team", "ghosts"], 3, "no team named"),
        (["--auto-reply"], 2, "needs --reply-subject"),
        (["--reply-subject", "Hi {nam}"], 2, "unknown placeholder {nam}"),
        (["--fetch-since", "yesterday"], 2, "not a date"),
        (["--port", "70000"], 2, "from 1 to 65535"),
        (["--smtp-host", "s", "--smtp-username", "u"], 2, "needs a password"),
    ],
)
def test_invalid_options_are_refused_and_nothing_is_stored(espomail, admin_setup, db, extra, code, words):
    args = [
        "account",
        "add-group",
        "support",
        "--address",
        "support@example.com",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
    ]
    if extra[0] == "--address":
        args[4] = extra[1]
        extra = []
    result = espomail(*args, *extra)
    assert result.exit_code == code, result
    assert words in result.stderr
    assert db.value("SELECT COUNT(*) FROM mail_accounts") == 0


def test_password_stdin_goes_to_the_keyring_never_the_database(espomail, dovecot, mailbox, db, isolated):
    user = mailbox()
    result = add_group(espomail, dovecot, user, "--password-stdin", input="secret\n")
    assert result.exit_code == 0, result
    keyring = json.loads((isolated / "keyring.json").read_text())
    assert list(keyring.values()) == ["secret"]
    assert "secret" not in str(db.dump()).replace("secret_ref", "")
    assert espomail("account", "test", "support").exit_code == 0
    espomail("account", "remove", "support", "--yes")
    assert json.loads((isolated / "keyring.json").read_text()) == {}


def test_password_cmd_is_run_at_fetch_time(espomail, dovecot, mailbox, tmp_path):
    secret_file = tmp_path / "pass"
    secret_file.write_text("secret\n")
    user = mailbox()
    assert add_group(espomail, dovecot, user, "--password-cmd", f"cat {secret_file}").exit_code == 0
    assert espomail("account", "test", "support").exit_code == 0
    secret_file.write_text("changed\n")
    failed = espomail("account", "test", "support", "--json")
    assert failed.exit_code == 1
    assert "bad credentials" in failed.json["imap"]["error"]
    assert "changed" not in failed.stdout + failed.stderr


def test_headless_keyring_error_suggests_password_cmd(espomail_process, monkeypatch):
    # A subprocess: keyring picks its backend once per process.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    result = espomail_process(
        "account",
        "add-group",
        "support",
        "--address",
        "s@example.com",
        "--host",
        "h",
        "--username",
        "u",
        "--password-stdin",
        input="pw\n",
    )
    assert result.exit_code == 1
    assert "--password-cmd" in result.stderr and "pw" not in result.stderr.replace("password", "")


def test_account_test_says_what_is_wrong(espomail, dovecot, mailbox):
    user = mailbox()
    add_group(espomail, dovecot, user, "--password-env", "TEST_IMAP_PASSWORD", "--folder", "Missing")
    missing = espomail("account", "test", "support", "--json")
    assert missing.exit_code == 1
    assert missing.json["imap"]["missing_folders"] == ["Missing"]
    espomail("account", "update", "support", "--folder", "INBOX", "--port", "1")
    refused = espomail("account", "test", "support")
    assert refused.exit_code == 1 and "connection refused" in refused.stderr
    espomail("account", "update", "support", "--host", "no-such-host.invalid")
    dns = espomail("account", "test", "support")
    assert dns.exit_code == 1 and "DNS" in dns.stderr


def test_tls_certificate_is_verified_unless_insecure(espomail, tmp_path):
    from espomail.testing.dovecot import Dovecot

    with Dovecot(tls=True) as server:
        espomail(
            "account",
            "add-group",
            "tls",
            "--address",
            "t@example.com",
            "--host",
            "127.0.0.1",
            "--port",
            server.tls_port,
            "--security",
            "ssl",
            "--username",
            "support",
            "--password-env",
            "TEST_IMAP_PASSWORD",
        )
        strict = espomail("account", "test", "tls")
        assert strict.exit_code == 1 and "certificate" in strict.stderr and "--insecure" in strict.stderr
        espomail("account", "update", "tls", "--insecure")
        assert espomail("account", "test", "tls").exit_code == 0
        espomail(
            "account",
            "add-group",
            "starttls",
            "--address",
            "s@example.com",
            "--host",
            "127.0.0.1",
            "--port",
            server.port,
            "--security",
            "starttls",
            "--username",
            "support",
            "--password-env",
            "TEST_IMAP_PASSWORD",
            "--insecure",
        )
        assert espomail("account", "test", "starttls").exit_code == 0
        server.append("support", build_message(subject="over starttls"))
        result = espomail("fetch", "--account", "starttls", "--json")
        assert result.exit_code == 0 and result.json["new"] == 1


def test_update_remove_and_unknown(espomail, admin_setup):
    espomail(
        "account",
        "add-group",
        "support",
        "--address",
        "s@example.com",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
    )
    updated = espomail("account", "update", "support", "--inactive", "--team", "support", "--json").json
    assert updated["active"] is False and updated["teams"] == ["support"]
    assert espomail("account", "update", "ghost", "--inactive").exit_code == 3
    assert espomail("account", "remove", "support", "--yes").exit_code == 0
    assert espomail("account", "show", "support").exit_code == 3


def test_personal_account_options_are_checked(espomail, admin_setup):
    result = espomail(
        "account",
        "add-personal",
        "mine",
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
        "--json",
    )
    assert result.exit_code == 0, result
    assert result.json["kind"] == "personal" and result.json["owner"] == "alice"
    wrong = espomail("account", "update", "mine", "--create-case")
    assert wrong.exit_code == 2 and "group accounts only" in wrong.stderr


def test_concurrent_commands_do_not_fail_with_database_locked(espomail, isolated):
    import os
    import subprocess
    import sys

    espomail("init")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "espomail",
                "account",
                "add-group",
                f"acct{i}",
                "--address",
                f"a{i}@example.com",
                "--host",
                "h",
                "--username",
                "u",
                "--password-env",
                "X",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        )
        for i in range(6)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    assert len(espomail("account", "list", "--json").json) == 6
