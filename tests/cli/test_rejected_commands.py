"""A rejected command changes nothing anywhere (SPEC 11, issue 12 item 5): not the store and
not the keyring. The keyring write is the last step of a command, after every check, and is
undone if the commit fails after all."""

import json
import sqlite3

import pytest

from espomail.errors import SecretError


def keyring(isolated):
    path = isolated / "keyring.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return {key.split("\0", 1)[1]: value for key, value in data.items()}


def dump(db):
    """Every row of every table (to prove a refused command changed nothing)."""
    return db.dump()


BASE = ["--address", "support@example.com", "--host", "imap.example.com", "--username", "support"]
SMTP = ["--smtp-host", "smtp.example.com", "--smtp-username", "support", "--smtp-password-stdin"]


@pytest.fixture
def support(espomail, isolated):
    espomail("team", "add", "helpdesk")
    result = espomail("account", "add-group", "support", *BASE, "--password-stdin", *SMTP, input="pw1\npw1\n")
    assert result.exit_code == 0, result
    assert keyring(isolated) == {"support/imap": "pw1", "support/smtp": "pw1"}


@pytest.mark.parametrize(
    "options",
    [
        ["--password-stdin", "--distribution", "direct"],  # direct needs --assign-user
        ["--password-stdin", "--target-position", "boss"],  # not a position of the target team
        ["--password-stdin", "--auto-reply"],  # needs --reply-subject and --reply-body-file
        ["--password-stdin", "--assign-user", "nobody"],  # no such user (exit 3)
        ["--password-stdin", "--folder", ""],  # an empty folder name
        ["--smtp-password-stdin", "--distribution", "round-robin"],  # needs --target-team
        ["--password-stdin", "--reply-from-name", "A\nB"],
    ],
    ids=lambda o: " ".join(o),
)
def test_a_rejected_update_keeps_the_live_password(espomail, support, isolated, db, options):
    before = dump(db)
    result = espomail("account", "update", "support", *options, input="pw2\n")
    assert result.exit_code in (2, 3), result
    assert keyring(isolated) == {"support/imap": "pw1", "support/smtp": "pw1"}
    assert dump(db) == before


def test_an_accepted_update_replaces_the_password(espomail, support, isolated):
    result = espomail("account", "update", "support", "--password-stdin", input="pw2\n")
    assert result.exit_code == 0, result
    assert keyring(isolated)["support/imap"] == "pw2"


def test_a_keyring_password_replaced_by_a_command_leaves_the_keyring(espomail, support, isolated):
    assert espomail("account", "update", "support", "--password-cmd", "echo pw").exit_code == 0
    assert keyring(isolated) == {"support/smtp": "pw1"}


@pytest.mark.parametrize(
    "options",
    [
        [*BASE, "--password-stdin", "--distribution", "direct"],
        [*BASE, "--password-stdin", "--team", "nosuchteam"],
        [*BASE, "--password-stdin", "--auto-reply"],
        [
            *BASE,
            "--password-env",
            "X",
            *SMTP,
            "--store-sent",
            "Sent",
            "--target-team",
            "helpdesk",
            "--distribution",
            "least-busy",
            "--target-position",
            "boss",
        ],
        [*BASE, "--password-stdin", "--port", "0"],
        [*BASE, "--password-stdin", "--password-env", "X"],  # two methods
        [*BASE[:-2], "--password-stdin"],  # no --username
    ],
    ids=range(7),
)
def test_a_rejected_add_group_leaves_no_keyring_entry(espomail, isolated, db, options):
    espomail("init")
    espomail("team", "add", "helpdesk")
    before = dump(db)
    result = espomail("account", "add-group", "support", *options, input="pw1\n")
    assert result.exit_code in (2, 3), result
    assert keyring(isolated) == {}
    assert dump(db) == before


