"""Issue 13 item 2: users never make cron run their commands (docs/access.md, "Secrets").

Commands and environment variables that the administrator's processes run or read later
(password commands, any secret command) are the administrator's to set (policy.access
'secret.command'); a user supplies a secret only with --password-stdin (the keyring). A
command a user could have set before this rule is never run. And a table generated from
the click tree says, for every option that takes a command, a variable, a path or a
folder name, how a user-supplied value is kept from a shell, a command line or a path
outside the data directory: a new such option without a row fails the test.
"""

import json

import click
import pytest

ADMIN_ONLY = "admin only (users: exit 4)"
SECRET_SOURCE = "a command or variable cron runs: administrators only (users: exit 4)"
READ_NOW = "read at once by the process the invoker runs, as that OS user; the path is never stored"
IMAP_NAME = "an IMAP folder name: no control characters, sent quoted (modified UTF-7), never a path"
FOLDER_NAME = "an espomail folder name: looked up in the store, never a path"
INVOKER = "the invoker's own process option (like --config): never stored, never read by cron"

# (command path, parameter name) -> how a user-supplied value is kept in its place
SOURCES = {
    ("", "config_path"): INVOKER,
    ("", "db_path"): INVOKER,
    **{
        (command, option): SECRET_SOURCE
        for command in ("account add-group", "account add-personal", "account update")
        for option in ("password_cmd", "password_env", "smtp_password_cmd", "smtp_password_env")
    },
    **{
        (command, option): IMAP_NAME
        for command in ("account add-group", "account add-personal", "account update")
        for option in ("folders", "store_sent")
    },
    ("account add-group", "group_folder"): FOLDER_NAME,
    ("account update", "group_folder"): FOLDER_NAME,
    ("account add-personal", "personal_folder"): FOLDER_NAME,
    ("account update", "personal_folder"): FOLDER_NAME,
    # IMAPFOLDER=FOLDER: the IMAP side must be a monitored folder (checked as --folder), the
    # other an espomail folder of the owner looked up in the store
    ("account add-personal", "folder_map"): FOLDER_NAME,
    ("account update", "folder_map"): FOLDER_NAME,
    ("account add-group", "reply_body_file"): ADMIN_ONLY,  # group accounts: administrators; read at once
    ("account update", "reply_body_file"): ADMIN_ONLY,
    ("email import", "path"): ADMIN_ONLY,
    ("email list", "folder"): FOLDER_NAME,
    ("email move", "folder"): FOLDER_NAME,
    ("filter add", "folder"): FOLDER_NAME,
    ("email send", "body_file"): READ_NOW,
    ("email send", "attach"): READ_NOW,
    ("filter test", "path"): READ_NOW,
    ("record import", "path"): READ_NOW,
    # administrators only (exit 4 for users); the target store the invoker's process opens at once
    ("store copy", "to"): INVOKER,
}
# Options other helpers are adding (SPEC 12, 13): their rows are ready.
LATER = {
    **{
        (command, option): SECRET_SOURCE
        for command in ("account add-group", "account add-personal", "account update")
        for option in ("oauth_client_secret_cmd", "oauth_client_secret_env", "oauth_token_file")
    },
    ("", "db_password_cmd"): INVOKER,
    ("store copy", "to_password_cmd"): INVOKER,
}
_SUSPECT = ("cmd", "env", "file", "path", "attach", "folder", "store_sent", "config", "db", "dir", "hook", "script")


def path_like_parameters() -> set[tuple[str, str]]:
    """Every parameter of the click tree that may name a command, a variable, a file or a folder."""
    from espomail.cli import cli

    found = set()
    ctx = click.Context(cli)

    def walk(command, path):
        for param in command.params:
            if isinstance(param.type, click.Path | click.File) or any(s in (param.name or "") for s in _SUSPECT):
                found.add((path, param.name))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), f"{path} {name}".strip())

    walk(cli, "")
    return found


def test_every_command_path_or_folder_option_has_a_row():
    found = path_like_parameters()
    missing = found - SOURCES.keys() - LATER.keys()
    assert not missing, f"options without a row in SOURCES (decide how a user's value is kept safe): {missing}"
    gone = SOURCES.keys() - found
    assert not gone, f"rows for options that no longer exist: {gone}"


# -- the world: bob may have personal accounts ----------------------------------------------------


def snapshot(isolated, db):
    """The store (either engine), the keyring and the files of the test directory."""
    rows = [repr(row) for rows in db.dump().values() for row in rows]
    keyring = isolated / "keyring.json"
    files = sorted(str(p.relative_to(isolated)) for p in isolated.rglob("*") if "espomail.log" not in p.name)
    return rows, keyring.read_text() if keyring.exists() else None, files


