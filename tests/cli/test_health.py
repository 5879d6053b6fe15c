"""Health is visible (SPEC 11, issue 12 items 4 and 6): ``status`` reports failing, stale and
crashed accounts and a stuck outbox (exit 1); a failing account backs off and its error is
printed once per change; every run logs a line per account."""

import json
import socket
import subprocess
import sys

import pytest

from espomail.testing.messages import build_message


def sql(db, statement, params=()):
    """Rows (as tuples) of a query, or nothing for a change."""
    if statement.lstrip().upper().startswith("SELECT"):
        return [tuple(row.values()) for row in db.rows(statement, params)]
    db.execute(statement, params)
    return []


def status(espomail):
    result = espomail("status", "--json")
    return result.exit_code, {row["name"]: row for row in result.json}


def break_password(espomail, monkeypatch, name, value="wrong-password-123"):
    monkeypatch.setenv("BAD_PASSWORD", value)
    assert espomail("account", "update", name, "--password-env", "BAD_PASSWORD").exit_code == 0


def make_due(db, name):
    """The backoff of account ``name`` is over (as if its minutes had passed)."""
    sql(
        db,
        "UPDATE account_health SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE account_id = "
        "(SELECT id FROM mail_accounts WHERE name = ?)",
        [name],
    )


RUNNING = "INSERT INTO fetch_runs (account_id, started_at, status) VALUES (1, '2030-01-01T00:00:00Z', 'running')"


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- status ------------------------------------------------------------------------------------


def test_healthy_accounts_exit_0_with_the_new_keys(espomail, dovecot, group_account):
    _, box = group_account("fine")
    dovecot.append(box, build_message())
    assert espomail("fetch").exit_code == 0
    code, rows = status(espomail)
    assert code == 0
    row = rows["fine"]
    assert {"name", "last_success_at", "last_error", "backlog", "failed_emails", "pending_emails"} <= set(row)
    assert row["healthy"] is True and row["problems"] == []
    assert (row["stale"], row["failures"], row["next_attempt_at"], row["crashed_runs"], row["outbox_stuck"]) == (
        False,
        0,
        None,
        0,
        0,
    )


def test_a_new_account_is_not_stale_until_stale_after_min(espomail, group_account, db):
    group_account("new")
    code, rows = status(espomail)
    assert code == 0 and rows["new"]["stale"] is False
    sql(db, "UPDATE mail_accounts SET created_at = '2020-01-01T00:00:00Z'")
    code, rows = status(espomail)
    assert code == 1 and rows["new"]["stale"] is True
    assert "not fetched successfully for over 30 min" in rows["new"]["problems"][0]


@pytest.mark.parametrize("minutes, stale", [(29, False), (31, True)])
def test_stale_after_min_is_the_limit(espomail, dovecot, group_account, db, monkeypatch, minutes, stale):
    import datetime as dt

    from espomail import timeutil

    _, box = group_account("watched")
    assert espomail("fetch").exit_code == 0
    when = timeutil.iso(timeutil.now() - dt.timedelta(minutes=minutes))
    sql(db, "UPDATE mail_accounts SET last_success_at = ?", [when])
    code, rows = status(espomail)
    assert (code, rows["watched"]["stale"]) == (int(stale), stale)
    monkeypatch.setenv("ESPOMAIL_STALE_AFTER_MIN", "120")
    code, rows = status(espomail)
    assert (code, rows["watched"]["stale"]) == (0, False)


def test_an_inactive_account_is_never_stale_nor_failing(espomail, group_account, db):
    group_account("asleep", "--inactive")
    sql(db, "UPDATE mail_accounts SET created_at = '2020-01-01T00:00:00Z', last_error = 'old trouble'")
    code, rows = status(espomail)
    assert code == 0 and rows["asleep"]["problems"] == []


