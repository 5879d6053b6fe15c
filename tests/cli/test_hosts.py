"""Several fetch hosts against one PostgreSQL store (SPEC 13): ``espomail fetch`` processes
with their own data directories (so their own file locks) and one ESPOMAIL_DB URL.

Whatever happens, each message is stored once and delivered once per account: two hosts
fetching 200 accounts at once share them; a host killed with -9 mid-fetch leaves its
account to the other at once (its connection is gone); a host that hangs keeps it until its
lease expires by the database's clock, and stores nothing for it after waking up.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from espomail.testing.messages import build_message

_numbers = itertools.count(1)


@pytest.fixture
def shared(postgres_template, monkeypatch):
    """One PostgreSQL store for every host of the test (and the in-process commands)."""
    server, template = postgres_template
    name = f"espomail_hosts_{os.getpid()}_{next(_numbers)}"
    url = server.create_database(name, template=template)
    monkeypatch.setenv("ESPOMAIL_DB", url)
    yield url
    server.drop_database(name)


def host(tmp_path, name: str, **settings: str) -> dict[str, str]:
    """The environment of one fetch host: its own data directory (logs, file locks)."""
    data = tmp_path / name
    env = {**os.environ, "XDG_DATA_HOME": str(data), "ESPOMAIL_DATA_DIR": str(data / "espomail")}
    env.update({f"ESPOMAIL_{key.upper()}": str(value) for key, value in settings.items()})
    return env


def start_fetch(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "espomail", "fetch", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def add_account(espomail, imap, user: str, name: str) -> None:
    result = espomail(
        "account", "add-group", name, "--address", f"{name}@example.com", "--host", imap.host,
        "--port", imap.port, "--security", "none", "--username", user,
        "--password-env", "TEST_IMAP_PASSWORD", "--fetch-since", "2000-01-01",
    )  # fmt: skip
    assert result.exit_code == 0, result


def assert_each_message_once(db, total: int, accounts: int, processed: bool = True) -> None:
    assert db.value("SELECT COUNT(*) FROM emails") == total
    assert db.value("SELECT COUNT(DISTINCT message_id) FROM emails") == total
    if processed:
        assert db.value("SELECT COUNT(*) FROM emails WHERE state = 'processed'") == total
    assert db.value("SELECT COUNT(*) FROM email_deliveries") == total
    doubled = db.value(
        "SELECT COUNT(*) FROM (SELECT account_id, email_id FROM email_deliveries"
        " GROUP BY account_id, email_id HAVING COUNT(*) > 1) AS d"
    )
    assert doubled == 0
    assert db.value("SELECT COUNT(DISTINCT account_id) FROM email_deliveries") == accounts
    assert db.value("SELECT COUNT(*) FROM mail_accounts WHERE lease_holder IS NOT NULL") == 0


def unreferenced_sources(db) -> int:
    """Every email and delivery names a raw source that exists with its SHA-256 (asserted);
    returns how many sources no row names (a dead host's batches uploaded ahead, until the
    next fetch of the account deletes them)."""
    for table in ("emails", "email_deliveries"):
        missing = db.value(
            f"SELECT COUNT(*) FROM {table} t WHERE t.raw_pack = 'db' AND NOT EXISTS"
            " (SELECT 1 FROM raw_sources r WHERE r.id = t.raw_offset)"
        )
        assert missing == 0, table
    assert (
        db.value(
            "SELECT COUNT(*) FROM emails e JOIN raw_sources r ON r.id = e.raw_offset WHERE r.sha256 <> e.raw_sha256"
        )
        == 0
    )
    return db.value(
        "SELECT COUNT(*) FROM raw_sources r WHERE NOT EXISTS (SELECT 1 FROM email_deliveries d"
        " WHERE d.raw_pack = 'db' AND d.raw_offset = r.id)"
    )


def stored(db) -> int:
    try:
        return db.value("SELECT COUNT(*) FROM emails")
    except Exception:  # noqa: BLE001 - the server is busy; ask again
        return 0


@pytest.mark.slow
def test_two_hosts_share_200_accounts_and_store_each_message_once(espomail, dovecot, mailbox, shared, db, tmp_path):
    accounts, per_account = 200, 3
    for i in range(accounts):
        user = mailbox("hosts")
        dovecot.append(user, [build_message(subject=f"{user} {n}", body=f"{user} {n}\n") for n in range(per_account)])
        add_account(espomail, dovecot, user, f"acct{i:03d}")

    hosts = [start_fetch(host(tmp_path, name)) for name in ("host-a", "host-b")]
    outputs = [process.communicate(timeout=600) for process in hosts]
    for process, (_out, err) in zip(hosts, outputs, strict=True):
        assert process.returncode == 0, err
    summaries = [json.loads(out) for out, _ in outputs]

    assert_each_message_once(db, accounts * per_account, accounts)
    assert sum(s["new"] for s in summaries) == accounts * per_account
    assert all(s["new"] > 0 for s in summaries), "both hosts fetched accounts"
    for index in range(accounts):
        statuses = {s["accounts"][index]["status"] for s in summaries}
        assert "ok" in statuses and statuses <= {"ok", "locked"}
    # No account's mail came in two runs (a host may also process deliveries another host
    # stored a moment before: they count in its "retried", not in an account's run).
    importing_runs = db.rows("SELECT account_id, COUNT(*) AS n FROM fetch_runs WHERE new > 0 GROUP BY account_id")
    assert {r["n"] for r in importing_runs} <= {1}


def fill_one_account(espomail, dovecot, mailbox, total: int) -> None:
    user = mailbox("big")
    dovecot.append(user, (build_message(subject=f"big {i}", body="x" * 2000) for i in range(total)))
    add_account(espomail, dovecot, user, "big")


def wait_until_stored(db, process: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and stored(db) < at_least:
        time.sleep(0.02)
    assert process.poll() is None, "the fetch ended before the test could stop it"


def fetch_until_taken(env: dict[str, str], seconds: float) -> dict:
    """Run a fetch on a host until it gets the account (it is 'locked' while another holds it)."""
    deadline = time.monotonic() + seconds
    while True:
        done = subprocess.run(
            [sys.executable, "-m", "espomail", "fetch", "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
        summary = json.loads(done.stdout)
        if summary["accounts"][0]["status"] != "locked" or time.monotonic() > deadline:
            return summary
        time.sleep(0.2)


@pytest.mark.slow
def test_a_host_killed_mid_fetch_leaves_its_account_to_the_other(espomail, dovecot, mailbox, shared, db, tmp_path):
    total = 1000
    fill_one_account(espomail, dovecot, mailbox, total)
    settings = {"batch_size": 50, "max_per_run": 5000, "lease_s": 3}
    first = start_fetch(host(tmp_path, "host-a", **settings))
    wait_until_stored(db, first, 200)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    before = stored(db)
    assert 0 < before < total

    # Its connection is gone, so the lease is free at once (at the latest after lease_s).
    summary = fetch_until_taken(host(tmp_path, "host-b", **settings), seconds=10)
    assert summary["accounts"][0]["status"] == "ok", summary
    assert_each_message_once(db, total, 1)
    # The killed host's batches uploaded ahead of their transactions were deleted by the
    # fetch that took the account over: no source is left that no row names.
    assert unreferenced_sources(db) == 0
    assert db.value("SELECT COUNT(*) FROM raw_uploads") == 0


@pytest.mark.slow
def test_a_hung_host_is_taken_over_after_its_lease_and_stores_nothing_more(
    espomail, dovecot, mailbox, shared, db, tmp_path
):
    total = 1000
    fill_one_account(espomail, dovecot, mailbox, total)
    settings = {"batch_size": 50, "max_per_run": 5000, "lease_s": 5}
    hung = start_fetch(host(tmp_path, "host-a", **settings))
    other = host(tmp_path, "host-b", **settings)
    wait_until_stored(db, hung, 200)
    os.kill(hung.pid, signal.SIGSTOP)
    try:
        time.sleep(0.5)  # a renewal it sent just before is committed by now
        expires = db.value("SELECT lease_expires_at FROM mail_accounts")
        assert expires is not None
        summary = fetch_until_taken(other, seconds=60)  # 'locked' while its lease runs
        assert summary["accounts"][0]["status"] == "ok", summary
        taken_at = db.value("SELECT MAX(started_at) FROM fetch_runs")
        assert taken_at >= expires  # not before the lease expired (ISO text, UTC, seconds)
        # Every message is stored once. A batch the hung host was processing may still be
        # pending: its rows stay locked until that host's session ends; the next run does it.
        assert_each_message_once(db, total, 1, processed=False)
    finally:
        os.kill(hung.pid, signal.SIGCONT)
    out, err = hung.communicate(timeout=120)
    # Awake again, it finds that another host took the account over (or that the server
    # ended its session, idle in a transaction past the lease), and stores nothing more. A
    # lost lease is said in the run's summary and log only, never counted against the account
    # (no failure, no backoff); a lost connection is an Error: line.
    assert hung.returncode == 1
    said = json.loads(out)["accounts"][0]["error"] or ""
    assert "another fetch host took this account over" in said or "lost the connection" in err, (out, err)
    assert fetch_until_taken(other, seconds=30)["accounts"][0]["status"] == "ok"  # cron's next run
    assert_each_message_once(db, total, 1)
    # What the hung host uploaded for batches it could no longer store is gone too.
    assert unreferenced_sources(db) == 0
    assert db.value("SELECT COUNT(*) FROM raw_uploads") == 0