@pytest.fixture
def world(espomail, dovecot, mailbox):
    def run(*args, input=None):
        result = espomail(*args, input=input)
        assert result.exit_code == 0, result
        return result

    run("team", "add", "sales")
    run("role", "add", "mailer", "--email-read", "own", "--email-create", "yes", "--personal-accounts", "yes")
    run("user", "add", "bob", "--email", "bob@example.com", "--team", "sales", "--role", "mailer")
    box = mailbox("bob")
    imap = ("--host", dovecot.host, "--port", dovecot.port, "--security", "none", "--username", box)
    run("--as", "bob", "account", "add-personal", "bobmail", "--user", "bob", "--address", "bob@example.com", *imap,
        "--password-stdin", input="secret\n")  # fmt: skip
    return {"imap": imap}


def values_for(option, marker):
    if option.endswith("_env"):
        return ["AWS_SECRET_ACCESS_KEY", "TEST_IMAP_PASSWORD", "HOME"]
    return [f"touch {marker}; echo secret", f"id > {marker}", f"$(touch {marker})"]


SECRET_OPTIONS = sorted({option for (command, option), how in SOURCES.items() if how == SECRET_SOURCE})


@pytest.mark.parametrize("option", SECRET_OPTIONS)
def test_a_user_may_not_set_a_command_or_variable(espomail, world, isolated, option, db):
    marker = isolated / "ran"
    flag = "--" + option.replace("_", "-")
    smtp = ("--smtp-host", "127.0.0.1", "--smtp-username", "bob") if option.startswith("smtp") else ()
    for value in values_for(option, marker):
        before = snapshot(isolated, db)
        attempts = [
            ("account", "update", "bobmail", flag, value, *smtp),
            # with a password for the other protocol on stdin: the keyring stays untouched too
            ("account", "update", "bobmail", flag, value, *smtp, "--password-stdin"),
            (
                "account",
                "add-personal",
                "bob2",
                "--user",
                "bob",
                "--address",
                "bob@example.com",
                *world["imap"],
                flag,
                value,
                *smtp,
            ),  # fmt: skip
        ]
        for args in attempts:
            result = espomail("--as", "bob", *args, input="other\n")
            assert result.exit_code == 4, (args, result)
            assert f"missing permission 'administrator ({flag}" in result.stderr
            assert value not in result.stderr and result.stdout == ""
            assert snapshot(isolated, db) == before, args
    assert not marker.exists()
    assert espomail("--as", "bob", "account", "test", "bobmail").exit_code == 0
    assert not marker.exists()


def test_a_user_gives_a_secret_with_stdin_only(espomail, world, isolated):
    assert espomail("--as", "bob", "account", "update", "bobmail", "--password-stdin", input="secret\n").exit_code == 0
    shown = espomail("--as", "bob", "account", "show", "bobmail", "--json").json
    assert shown["password"] == "keyring (espomail/bobmail/imap)"
    missing = espomail("--as", "bob", "account", "add-personal", "bob3", "--user", "bob", "--address",
                       "bob@example.com", *world["imap"])  # fmt: skip
    assert missing.exit_code == 2 and "--password-stdin" in missing.stderr and "--password-cmd" not in missing.stderr


def _set_ref(db, account, column, ref):
    """What the store holds for an account set up before this rule (or by hand)."""
    db.execute(f"UPDATE mail_accounts SET {column} = ? WHERE name = ?", [json.dumps(ref), account])


LEGACY_REFS = {
    "command": lambda marker: {"method": "cmd", "value": f"touch {marker}; echo secret"},
    "env": lambda marker: {"method": "env", "value": "TEST_IMAP_PASSWORD"},
    "command set by a user": lambda marker: {"method": "cmd", "value": f"touch {marker}", "set_by": "user"},
}


@pytest.mark.parametrize("legacy", sorted(LEGACY_REFS))
def test_a_command_no_administrator_set_is_never_run(espomail, world, isolated, legacy, db):
    """A personal account's command (or variable) stored before the rule, without the
    record that an administrator set it: neither bob's 'account test' nor the
    administrator's cron fetch runs it."""
    marker = isolated / "ran"
    _set_ref(db, "bobmail", "secret_ref", LEGACY_REFS[legacy](marker))
    tested = espomail("--as", "bob", "account", "test", "bobmail", "--json")
    assert tested.exit_code == 1
    assert "was not set by an administrator" in tested.json["imap"]["error"]
    fetched = espomail("fetch", "--json")
    assert fetched.exit_code == 1
    [account] = fetched.json["accounts"]
    assert account["status"] == "error" and "not set by an administrator" in account["error"]
    assert "touch" not in fetched.stdout + fetched.stderr
    assert not marker.exists()
    # an administrator setting it again makes it run
    espomail("account", "update", "bobmail", "--password-cmd", f"touch {marker}; echo secret")
    assert espomail("--as", "bob", "account", "test", "bobmail").exit_code == 0
    assert marker.exists()


