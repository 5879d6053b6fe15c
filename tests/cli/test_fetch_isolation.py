"""One bad thing never stops the rest of a fetch (SPEC 11, issue 12 item 4): a message that
cannot be stored, a folder, an account, a step outside any account each fail alone, with
their real error, and the rest goes on."""

import pytest

from espomail.testing.messages import build_message
from espomail.testing.proxy import CuttingProxy


def count(db, sql="SELECT COUNT(*) FROM emails"):
    return db.value(sql)


@pytest.mark.parametrize("limit", [20_000, 60_000, 150_000])
def test_a_failure_in_the_first_batch_says_the_real_error(espomail, dovecot, group_account, db, limit):
    """It was 'unexpected UnboundLocalError: cannot access local variable batch'."""
    _, box = group_account("first")
    dovecot.append(box, [build_message(subject=f"big {i}", body="z" * 50_000) for i in range(4)])
    with CuttingProxy(dovecot.port, limit) as proxy:
        espomail("account", "update", "first", "--port", proxy.port)
        result = espomail("fetch")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: account 'first': ")
    assert "UnboundLocalError" not in line and "unexpected" not in line
    assert "connection" in line or "network" in line
    assert count(db) == 0
    espomail("account", "update", "first", "--port", dovecot.port)
    assert espomail("fetch").exit_code == 0
    assert count(db) == 4


def test_the_progress_moves_per_batch(dovecot, group_account, espomail, monkeypatch):
    from espomail.config import load_settings
    from espomail.services import fetching
    from espomail.store.db import open_store

    _, box = group_account("steps")
    dovecot.append(box, [build_message(subject=f"s{i}") for i in range(7)])
    monkeypatch.setenv("ESPOMAIL_BATCH_SIZE", "3")
    settings = load_settings()
    calls = []
    fetching.fetch(open_store(settings.database), settings, progress=lambda name, done, total: calls.append(done))
    assert calls == [0, 3, 6, 7]


def test_a_missing_folder_fails_alone_and_the_other_folders_are_fetched(espomail, imap_server, mailbox, db):
    user = mailbox("folders")
    imap_server.append(user, build_message(subject="in the inbox"))
    imap_server.append(user, build_message(subject="in work"), folder="Work")
    created = espomail(
        "account", "add-group", "folders", "--address", "f@example.com", "--host", imap_server.host,
        "--port", imap_server.port, "--security", "none", "--username", user, "--password-env",
        "TEST_IMAP_PASSWORD", "--fetch-since", "2000-01-01", "--folder", "Gone", "--folder", "INBOX",
        "--folder", "Work",
    )  # fmt: skip
    assert created.exit_code == 0, created
    result = espomail("fetch", "--json")
    assert result.exit_code == 1
    [account] = result.json["accounts"]
    assert account["status"] == "error" and account["new"] == 2, account
    assert account["error"].startswith("folder 'Gone': ") and "INBOX" not in account["error"], account
    assert result.stderr.startswith("Error: account 'folders': folder 'Gone': ")
    assert sorted(e["subject"] for e in espomail("email", "list", "--json").json) == ["in the inbox", "in work"]


def test_a_message_that_cannot_be_stored_as_parsed_fails_alone(espomail, dovecot, group_account, db, monkeypatch):
    from espomail.services import ingest

    real = ingest._first_fields

    def picky(parsed, key, has_id, item):
        if parsed.subject == "poison":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real(parsed, key, has_id, item)

    monkeypatch.setattr(ingest, "_first_fields", picky)
    _, box = group_account("support")
    dovecot.append(box, [build_message(subject=s) for s in ("before", "poison", "after")])
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    assert count(db) == 3
    subjects = sorted(e["subject"] for e in espomail("email", "list", "--json").json)
    assert "before" in subjects and "after" in subjects
    stub = count(db, "SELECT COUNT(*) FROM emails WHERE message_id LIKE '<unstorable.%@espomail.invalid>'")
    assert stub == 1
    # The folder cursor moved past it: the next run has nothing to do, and the source is kept.
    again = espomail("fetch", "--json").json
    assert (again["new"], again["duplicates"]) == (0, 0)
    stub_id = db.value("SELECT id FROM emails WHERE message_id LIKE '<uns%'")
    assert b"Subject: poison" in espomail("email", "show", stub_id, "--raw").stdout.encode()


