"""``espomail fetch`` end to end against a private IMAP server: never lose, never duplicate.

The tests taking ``imap_server`` run on Dovecot and on Cyrus IMAP (ids [dovecot], [cyrus])."""

import datetime as dt
import os
import signal
import sqlite3
import time

import pytest

from espomail.testing.messages import build_message
from espomail.testing.proxy import CuttingProxy


def count(db, sql="SELECT COUNT(*) FROM emails WHERE state = 'processed'"):
    """A count from the test's store (the ``db`` fixture, either engine) or a SQLite file."""
    if hasattr(db, "value"):
        return db.value(sql)
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


def fetch_json(espomail, *args):
    result = espomail("fetch", "--json", *args)
    assert result.exit_code == 0, result
    return result.json


def test_fetch_imports_then_a_second_fetch_imports_nothing(espomail, imap_server, group_account, db):
    name, user = group_account("support")
    imap_server.append(user, [build_message(subject=f"hello {i}") for i in range(3)])
    first = fetch_json(espomail)
    assert first["new"] == 3 and first["failed"] == 0
    [account] = first["accounts"]
    assert {k for k in account} >= {
        "name",
        "status",
        "new",
        "duplicates",
        "filtered",
        "failed",
        "cases_created",
        "auto_replies",
        "error",
    }
    assert account["status"] == "ok"
    second = fetch_json(espomail)
    assert second["new"] == 0 and second["duplicates"] == 0
    assert count(db) == 3
    listed = espomail("email", "list", "--json").json
    assert sorted(e["subject"] for e in listed) == ["hello 0", "hello 1", "hello 2"]
    assert listed[0]["accounts"] == ["support"]


def test_fetch_since_is_respected(espomail, imap_server, mailbox, db):
    user = mailbox("since")
    old = dt.datetime(2020, 5, 1, tzinfo=dt.UTC)
    imap_server.append(user, build_message(subject="old", date=old), when=old)
    imap_server.append(user, build_message(subject="new"))
    espomail(
        "account",
        "add-group",
        "since",
        "--address",
        "since@example.com",
        "--host",
        imap_server.host,
        "--port",
        imap_server.port,
        "--security",
        "none",
        "--username",
        user,
        "--password-env",
        "TEST_IMAP_PASSWORD",
        "--fetch-since",
        "2024-01-01",
    )
    assert fetch_json(espomail)["new"] == 1
    assert [e["subject"] for e in espomail("email", "list", "--json").json] == ["new"]


def test_new_uidvalidity_imports_nothing_twice(espomail, imap_server, group_account, db):
    name, user = group_account("work", "--folder", "Work")
    messages = [build_message(subject=f"m{i}") for i in range(4)]
    imap_server.append(user, messages, folder="Work")
    assert fetch_json(espomail)["new"] == 4
    imap_server.recreate_folder(user, "Work")
    imap_server.append(user, messages + [build_message(subject="brand new")], folder="Work")
    summary = fetch_json(espomail)
    assert summary["new"] == 1
    assert count(db) == 5
    assert fetch_json(espomail)["new"] == 0


def test_same_message_in_group_and_personal_mailbox_is_one_email(espomail, imap_server, group_account, mailbox):
    espomail("role", "add", "self", "--personal-accounts", "yes")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--role", "self")
    _, group_user = group_account("support")
    personal = mailbox("alice")
    assert (
        espomail(
            "account",
            "add-personal",
            "alice-mail",
            "--user",
            "alice",
            "--address",
            "alice@example.com",
            "--host",
            imap_server.host,
            "--port",
            imap_server.port,
            "--security",
            "none",
            "--username",
            personal,
            "--password-env",
            "TEST_IMAP_PASSWORD",
            "--fetch-since",
            "2000-01-01",
        ).exit_code
        == 0
    )
    raw = build_message(to=["support@example.com", "alice@example.com"], subject="to both")
    imap_server.append(group_user, raw)
    imap_server.append(personal, raw)
    summary = fetch_json(espomail)
    assert summary["new"] == 1 and summary["duplicates"] == 1
    [email] = espomail("email", "list", "--json").json
    assert email["accounts"] == ["alice-mail", "support"]
    assert "alice" in email["users"]