def test_a_run_whose_process_is_gone_is_reported_as_crashed(espomail, dovecot, group_account, db):
    _, box = group_account("crashy")
    assert espomail("fetch").exit_code == 0
    holder = f"{socket.gethostname()}:{dead_pid()}"
    sql(db, "UPDATE mail_accounts SET lease_holder = ?, lease_expires_at = '2999-01-01T00:00:00Z'", [holder])
    sql(db, RUNNING)
    code, rows = status(espomail)
    assert code == 1
    row = rows["crashy"]
    assert row["crashed_runs"] == 1 and row["last_crash_at"] == "2030-01-01T00:00:00Z"
    assert any("crashed" in p for p in row["problems"])
    # The next fetch takes the dead run's lease, marks the run crashed and succeeds.
    dovecot.append(box, build_message())
    assert espomail("fetch").exit_code == 0
    assert sql(db, "SELECT status, error FROM fetch_runs WHERE started_at = '2030-01-01T00:00:00Z'")[0][0] == (
        "crashed"
    )
    code, rows = status(espomail)
    assert code == 0, rows
    assert rows["crashy"]["crashed_runs"] == 1  # still counted for a day, no longer a problem


def test_a_running_fetch_is_not_a_crash(espomail, group_account, db):
    group_account("busy")
    fetching = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "espomail", "fetch"])
    try:
        sql(db, "UPDATE mail_accounts SET lease_holder = ?", [f"{socket.gethostname()}:{fetching.pid}"])
        sql(db, RUNNING)
        code, rows = status(espomail)
        assert code == 0 and rows["busy"]["crashed_runs"] == 0
    finally:
        fetching.kill()
        fetching.wait()
    code, rows = status(espomail)
    assert code == 1 and rows["busy"]["crashed_runs"] == 1


def test_a_run_of_another_host_is_alive_until_its_lease_expires(espomail, group_account, db):
    group_account("far")
    sql(db, RUNNING)
    sql(db, "UPDATE mail_accounts SET lease_holder = 'elsewhere:1', lease_expires_at = '2999-01-01T00:00:00Z'")
    assert status(espomail)[0] == 0
    sql(db, "UPDATE mail_accounts SET lease_expires_at = '2001-01-01T00:00:00Z'")
    code, rows = status(espomail)
    assert code == 1 and rows["far"]["crashed_runs"] == 1


def _system_mail(db, account_id, status_, attempts, updated="2999-01-01T00:00:00Z"):
    sql(
        db,
        """INSERT INTO emails (message_id, subject, status, is_system, send_attempts, sent_account_id,
           created_at, updated_at) VALUES (?, 'Re: help', ?, 1, ?, ?, ?, ?)""",
        [f"<m{attempts}{status_}{account_id}@x>", status_, attempts, account_id, updated, updated],
    )


@pytest.mark.parametrize(
    "status_, attempts, updated, stuck",
    [
        ("Failed", 3, "2999-01-01T00:00:00Z", True),  # no tries left (send_retries 3)
        ("Failed", 1, "2999-01-01T00:00:00Z", False),  # will be retried
        ("Failed", 1, "2001-01-01T00:00:00Z", True),  # tries left, but nobody tried for hours
        ("Sending", 0, "2001-01-01T00:00:00Z", True),  # claimed long ago, never finished
        ("Sending", 0, "2999-01-01T00:00:00Z", False),  # going out now
        ("Sent", 1, "2001-01-01T00:00:00Z", False),
    ],
)
def test_stuck_outbox(espomail, group_account, db, status_, attempts, updated, stuck):
    group_account("replies")
    _system_mail(db, 1, status_, attempts, updated)
    code, rows = status(espomail)
    assert rows["replies"]["outbox_stuck"] == int(stuck)
    assert code == int(stuck)
    assert any("outgoing system mail stuck" in p for p in rows["replies"]["problems"]) is stuck


def test_stuck_mail_of_no_account_is_said_on_stderr(espomail, group_account, db):
    group_account("replies")
    _system_mail(db, None, "Failed", 5)
    result = espomail("status", "--json")
    assert result.exit_code == 1
    assert "1 outgoing system mail stuck without a sending account" in result.stderr
    assert json.loads(result.stdout)[0]["outbox_stuck"] == 0


# -- backoff and errors once per change ----------------------------------------------------------