@pytest.mark.parametrize(
    "step, what",
    [
        ("retry_failed", "retrying failed outgoing mail"),
    ],
)
def test_a_failing_step_outside_the_accounts_does_not_stop_them(
    espomail, dovecot, group_account, monkeypatch, step, what
):
    from espomail.services import outbox

    def broken(*args, **kwargs):
        raise UnicodeEncodeError("ascii", "Marilù", 5, 6, "ordinal not in range(128)")

    monkeypatch.setattr(outbox, step, broken)
    _, box = group_account("support")
    dovecot.append(box, build_message())
    result = espomail("fetch", "--json")
    assert result.exit_code == 1
    assert result.json["new"] == 1 and result.json["accounts"][0]["status"] == "ok"
    assert result.json["errors"] == [
        f"{what} failed: unexpected UnicodeEncodeError: "
        + str(UnicodeEncodeError("ascii", "Marilù", 5, 6, "ordinal not in range(128)"))
    ]
    assert result.stderr.startswith(f"Error: {what} failed: unexpected UnicodeEncodeError")


def test_a_failing_retry_of_one_account_fails_that_account_only(espomail, dovecot, group_account, monkeypatch):
    from espomail.services import fetching

    real = fetching.retry_unfinished

    def broken(store, settings, account_ids=None):
        if account_ids == [2]:
            raise RuntimeError("boom in retry")
        return real(store, settings, account_ids)

    monkeypatch.setattr(fetching, "retry_unfinished", broken)
    _, one = group_account("one")
    _, two = group_account("two")
    dovecot.append(one, build_message())
    dovecot.append(two, build_message())
    result = espomail("fetch", "--json")
    assert result.exit_code == 1
    accounts = {a["name"]: a for a in result.json["accounts"]}
    assert accounts["one"]["new"] == 1 and accounts["one"]["status"] == "ok"
    assert accounts["two"]["status"] == "error" and accounts["two"]["error"] == "unexpected RuntimeError: boom in retry"


def test_an_account_whose_lock_cannot_be_taken_fails_alone(espomail, dovecot, group_account, monkeypatch):
    from espomail.services import locks

    real = locks.AccountLock.acquire

    def acquire(self, store):
        if self.account_id == 1:
            raise PermissionError(13, "Permission denied", str(self.path))
        return real(self, store)

    monkeypatch.setattr(locks.AccountLock, "acquire", acquire)
    _, one = group_account("one")
    _, two = group_account("two")
    dovecot.append(two, build_message())
    monkeypatch.setenv("ESPOMAIL_WORKERS", "2")
    result = espomail("fetch", "--json")
    assert result.exit_code == 1
    accounts = {a["name"]: a for a in result.json["accounts"]}
    assert accounts["two"]["new"] == 1
    assert accounts["one"]["error"].startswith("permission denied on ") and "account-1.lock" in accounts["one"]["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Subject": "[#99999999999999999999] Order status"},
        {"Subject": "[#9223372036854775808] Order status"},
        {"References": "<espomail.case-99999999999999999999.abc.def@crm.example.com>"},
        {"In-Reply-To": "<espomail.account-99999999999999999999999.abc.def@crm.example.com>"},
    ],
    ids=["subject", "subject-2^63", "references", "in-reply-to"],
)
def test_numbers_beyond_2_63_in_headers_are_just_text(espomail, dovecot, group_account, headers):
    _, box = group_account("support", "--create-case")
    subject = headers.pop("Subject", "Order status")
    dovecot.append(box, build_message(subject=subject, headers=headers))
    result = espomail("fetch", "--json")
    assert result.exit_code == 0 and result.json["failed"] == 0, result
    assert result.json["accounts"][0]["cases_created"] == 1


def test_numbers_from_the_server_beyond_32_bits_are_refused():
    from espomail.errors import EspomailError
    from espomail.mail.imap import FolderStatus
    from espomail.services.fetching import _checked

    assert _checked(FolderStatus(7, 2**40, 3)).uidnext is None
    assert _checked(FolderStatus(7, 10, 3)).uidnext == 10
    for bad in (0, 2**32, 2**70):
        with pytest.raises(EspomailError):
            _checked(FolderStatus(bad, 10, 3))


@pytest.mark.parametrize(
    "text, said",
    [
        ("command: LOGIN => socket error: EOF", "the connection to h:1 was lost during LOGIN"),
        ("socket error: EOF", "the connection to h:1 was lost"),
        ("[AUTHENTICATIONFAILED] Authentication failed.", "login refused by h:1 (bad credentials?)"),
    ],
)
def test_a_cut_during_login_is_not_called_bad_credentials(text, said):
    from imapclient.exceptions import LoginError

    from espomail.mail.imap import describe_error

    assert describe_error(LoginError(text), "h", 1).startswith(said)