def test_message_without_message_id_fetched_twice_is_one_email(espomail, imap_server, group_account, mailbox, db):
    _, first = group_account("one")
    _, second = group_account("two")
    raw = build_message(subject="no id", message_id=None, date=dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    imap_server.append(first, raw)
    imap_server.append(second, raw)
    summary = fetch_json(espomail)
    assert summary["new"] == 1 and summary["duplicates"] == 1
    espomail("account", "reset", "one", "--since", "2000-01-01")
    assert fetch_json(espomail)["new"] == 0
    assert count(db) == 1
    [email] = espomail("email", "list", "--json").json
    assert email["message_id"] is None
    assert email["accounts"] == ["one", "two"]


def test_reset_refetches_without_duplicating(espomail, imap_server, group_account, db):
    _, user = group_account("support")
    imap_server.append(user, [build_message(subject=f"r{i}") for i in range(3)])
    fetch_json(espomail)
    assert espomail("account", "reset", "support", "--since", "2000-01-01").exit_code == 0
    again = fetch_json(espomail)
    assert again["new"] == 0
    assert count(db) == 3


def test_wrong_password_on_one_account_others_still_fetched(espomail, imap_server, group_account, monkeypatch):
    _, good = group_account("good")
    imap_server.append(good, build_message(subject="fine"))
    _, bad = group_account("bad")
    monkeypatch.setenv("BAD_PASSWORD", "wrong-password-123")
    espomail("account", "update", "bad", "--password-env", "BAD_PASSWORD")
    result = espomail("fetch")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: account 'bad':")
    assert "wrong-password-123" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert [e["subject"] for e in espomail("email", "list", "--json").json] == ["fine"]
    status = espomail("status", "--json")
    assert status.exit_code == 1
    by_name = {s["name"]: s for s in status.json}
    assert by_name["bad"]["last_error"] and not by_name["good"]["last_error"]


def test_successful_fetch_is_silent_when_not_a_terminal(espomail, dovecot, group_account):
    _, user = group_account("quiet")
    dovecot.append(user, build_message())
    result = espomail("fetch")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_message_over_the_size_limit_is_stored_as_headers_only(espomail, imap_server, group_account, monkeypatch):
    _, user = group_account("big")
    monkeypatch.setenv("ESPOMAIL_MAX_MESSAGE_SIZE_MB", "0.05")
    imap_server.append(
        user,
        build_message(subject="huge", attachments=[("big.bin", "application/octet-stream", os.urandom(200_000))]),
    )
    imap_server.append(user, build_message(subject="small"))
    assert fetch_json(espomail)["new"] == 2
    emails = {e["subject"]: e for e in espomail("email", "list", "--json").json}
    huge = espomail("email", "show", emails["huge"]["id"], "--json").json
    assert huge["truncated"] is True
    assert "max_message_size_mb" in huge["body_text"]
    assert huge["attachments"] == []
    assert emails["small"]["truncated"] is False


def test_raw_source_comes_back_byte_for_byte(espomail, imap_server, group_account):
    _, user = group_account("raw")
    raw = build_message(subject="Grüße — ✓", body="Ünïcödé body\r\n")
    imap_server.append(user, raw)
    fetch_json(espomail)
    [email] = espomail("email", "list", "--json").json
    [stored] = imap_server.fetch_all(user)
    shown = espomail("email", "show", email["id"], "--raw")
    assert shown.stdout.encode() == stored
    assert email["subject"] == "Grüße — ✓"


def test_locked_account_is_skipped(espomail, dovecot, group_account, isolated):
    from espomail.config import load_settings
    from espomail.services.locks import AccountLock
    from espomail.store.db import open_store

    _, user = group_account("busy")
    dovecot.append(user, build_message())
    settings = load_settings()
    store = open_store(settings.database)
    lock = AccountLock(settings.data_dir, 1, 600)
    assert lock.acquire(store)
    try:
        result = espomail("fetch", "--json")
        assert result.exit_code == 0
        assert result.json["accounts"][0]["status"] == "locked"
        assert result.json["new"] == 0
    finally:
        lock.release(store)
    assert fetch_json(espomail)["new"] == 1


def test_dry_run_stores_nothing(espomail, imap_server, group_account, db):
    _, user = group_account("dry")
    imap_server.append(user, [build_message(), build_message()])
    summary = fetch_json(espomail, "--dry-run")
    assert summary["accounts"][0]["new"] == 2
    assert count(db) == 0
    assert fetch_json(espomail)["new"] == 2


def test_limit_leaves_a_backlog_for_the_next_run(espomail, imap_server, group_account, db):
    _, user = group_account("slow")
    imap_server.append(user, [build_message(subject=f"b{i}") for i in range(5)])
    first = fetch_json(espomail, "--limit", "2")
    assert first["new"] == 2 and first["accounts"][0]["backlog"] == 3
    assert fetch_json(espomail, "--limit", "2")["new"] == 2
    assert fetch_json(espomail)["new"] == 1
    assert count(db) == 5


def test_a_failing_step_keeps_the_email_as_failed_and_reprocess_retries_it(
    espomail, dovecot, group_account, monkeypatch, db
):
    from espomail.pipeline import registry

    _, user = group_account("fragile")
    dovecot.append(user, [build_message(subject="boom"), build_message(subject="fine")])
    original = registry.STEPS["save"]

    def exploding(ctx):
        if ctx.parsed.subject == "boom":
            raise RuntimeError("simulated bug")
        original(ctx)

    monkeypatch.setitem(registry.STEPS, "save", exploding)
    summary = fetch_json(espomail)
    assert (summary["new"], summary["failed"]) == (1, 1)
    failed = espomail("email", "list", "--state", "failed", "--json").json
    assert [e["subject"] for e in failed] == ["boom"]
    explained = espomail("email", "explain", failed[0]["id"], "--json").json
    assert "simulated bug" in explained["last_error"]
    monkeypatch.setitem(registry.STEPS, "save", original)
    assert espomail("email", "reprocess", "--failed", "--json").json["new"] == 1
    assert count(db) == 2


def test_cron_line_and_status(espomail, group_account):
    group_account("support")
    line = espomail("cron").stdout.strip()
    assert line.startswith("* * * * * ") and line.endswith(" fetch")
    assert "--db" in line
    rows = espomail("status", "--json").json
    assert rows[0]["name"] == "support" and rows[0]["last_success_at"] is None


# -- crashes and broken connections ----------------------------------------------------------


def _add_account(espomail, db, name, port, user):
    result = espomail(
        "--db", db, "account", "add-group", name, "--address", f"{name}@example.com", "--host", "127.0.0.1",
        "--port", port, "--security", "none", "--username", user, "--password-env", "TEST_IMAP_PASSWORD",
        "--fetch-since", "2000-01-01",
    )  # fmt: skip
    assert result.exit_code == 0, result


def _wait_for_emails(db_path, wanted, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if count(db_path, "SELECT COUNT(*) FROM emails") >= wanted:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.01)


def stored_digests(db_path):
    return sorted(r[0] for r in sqlite3.connect(db_path).execute("SELECT raw_sha256 FROM emails"))


def assert_exactly(db_path, total, digests=None):
    """Each message once, processed, its source intact; no delivery twice."""
    assert count(db_path, "SELECT COUNT(*) FROM emails") == total
    assert count(db_path) == total
    assert count(db_path, "SELECT COUNT(DISTINCT message_id) FROM emails") == total
    assert count(db_path, "SELECT COUNT(*) FROM email_deliveries") == total
    assert count(db_path, "SELECT COUNT(*) FROM email_deliveries WHERE state <> 'done'") == 0
    if digests is not None:
        assert stored_digests(db_path) == digests


# SQLite stores by path (a fresh store per run); tests/cli/test_hosts.py kills hosts on PostgreSQL.
@pytest.mark.engine_independent
@pytest.mark.slow
def test_kill_9_at_20_random_moments_of_a_2000_message_fetch_then_rerun_gives_each_message_once(
    espomail, imap_server, group_account, isolated, monkeypatch
):
    """The campaign of issue 12 (Deliver 7): 20 fetches of the same 2,000 messages into fresh
    stores, each killed with SIGKILL at a random moment (from start-up to the last batch),
    each followed by a rerun: exactly 2,000 emails with byte-identical sources every time,
    and the killed run reported as crashed. Figures in docs/field-safety.md."""
    import hashlib
    import random
    import subprocess
    import sys

    monkeypatch.setenv("ESPOMAIL_MAX_PER_RUN", "5000")
    monkeypatch.setenv("ESPOMAIL_BATCH_SIZE", "50")
    _, user = group_account("crash")
    total = 2000
    imap_server.append(user, (build_message(subject=f"crash {i}", body="x" * 2000) for i in range(total)))
    digests = sorted(hashlib.sha256(raw).hexdigest() for raw in imap_server.fetch_all(user))
    assert len(digests) == total
    template = isolated / "espomail.db"
    rng = random.Random(os.environ.get("ESPOMAIL_CAMPAIGN_SEED", "12"))
    started = time.monotonic()
    full = subprocess.run([sys.executable, "-m", "espomail", "--db", template, "fetch"], capture_output=True)
    duration = time.monotonic() - started
    assert full.returncode == 0, full.stderr
    assert_exactly(template, total, digests)
    killed_midway = killed_runs = 0
    for run in range(20):
        db = isolated / f"kill{run}.db"
        _add_account(espomail, db, "crash", imap_server.port, user)
        proc = subprocess.Popen(
            [sys.executable, "-m", "espomail", "--db", db, "fetch"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if run % 2:  # a random moment from the start: start-up, login, search, download, commits
            time.sleep(rng.uniform(0.05, duration * 0.95))
        else:  # after a random number of stored messages: in the middle of the batches for sure
            _wait_for_emails(db, rng.randint(1, total - 1), proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = count(db, "SELECT COUNT(*) FROM emails")
        killed_midway += 0 < before < total
        started_runs = count(db, "SELECT COUNT(*) FROM fetch_runs WHERE status = 'running'")
        if started_runs:  # 'status' sees the run whose process is gone
            health = espomail("--db", db, "status", "--json")
            assert health.exit_code == 1 and health.json[0]["crashed_runs"] == 1, health
        rerun = espomail("--db", db, "fetch", "--json")
        assert rerun.exit_code == 0, (run, rerun)
        assert_exactly(db, total, digests)
        runs = [r[0] for r in sqlite3.connect(db).execute("SELECT status FROM fetch_runs ORDER BY id")]
        # The killed run is recorded as crashed (unless it was killed before it began, or after it ended).
        assert runs in (["crashed", "ok"], ["ok"]) or (runs == ["ok", "ok"] and before == total), (run, runs)
        killed_runs += runs[0] == "crashed"
    print(
        f"kill -9 campaign: full fetch {duration:.1f} s; 20 kills, {killed_midway} with part of the mail stored, "
        f"{killed_runs} runs reported crashed; 20 reruns exact"
    )
    assert killed_midway >= 10, f"only {killed_midway} of 20 kills fell in the middle of the fetch"
    assert killed_runs >= 10


def test_connection_dropped_in_the_middle_of_a_batch_next_run_completes(
    espomail, imap_server, group_account, db, monkeypatch
):
    _, user = group_account("flaky")
    total = 60
    imap_server.append(user, [build_message(subject=f"drop {i}", body="y" * 3000) for i in range(total)])
    proxy = CuttingProxy(imap_server.port, limit=120_000)
    monkeypatch.setenv("ESPOMAIL_BATCH_SIZE", "10")
    espomail("account", "update", "flaky", "--port", proxy.port)
    broken = espomail("fetch")
    proxy.close()
    assert broken.exit_code == 1
    assert "flaky" in broken.stderr
    partial = count(db, "SELECT COUNT(*) FROM emails")
    assert partial < total
    espomail("account", "update", "flaky", "--port", imap_server.port)
    assert espomail("fetch").exit_code == 0
    assert count(db) == total
    assert count(db, "SELECT COUNT(DISTINCT message_id) FROM emails") == total


# SQLite stores by path (a fresh store per run); tests/cli/test_hosts.py kills hosts on PostgreSQL.
@pytest.mark.engine_independent
@pytest.mark.slow
def test_the_server_dropping_the_connection_at_random_points_loses_and_doubles_nothing(
    espomail, imap_server, mailbox, isolated, monkeypatch
):
    """The campaign of issue 12 (Deliver 7): a proxy in front of the IMAP server cuts each
    connection after N bytes from the server, N random (a fifth of them in the greeting and
    login, the rest anywhere up to past the end). Twelve fresh stores each fetch the same 300
    messages through it, run after run, until complete. After every run: no email twice, none
    lost from the store, no error without a cause; at the end: exactly every message, intact.
    Figures in docs/field-safety.md."""
    import hashlib
    import random
    import re

    user = mailbox("flaky")
    total = 300
    imap_server.append(user, [build_message(subject=f"cut {i}", body="w" * (500 + 97 * i)) for i in range(total)])
    digests = sorted(hashlib.sha256(raw).hexdigest() for raw in imap_server.fetch_all(user))
    monkeypatch.setenv("ESPOMAIL_BATCH_SIZE", "25")
    session_bytes = sum(len(raw) for raw in imap_server.fetch_all(user)) + 20_000
    rng = random.Random(os.environ.get("ESPOMAIL_CAMPAIGN_SEED", "12"))

    def limit():
        return rng.randint(0, 3000) if rng.random() < 0.2 else rng.randint(0, session_bytes)

    proxy = CuttingProxy(imap_server.port, limit)
    reasons, runs = {}, 0
    for store_number in range(12):
        db = isolated / f"cut{store_number}.db"
        _add_account(espomail, db, "flaky", proxy.port, user)
        previous = 0
        for _ in range(40):
            runs += 1
            result = espomail("--db", db, "fetch", "--account", "flaky", "--json")
            stored = count(db, "SELECT COUNT(*) FROM emails")
            assert stored == count(db, "SELECT COUNT(DISTINCT message_id) FROM emails") >= previous
            previous = stored
            if result.exit_code == 0 and stored == total:
                break
            if result.exit_code:
                error = result.json["accounts"][0]["error"]
                assert "unexpected" not in error, error
                assert "login refused" not in error and "the server says" not in error, error  # a cut is no refusal
                reason = re.sub(r"127\.0\.0\.1:\d+", "SERVER", error)
                reasons[reason] = reasons.get(reason, 0) + 1
        assert_exactly(db, total, digests)
    proxy.close()
    print(f"cut campaign: {runs} runs of 12 stores, {proxy.connections} connections, {proxy.cuts} cut")
    for reason, times in sorted(reasons.items(), key=lambda r: -r[1]):
        print(f"  {times:3} x {reason}")
    assert proxy.cuts >= 20


def test_the_worker_process_path_links_filters_and_cases_like_in_place(
    espomail, dovecot, group_account, monkeypatch, smtp
):
    """Large fetches parse in a worker process and hand back summaries; steps that need
    bodies parse again. Force that path with a tiny threshold."""
    from espomail.services import preparing

    monkeypatch.setattr(preparing, "WORKER_THRESHOLD", 1)
    espomail("record", "add", "account", "--name", "Acme")
    espomail("record", "add", "contact", "--name", "Jane", "--email", "jane@acme.example", "--account", "1")
    espomail("filter", "add", "body", "--global", "--body-contains", "unsubscribe now")
    _, user = group_account("support", "--create-case")
    dovecot.append(
        user,
        [
            build_message(from_="jane@acme.example", subject="Broken", body="The printer broke.\n"),
            build_message(from_="news@list.example", subject="News", body="Click to unsubscribe now.\n"),
        ],
    )
    summary = fetch_json(espomail)
    assert (summary["new"], summary["accounts"][0]["filtered"], summary["accounts"][0]["cases_created"]) == (1, 1, 1)
    case = espomail("case", "show", "1", "--json").json
    assert case["description"] == "The printer broke." and case["account_id"] == 1
    [email] = espomail("email", "list", "--json").json
    assert espomail("email", "show", email["id"], "--json").json["body_text"].strip() == "The printer broke."


def test_keep_unread_by_default_and_mark_seen_on_request(espomail, imap_server, group_account):
    _, quiet = group_account("quiet")
    _, marking = group_account("marking", "--mark-seen")
    for user in (quiet, marking):
        imap_server.append(user, build_message())
    fetch_json(espomail)
    for user, seen in ((quiet, False), (marking, True)):
        with imap_server.client(user) as client:
            client.select_folder("INBOX", readonly=True)
            flags = client.get_flags(client.search("ALL"))
        assert all((b"\\Seen" in f) is seen for f in flags.values()), (user, flags)


def test_lists_page_with_limit_and_offset(espomail, dovecot, group_account):
    _, user = group_account("pages")
    dovecot.append(user, [build_message(subject=f"p{i}") for i in range(5)])
    fetch_json(espomail)
    first = [e["subject"] for e in espomail("email", "list", "--limit", "2", "--json").json]
    second = [e["subject"] for e in espomail("email", "list", "--limit", "2", "--offset", "2", "--json").json]
    assert len(first) == 2 and len(second) == 2 and not set(first) & set(second)
    assert espomail("account", "list", "--offset", "1", "--json").json == []


def test_list_items_carry_every_email_key(espomail, dovecot, group_account):
    keys = {
        "id",
        "message_id",
        "subject",
        "from",
        "to",
        "cc",
        "reply_to",
        "date_sent",
        "status",
        "parent",
        "replied_id",
        "is_auto_reply",
        "is_bounce",
        "teams",
        "users",
        "accounts",
        "attachments",
        "body_text",
        "body_html",
    }
    _, user = group_account("keys")
    dovecot.append(user, build_message(body="Body here.\n"))
    fetch_json(espomail)
    [item] = espomail("email", "list", "--json").json
    assert keys <= set(item) and item["body_text"] is None
    [full] = espomail("email", "list", "--bodies", "--json").json
    assert full["body_text"].strip() == "Body here."
    shown = espomail("email", "show", item["id"], "--json").json
    assert keys <= set(shown) and shown["body_text"].strip() == "Body here."