def test_a_rejected_add_personal_leaves_no_keyring_entry(espomail, isolated, db):
    espomail("role", "add", "own", "--personal-accounts", "yes")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--role", "own")
    base = [
        "add-personal",
        "mine",
        "--user",
        "alice",
        "--address",
        "alice@example.com",
        "--host",
        "h",
        "--username",
        "alice",
    ]
    before = dump(db)
    for extra in (
        ["--password-stdin", "--auto-reply"],
        ["--password-stdin", *SMTP[:-1], "--smtp-password-stdin", "--create-case"],
    ):
        result = espomail("account", *base, *extra, input="pw1\n")
        assert result.exit_code == 2, result
    # Over alice's limit of personal accounts (config max_personal_accounts 2): refused as alice.
    for n in range(2):  # made by the administrator: a variable is the administrator's to set
        args = ["add-personal", f"p{n}", *base[2:], "--password-env", "X"]
        assert espomail("account", *args).exit_code == 0
    assert keyring(isolated) == {}
    over = espomail("--as", "alice", "account", "add-personal", "p3", *base[2:], "--password-stdin", input="pw\n")
    assert over.exit_code == 4, over
    assert keyring(isolated) == {}
    assert len(dump(db)["mail_accounts"]) == len(before["mail_accounts"]) + 2


# -- failures after the keyring write: the old secrets come back ------------------------------------


def engine_error(store):
    """The engine's error for a failed statement (a full disk, an I/O error, a lost server)."""
    if store.engine == "postgresql":
        import psycopg

        return psycopg.OperationalError
    return sqlite3.OperationalError


class FailingCommit:
    """A connection whose COMMIT fails (a full disk, an I/O error) after everything else worked."""

    def __init__(self, conn, error):
        self._conn = conn
        self._error = error

    def execute(self, sql, *args):
        if sql.strip().upper() == "COMMIT":
            raise self._error("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _service_call(isolated, change):
    from espomail.config import load_settings
    from espomail.model import AccountChanges
    from espomail.policy.access import Actor
    from espomail.services import accounts
    from espomail.store.db import open_store

    settings = load_settings()
    store = open_store(settings.database)
    actor = Actor(None, "admin", True)
    return store, lambda: accounts.update_account(store, actor, settings, "support", AccountChanges(**change))


def test_a_commit_that_fails_after_the_keyring_write_restores_the_old_secrets(support, isolated, db):
    store, update = _service_call(isolated, {"password_stdin": "pw2\n", "smtp_password_stdin": "pw3\n"})
    before = dump(db)
    real = store.conn
    store.conn = FailingCommit(real, engine_error(store))
    with pytest.raises(engine_error(store)):
        update()
    store.conn = real
    assert keyring(isolated) == {"support/imap": "pw1", "support/smtp": "pw1"}
    assert dump(db) == before


def test_a_new_entry_written_before_a_failing_commit_is_deleted(espomail, isolated, db):
    espomail("account", "add-group", "support", *BASE, "--password-env", "X")
    store, update = _service_call(isolated, {"password_stdin": "pw2\n"})
    real = store.conn
    store.conn = FailingCommit(real, engine_error(store))
    with pytest.raises(engine_error(store)):
        update()
    store.conn = real
    assert keyring(isolated) == {}
    assert espomail("account", "show", "support", "--json").json["password"] == "env $X"


def test_a_keyring_that_fails_on_the_second_secret_puts_the_first_back(support, isolated, db, monkeypatch):
    from espomail import secrets

    store, update = _service_call(isolated, {"password_stdin": "pw2\n", "smtp_password_stdin": "pw3\n"})
    before = dump(db)
    real = secrets.store_in_keyring

    def flaky(ref, secret):
        if ref.value.endswith("/smtp"):
            raise SecretError("could not store the password in the system keyring (LockedError)")
        real(ref, secret)

    monkeypatch.setattr(secrets, "store_in_keyring", flaky)
    with pytest.raises(SecretError):
        update()
    assert keyring(isolated) == {"support/imap": "pw1", "support/smtp": "pw1"}
    assert dump(db) == before


def test_an_unreadable_keyring_changes_nothing(espomail, support, isolated, db, monkeypatch):
    from keyring.errors import KeyringLocked

    from espomail.testing.keyring_file import FileKeyring

    def locked(self, service, username):
        raise KeyringLocked("locked")

    monkeypatch.setattr(FileKeyring, "get_password", locked)
    before = dump(db)
    result = espomail("account", "update", "support", "--password-stdin", input="pw2\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot read the system keyring (KeyringLocked), so the password was not")
    monkeypatch.undo()
    assert keyring(isolated) == {"support/imap": "pw1", "support/smtp": "pw1"}
    assert dump(db) == before