def test_a_failing_account_backs_off_and_fetch_account_forces_it(espomail, dovecot, group_account, monkeypatch):
    _, good = group_account("good")
    group_account("bad")
    break_password(espomail, monkeypatch, "bad")
    first = espomail("fetch", "--json")
    assert first.exit_code == 1
    bad = {a["name"]: a for a in first.json["accounts"]}["bad"]
    assert (bad["status"], bad["failures"]) == ("error", 1) and bad["next_attempt_at"]
    # Within the backoff: not tried, still failing (exit 1), nothing printed, the others fetched.
    dovecot.append(good, build_message(subject="meanwhile"))
    second = espomail("fetch", "--json")
    assert second.exit_code == 1 and second.stderr == ""
    accounts = {a["name"]: a for a in second.json["accounts"]}
    assert accounts["bad"]["status"] == "skipped" and accounts["bad"]["next_attempt_at"] == bad["next_attempt_at"]
    assert accounts["good"]["new"] == 1
    code, rows = status(espomail)
    assert code == 1 and rows["bad"]["next_attempt_at"] == bad["next_attempt_at"] and rows["bad"]["failures"] == 1
    # Naming the account tries it now (and says the error again: it was asked for).
    forced = espomail("fetch", "--account", "bad", "--json")
    assert forced.exit_code == 1 and forced.json["accounts"][0]["failures"] == 2
    assert forced.stderr.startswith("Error: account 'bad':")
    # -v says why an account is skipped.
    verbose = espomail("-v", "fetch")
    assert "account 'bad' skipped: 2 failed fetch(es) in a row" in verbose.stderr