def test_an_administrators_commands_and_old_group_commands_run(espomail, world, isolated, group_account, db):
    marker = isolated / "ran"
    name, _user = group_account("support")
    _set_ref(db, name, "secret_ref", {"method": "cmd", "value": f"touch {marker}; echo secret"})
    assert espomail("account", "test", name).exit_code == 0  # group accounts: only admins ever set them
    assert marker.exists()
    marker.unlink()
    espomail("account", "update", "bobmail", "--password-cmd", f"touch {marker}; echo secret")
    stored = db.value("SELECT secret_ref FROM mail_accounts WHERE name = 'bobmail'")
    assert json.loads(stored)["set_by"] == "admin"
    assert espomail("fetch", "--account", "bobmail").exit_code == 0
    assert marker.exists()


def test_an_smtp_command_no_administrator_set_is_never_run(espomail, world, isolated, smtp, db):
    marker = isolated / "ran"
    espomail("account", "update", "bobmail", "--smtp-host", smtp.host, "--smtp-port", smtp.port,
             "--smtp-security", "none", "--smtp-username", "bob", "--smtp-password-stdin", input="x\n")  # fmt: skip
    _set_ref(db, "bobmail", "smtp_secret_ref", {"method": "cmd", "value": f"touch {marker}; echo x"})
    tested = espomail("--as", "bob", "account", "test", "bobmail", "--json")
    assert tested.exit_code == 1 and "not set by an administrator" in tested.json["smtp"]["error"]
    sent = espomail("--as", "bob", "email", "send", "--from", "bob@example.com", "--to", "x@example.org",
                    "--subject", "s", "--body", "b")  # fmt: skip
    assert sent.exit_code == 1 and "not set by an administrator" in sent.stderr
    assert not marker.exists()


# -- names and paths ----------------------------------------------------------------------------

IMAP_HOSTILE = ["INBOX\r\nA1 DELETE INBOX", "INBOX\nx", "Sent\x00", "a\x1b[31mb", "\x7f"]


@pytest.mark.parametrize("command", ["account add-personal", "account update"])
@pytest.mark.parametrize("option", ["--folder", "--store-sent"])
def test_imap_folder_names_refuse_control_characters(espomail, world, isolated, command, option, db):
    smtp = ("--smtp-host", "127.0.0.1") if option == "--store-sent" else ()
    target = ("bobmail",) if command == "account update" else (
        "bob2", "--user", "bob", "--address", "bob@example.com", *world["imap"], "--password-stdin")  # fmt: skip
    for name in IMAP_HOSTILE:
        for actor in ((), ("--as", "bob")):
            before = snapshot(isolated, db)
            result = espomail(*actor, *command.split(), *target, option, name, *smtp, input="secret\n")
            assert result.exit_code == 2 and "control character" in result.stderr, (name, result)
            assert snapshot(isolated, db) == before


def test_folder_names_are_names_not_paths(espomail, world, isolated, tmp_path, db):
    eml = tmp_path / "to-bob.eml"
    eml.write_bytes(b"From: a@b.example\nTo: bob@example.com\nSubject: t\n\nx\n")
    assert espomail("email", "import", eml).exit_code == 0
    [email] = espomail("--as", "bob", "email", "list", "--json").json
    for name in ("../../escape", "/etc/passwd", "~/x"):
        for args in (("email", "move", email["id"], "--folder", name), ("email", "list", "--folder", name)):
            before = snapshot(isolated, db)
            result = espomail("--as", "bob", *args)
            assert result.exit_code == 3 and "folder" in result.stderr, (args, result)
            assert snapshot(isolated, db) == before
        added = espomail("--as", "bob", "folder", "add", name, "--user", "bob")
        assert added.exit_code == 0
    assert not (isolated.parent / "escape").exists() and not (isolated / "escape").exists()


def test_files_a_user_names_are_read_at_once_and_never_stored(espomail, world, isolated, smtp, tmp_path, db):
    espomail("account", "update", "bobmail", "--smtp-host", smtp.host, "--smtp-port", smtp.port,
             "--smtp-security", "none")  # fmt: skip
    espomail("role", "add", "editor", "--email-edit", "all")
    espomail("user", "update", "bob", "--add-role", "editor")
    folder = tmp_path / "private-dir"
    folder.mkdir()
    (folder / "body.txt").write_text("the body\n")
    (folder / "file.bin").write_bytes(b"\x00data")
    (folder / "people.csv").write_text("name,email\nAcme,info@acme.example\n")
    (folder / "test.eml").write_bytes(b"From: a@b.example\nSubject: t\n\nx\n")
    runs = [
        ("email", "send", "--from", "bob@example.com", "--to", "x@example.org", "--subject", "s",
         "--body-file", folder / "body.txt", "--attach", folder / "file.bin"),
        ("record", "import", "account", folder / "people.csv"),
        ("filter", "test", folder / "test.eml", "--user", "bob"),
    ]  # fmt: skip
    for args in runs:
        result = espomail("--as", "bob", *args)
        assert result.exit_code == 0, (args, result)
    rows, _keyring, _files = snapshot(isolated, db)
    assert not [row for row in rows if "private-dir" in row]
    assert smtp.messages and b"the body" in smtp.messages[-1].data