def test_backoff_doubles_up_to_an_hour():
    from espomail.services.fetching import backoff_minutes

    assert [backoff_minutes(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_minutes(10**9) == 60


def test_the_same_error_is_printed_once_then_again_when_it_changes_or_after_recovery(
    espomail, dovecot, group_account, db, monkeypatch
):
    _, box = group_account("flaky")
    break_password(espomail, monkeypatch, "flaky")
    printed = []
    for step in range(3):
        if step:
            make_due(db, "flaky")
        result = espomail("fetch")
        assert result.exit_code == 1
        printed.append(result.stderr)
    assert printed[0].startswith("Error: account 'flaky': login refused") and printed[1:] == ["", ""]
    assert sql(db, "SELECT failures FROM account_health")[0][0] == 3
    # Another error: printed. (Changing the account's settings also ends its backoff.)
    assert espomail("account", "update", "flaky", "--port", "1").exit_code == 0
    changed = espomail("fetch")
    assert changed.exit_code == 1 and "connection refused" in changed.stderr
    make_due(db, "flaky")
    assert espomail("fetch").stderr == ""
    # Recovery, then the first error again: printed again.
    assert espomail("account", "update", "flaky", "--port", dovecot.port, "--password-env", "TEST_IMAP_PASSWORD")
    recovered = espomail("fetch", "--json")
    assert recovered.exit_code == 0 and recovered.stderr == ""
    assert sql(db, "SELECT COUNT(*) FROM account_health")[0][0] == 0
    break_password(espomail, monkeypatch, "flaky")
    again = espomail("fetch")
    assert again.exit_code == 1 and again.stderr.startswith("Error: account 'flaky': login refused")


def test_a_dry_run_records_no_run_and_no_backoff(espomail, group_account, db, monkeypatch):
    group_account("dry")
    break_password(espomail, monkeypatch, "dry")
    result = espomail("fetch", "--dry-run", "--json")
    assert result.exit_code == 1
    assert sql(db, "SELECT COUNT(*) FROM fetch_runs")[0][0] == 0
    assert sql(db, "SELECT COUNT(*) FROM account_health")[0][0] == 0


# -- logging -------------------------------------------------------------------------------------------


def log_text(isolated):
    path = isolated / "espomail.log"
    return path.read_text() if path.exists() else ""


def test_every_run_logs_a_line_per_account_with_its_counts(espomail, dovecot, group_account, isolated, monkeypatch):
    _, box = group_account("support")
    group_account("broken")
    break_password(espomail, monkeypatch, "broken")
    dovecot.append(box, [build_message(subject="one"), build_message(subject="two")])
    assert espomail("fetch").exit_code == 1
    text = log_text(isolated)
    assert "INFO espomail.fetch: account support: ok, 2 new, 0 duplicates, 0 filtered, 0 failed, 0 cases" in text
    assert "INFO espomail.fetch: account broken: error, 0 new" in text
    assert "ERROR espomail.fetch: account broken: login refused" in text
    assert "DEBUG" not in text
    # An idle run logs its line too.
    assert espomail("fetch", "--account", "support").exit_code == 0
    assert log_text(isolated).count("account support: ok") == 2


def test_v_shows_the_info_lines_on_stderr_and_vv_the_details(espomail, dovecot, group_account):
    _, box = group_account("support")
    dovecot.append(box, build_message())
    once = espomail("-v", "fetch")
    assert once.exit_code == 0
    assert "INFO: account support: ok, 1 new" in once.stderr and "DEBUG" not in once.stderr
    dovecot.append(box, build_message())
    twice = espomail("-vv", "fetch")
    assert "DEBUG: account support folder INBOX: 1 to fetch (incremental)" in twice.stderr
    assert "DEBUG: account support folder INBOX: stored UIDs" in twice.stderr
    idle = espomail("-vv", "fetch")
    assert "folder INBOX: unchanged" in idle.stderr


def test_a_log_that_cannot_be_written_never_prints_a_traceback(espomail, dovecot, group_account, monkeypatch):
    import errno
    import logging.handlers

    def full(self, record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(logging.handlers.WatchedFileHandler, "emit", lambda self, record: self.handleError(record))
    monkeypatch.setattr(logging.StreamHandler, "flush", full)
    _, box = group_account("support")
    dovecot.append(box, build_message())
    result = espomail("-v", "fetch")
    assert result.exit_code == 0
    assert "Logging error" not in result.stderr and "Traceback" not in result.stderr


# -- log targets -----------------------------------------------------------------------------------------


@pytest.fixture
def datagrams(tmp_path):
    """A unix datagram socket standing in for /dev/log or the journal; returns (path, read)."""
    path = tmp_path / "log.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(0.2)

    def read():
        found = []
        while True:
            try:
                found.append(server.recv(65536))
            except TimeoutError:
                return found

    yield str(path), read
    server.close()


def test_log_target_journald_writes_native_journal_fields(espomail, dovecot, group_account, monkeypatch, datagrams):
    from espomail.cli import logtargets

    path, read = datagrams
    monkeypatch.setattr(logtargets, "JOURNAL_SOCKET", path)
    monkeypatch.setenv("ESPOMAIL_LOG_TARGET", "journald")
    _, box = group_account("support")
    dovecot.append(box, build_message())
    assert espomail("fetch").exit_code == 0
    entries = [dict(line.split("=", 1) for line in d.decode().splitlines()) for d in read()]
    line = next(e for e in entries if e["MESSAGE"].startswith("account support: ok, 1 new"))
    assert line["PRIORITY"] == "6" and line["SYSLOG_IDENTIFIER"] == "espomail" and line["LOGGER"] == "espomail.fetch"


def test_log_target_journald_without_a_journal_socket_uses_the_priority_prefix_on_stderr(
    espomail, dovecot, group_account, monkeypatch, tmp_path
):
    from espomail.cli import logtargets

    monkeypatch.setattr(logtargets, "JOURNAL_SOCKET", str(tmp_path / "none"))
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    monkeypatch.setenv("ESPOMAIL_LOG_TARGET", "journald")
    _, box = group_account("support")
    dovecot.append(box, build_message())
    result = espomail("fetch")
    assert result.exit_code == 0
    assert "<6>INFO espomail.fetch: account support: ok, 1 new" in result.stderr


def test_log_target_syslog_uses_dev_log(espomail, dovecot, group_account, monkeypatch, datagrams, isolated):
    from espomail.cli import logtargets

    path, read = datagrams
    monkeypatch.setattr(logtargets, "SYSLOG_SOCKET", path)
    monkeypatch.setenv("ESPOMAIL_LOG_TARGET", "syslog")
    _, box = group_account("support")
    dovecot.append(box, build_message())
    assert espomail("fetch").exit_code == 0
    lines = [d.decode() for d in read()]
    assert any(
        line.startswith("<14>espomail[") and "INFO espomail.fetch: account support: ok, 1 new" in line for line in lines
    ), lines
    assert "account support" not in log_text(isolated)


def test_log_target_syslog_without_dev_log_falls_back_to_the_file(
    espomail, dovecot, group_account, monkeypatch, tmp_path, isolated
):
    from espomail.cli import logtargets

    monkeypatch.setattr(logtargets, "SYSLOG_SOCKET", str(tmp_path / "none"))
    monkeypatch.setenv("ESPOMAIL_LOG_TARGET", "syslog")
    group_account("support")
    assert espomail("fetch").exit_code == 0
    assert "account support: ok" in log_text(isolated)


def test_a_bad_log_target_is_a_config_error(espomail, monkeypatch):
    monkeypatch.setenv("ESPOMAIL_LOG_TARGET", "printer")
    result = espomail("team", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: config key 'log_target': expected file, syslog, journald")
