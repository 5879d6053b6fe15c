"""``espomail watch`` end to end: a real subprocess against private IMAP servers.

Mail APPENDed while watch runs is stored and cased; watch beside cron fetches, a SIGTERM, a
``kill -9`` in a burst and a server restart never lose or double a message; accounts added,
changed and removed are picked up without a restart. No timing assertions: each test polls
the store until what it waits for appears, with a generous timeout.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from espomail.store.urls import shown
from espomail.testing.dovecot import Dovecot
from espomail.testing.messages import build_message

POLL_INTERVAL = "0.5"
TIMEOUT = 60


def count(db, sql="SELECT COUNT(*) FROM emails WHERE state = 'processed'", params=()):
    return db.value(sql, params)


def wait_for(what, check, timeout=TIMEOUT, proc=None):
    """Poll ``check()`` until it is true; fail saying ``what`` (and watch's stderr) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except sqlite3.OperationalError:
            pass  # the store is being created or migrated
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"watch ended (exit {proc.returncode}) before {what}:\n{proc.log()}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (f":\n{proc.log()}" if proc is not None else ""))


class Watch:
    """``espomail watch ARGS`` as a subprocess; its stderr goes to a file (``log()``)."""

    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None) -> None:
        self.stderr_path = tmp_path / f"watch-{time.monotonic_ns()}.stderr"
        environment = {**os.environ, "ESPOMAIL_POLL_INTERVAL_S": POLL_INTERVAL, **(env or {})}
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "espomail", "watch", *args],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.pid = self.proc.pid

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def poll(self):
        return self.proc.poll()

    @property
    def returncode(self):
        return self.proc.returncode

    def wait_log(self, text: str, times: int = 1, timeout: float = TIMEOUT) -> None:
        wait_for(f"{text!r} in watch's log", lambda: self.log().count(text) >= times, timeout, self)

    def stop(self, sig=signal.SIGTERM, timeout: float = TIMEOUT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"watch did not stop after {sig!r}:\n{self.log()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def watch(tmp_path):
    started: list[Watch] = []

    def start(*args: str, env: dict | None = None) -> Watch:
        process = Watch(tmp_path, *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        assert "Traceback" not in process.log(), process.log()


def stored(db, n, cased=False):
    sql = "SELECT COUNT(*) FROM emails WHERE state = 'processed'"
    if cased:
        sql += " AND parent_type = 'case'"
    return lambda: count(db, sql) >= n


def assert_each_once(db, total, account="support"):
    assert count(db, "SELECT COUNT(*) FROM emails") == total
    assert count(db, "SELECT COUNT(DISTINCT message_id) FROM emails") == total
    assert count(db) == total
    deliveries = """SELECT COUNT(*) FROM email_deliveries d JOIN mail_accounts a ON a.id = d.account_id
                    WHERE a.name = ?"""
    assert count(db, deliveries, (account,)) == total


def status_of(espomail, name):
    result = espomail("status", "--json")
    return {row["name"]: row for row in result.json}[name]


# -- the basics ------------------------------------------------------------------------------------


def test_mail_appended_while_watch_runs_is_stored_and_cased(espomail, dovecot, group_account, watch, db):
    _, user = group_account("support", "--create-case")
    dovecot.append(user, build_message(subject="before watch"))
    assert status_of(espomail, "support")["watched_since"] is None
    process = watch()
    process.wait_log("folder 'INBOX': idle")
    wait_for("the message that was there before", stored(db, 1, cased=True), proc=process)
    dovecot.append(user, build_message(subject="while watching"))
    wait_for("the new message, stored and cased", stored(db, 2, cased=True), proc=process)
    assert sorted(c["name"] for c in espomail("case", "list", "--json").json) == ["before watch", "while watching"]
    process.wait_log("account 'support': new mail: 1 new", times=2)
    row = status_of(espomail, "support")
    assert row["watch"] == "idle" and row["watched_since"].endswith("Z")
    assert process.stop() == 0
    log = process.log()
    assert "connected to" in log and "stopped" in log
    assert status_of(espomail, "support")["watched_since"] is None  # a clean stop removes its heartbeat
    assert_each_once(db, 2)


def test_watch_and_three_concurrent_cron_fetches_store_each_message_once(
    espomail, espomail_process, dovecot, group_account, watch, db
):
    _, user = group_account("support", "--create-case")
    process = watch()
    process.wait_log("folder 'INBOX': idle")
    total = 40

    def burst():
        for i in range(total):
            dovecot.append(user, build_message(subject=f"burst {i}"))

    appending = threading.Thread(target=burst)
    appending.start()
    crons = []
    while appending.is_alive() or len(crons) < 6:
        fetch = [sys.executable, "-m", "espomail", "fetch"]
        crons += [subprocess.Popen(fetch, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        for cron in crons[-3:]:
            out, err = cron.communicate(timeout=120)
            assert cron.returncode == 0, err
        time.sleep(0.1)
    appending.join()
    wait_for(f"{total} messages", stored(db, total, cased=True), proc=process)
    assert espomail_process("fetch").exit_code == 0
    assert process.stop() == 0
    assert_each_once(db, total)
    assert count(db, "SELECT COUNT(*) FROM cases") == total


def test_sigterm_and_sigint_in_a_burst_exit_0_and_lose_nothing(espomail, dovecot, group_account, watch, db):
    _, user = group_account("support")
    total = 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = watch()
        process.wait_log("folder 'INBOX': idle")
        dovecot.append(user, [build_message(subject=f"{sig.name} {i}") for i in range(30)])
        total += 30
        wait_for("the first messages", lambda n=total - 29: count(db, "SELECT COUNT(*) FROM emails") >= n)
        assert process.stop(sig) == 0, process.log()
        assert f"{sig.name}: stopping" in process.log()
    assert espomail("fetch").exit_code == 0
    assert_each_once(db, total)


@pytest.mark.slow
def test_kill_9_in_a_burst_then_fetch_gives_each_message_once(espomail, dovecot, group_account, watch, db):
    _, user = group_account("support")
    process = watch(env={"ESPOMAIL_BATCH_SIZE": "5"})
    process.wait_log("folder 'INBOX': idle")
    total = 150
    appending = threading.Thread(
        target=lambda: [dovecot.append(user, build_message(subject=f"k{i}", body="z" * 3000)) for i in range(total)]
    )
    appending.start()
    wait_for("some messages stored", lambda: count(db, "SELECT COUNT(*) FROM emails") >= 20, proc=process)
    row = status_of(espomail, "support")
    assert row["watch"] == "idle"
    process.kill()  # SIGKILL in the middle of the burst
    appending.join()
    assert 0 < count(db, "SELECT COUNT(*) FROM emails") < total
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    assert_each_once(db, total)
    # The dead watcher's heartbeat expires: it is not shown as watching for long.
    wait_for("the dead watcher to be shown as not watching", lambda: status_of(espomail, "support")["watch"] is None)


# -- the server goes away and comes back -------------------------------------------------------------


def deliver_to_maildir(server: Dovecot, user: str, raw: bytes) -> None:
    """What an MTA does while the IMAP server is down: a file in the user's Maildir new/."""
    new = server.base / "mail" / user / "new"
    path = new / f"{time.time_ns()}.M1P{os.getpid()}.test"
    tmp = new.parent / "tmp" / path.name
    tmp.write_bytes(raw)
    owner = new.stat()
    if os.geteuid() == 0:
        os.chown(tmp, owner.st_uid, owner.st_gid)
    os.rename(tmp, path)


@pytest.mark.slow
def test_server_restart_watch_reconnects_and_fetches_what_arrived_meanwhile(espomail, watch, db):
    with Dovecot() as server:
        server.add_user("restart")
        added = espomail(
            "account", "add-group", "support", "--address", "support@example.com", "--host", server.host,
            "--port", server.port, "--security", "none", "--username", "restart",
            "--password-env", "TEST_IMAP_PASSWORD", "--fetch-since", "2000-01-01", "--create-case",
        )  # fmt: skip
        assert added.exit_code == 0, added
        server.append("restart", build_message(subject="first"))
        process = watch()
        process.wait_log("folder 'INBOX': idle")
        wait_for("the first message", stored(db, 1, cased=True), proc=process)
        server.restart(while_down=lambda: deliver_to_maildir(server, "restart", build_message(subject="meanwhile")))
        process.wait_log("reconnected to")
        wait_for("the message delivered while the server was down", stored(db, 2, cased=True), proc=process)
        process.wait_log("folder 'INBOX': idle", times=2)
        server.append("restart", build_message(subject="after"))
        wait_for("a message after the reconnect", stored(db, 3, cased=True), proc=process)
        assert "folder 'INBOX': error:" in process.log()
        assert process.stop() == 0
    assert_each_once(db, 3)


# -- accounts change while watch runs ----------------------------------------------------------------


def test_accounts_added_changed_and_removed_are_picked_up(espomail, dovecot, group_account, mailbox, watch, db):
    process = watch()
    process.wait_log("started")
    _, user = group_account("support")
    process.wait_log("account 'support' folder 'INBOX': idle")
    dovecot.append(user, build_message(subject="to the new account"))
    wait_for("mail of the account added while watch runs", stored(db, 1), proc=process)
    assert status_of(espomail, "support")["watch"] == "idle"

    assert espomail("account", "update", "support", "--folder", "INBOX", "--folder", "Work").exit_code == 0
    dovecot.append(user, build_message(subject="work"), folder="Work")  # creates the folder
    process.wait_log("account 'support' folder 'Work': idle")
    dovecot.append(user, build_message(subject="more work"), folder="Work")
    wait_for("mail of the folder added while watch runs", stored(db, 3), proc=process)

    moved = mailbox("moved")  # another mailbox: the connection must be made again
    assert espomail("account", "update", "support", "--username", moved).exit_code == 0
    process.wait_log("account 'support' folder 'INBOX': stopped watching (account settings changed; reconnecting)")
    process.wait_log("account 'support' folder 'INBOX': idle", times=2)
    dovecot.append(moved, build_message(subject="in the new mailbox"))
    wait_for("mail of the changed mailbox", stored(db, 4), proc=process)

    _, other = group_account("sales")
    process.wait_log("account 'sales' folder 'INBOX': idle")
    assert espomail("account", "update", "sales", "--inactive").exit_code == 0
    process.wait_log("account 'sales' folder 'INBOX': stopped watching (account inactive)")
    assert espomail("account", "remove", "support", "--yes").exit_code == 0
    process.wait_log("account 'support' folder 'INBOX': stopped watching (account removed)")
    process.wait_log("account 'support' folder 'Work': stopped watching (account removed)")
    dovecot.append(other, build_message(subject="nobody listens"))
    assert process.stop() == 0
    assert count(db, "SELECT COUNT(*) FROM emails WHERE subject = 'nobody listens'") == 0


def test_watch_named_accounts_only_and_unknown_names_are_refused(espomail, dovecot, group_account, watch, db):
    _, support = group_account("support")
    _, sales = group_account("sales")
    refused = espomail("watch", "--account", "nope")
    assert refused.exit_code == 3 and refused.stderr.startswith("Error: no mail account named 'nope'")
    process = watch("--account", "sales")
    process.wait_log("account 'sales' folder 'INBOX': idle")
    dovecot.append(support, build_message(subject="not watched"))
    dovecot.append(sales, build_message(subject="watched"))
    wait_for("mail of the watched account", stored(db, 1), proc=process)
    assert process.stop() == 0
    assert "account 'support'" not in process.log()
    assert [e["subject"] for e in espomail("email", "list", "--json").json] == ["watched"]


def test_watch_as_a_user_is_refused_an_account_they_do_not_manage(espomail, group_account):
    group_account("support")
    assert espomail("user", "add", "bob", "--email", "bob@example.com").exit_code == 0
    refused = espomail("--as", "bob", "watch", "--account", "support")
    assert refused.exit_code == 4, refused
    assert refused.stderr.startswith("Error: ")


# -- the outbox ------------------------------------------------------------------------------------------


def test_a_failed_auto_reply_is_sent_once_by_watch_beside_cron_fetches(
    espomail, dovecot, group_account, watch, smtp, tmp_path, db
):
    body = tmp_path / "reply.txt"
    body.write_text("We opened case {case_number}.\n")
    _, user = group_account(
        "support", "--create-case", "--auto-reply", "--reply-subject", "ack", "--reply-body-file", body,
        "--smtp-host", smtp.host, "--smtp-port", smtp.port, "--smtp-security", "none",
    )  # fmt: skip
    port = smtp.port
    smtp.stop()
    dovecot.append(user, build_message(from_="jane@customer.example"))
    assert espomail("fetch").exit_code == 0
    failed = "SELECT COUNT(*) FROM emails WHERE is_system = 1 AND status = 'Failed'"
    assert count(db, failed) == 1
    smtp.port = port
    smtp.start()
    process = watch()  # retries the outbox every poll interval ...
    fetch = [sys.executable, "-m", "espomail", "fetch"]
    for _ in range(3):  # ... and so does each cron fetch, at the same time
        crons = [subprocess.Popen(fetch, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        for cron in crons:
            assert cron.wait(timeout=120) == 0
    sent = "SELECT COUNT(*) FROM emails WHERE is_system = 1 AND status = 'Sent'"
    wait_for("the auto-reply to be sent", lambda: count(db, sent) == 1, proc=process)
    time.sleep(1)  # two outbox periods more: nothing else goes out
    assert process.stop() == 0
    assert len(smtp.messages) == 1


# -- servers without IDLE, and Cyrus ---------------------------------------------------------------


class NoIdleDovecot(Dovecot):
    """A Dovecot that does not announce IDLE."""

    def _config(self, uid: int, gid: int) -> str:
        return super()._config(uid, gid) + "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS\n"


def test_a_server_without_idle_is_polled(espomail, watch, db):
    with NoIdleDovecot() as server:
        server.add_user("plain")
        added = espomail(
            "account", "add-group", "support", "--address", "support@example.com", "--host", server.host,
            "--port", server.port, "--security", "none", "--username", "plain",
            "--password-env", "TEST_IMAP_PASSWORD", "--fetch-since", "2000-01-01",
        )  # fmt: skip
        assert added.exit_code == 0, added
        process = watch()
        process.wait_log("the server has no IDLE: polling every 0.5 s")
        server.append("plain", build_message(subject="polled"))
        wait_for("the polled message", stored(db, 1), proc=process)
        assert status_of(espomail, "support")["watch"] == "poll"
        assert process.stop() == 0


def test_watch_on_cyrus(espomail, watch, db):
    from espomail.testing.cyrus import Cyrus

    class PromptCyrus(Cyrus):
        """Cyrus without its idled daemon looks for changes every imapidlepoll seconds (60 by default)."""

        def _imapd_conf(self) -> str:
            return super()._imapd_conf() + "imapidlepoll: 1\n"

    with PromptCyrus() as server:
        server.add_user("cyrususer")
        added = espomail(
            "account", "add-group", "support", "--address", "support@example.com", "--host", server.host,
            "--port", server.port, "--security", "none", "--username", "cyrususer",
            "--password-env", "TEST_IMAP_PASSWORD", "--fetch-since", "2000-01-01", "--create-case",
        )  # fmt: skip
        assert added.exit_code == 0, added
        process = watch()
        process.wait_log("folder 'INBOX': idle (IMAP IDLE")
        server.append("cyrususer", build_message(subject="on cyrus"))
        wait_for("the message on Cyrus", stored(db, 1, cased=True), proc=process)
        assert process.stop() == 0
    assert_each_once(db, 1)


# -- IDLE itself ----------------------------------------------------------------------------------------


def test_idle_is_renewed_and_still_reports_new_mail(dovecot, mailbox):
    from espomail.mail.idle import IdleFolder, supports_idle
    from espomail.mail.imap import ImapSession

    user = mailbox("idle")
    session = ImapSession(dovecot.host, dovecot.port, "none", user, "secret", 30)
    assert supports_idle(session)
    idle = IdleFolder(session, "INBOX", renew_s=3)
    assert idle.start() == 0
    renewed = False
    deadline = time.monotonic() + TIMEOUT
    while not renewed and time.monotonic() < deadline:
        renewed = idle.wait(1).renewed
    assert renewed
    dovecot.append(user, build_message())
    changes = idle.wait(0)
    while not changes.new_mail and time.monotonic() < deadline:
        changes = idle.wait(1)
    assert changes.new_mail and changes.exists == 1
    idle.close()  # DONE, then LOGOUT


def test_idle_wait_raises_when_interrupted_or_the_server_goes_away(mailbox):
    from espomail.errors import MailServerError
    from espomail.mail.idle import IdleFolder
    from espomail.mail.imap import ImapSession

    with Dovecot() as server:
        server.add_user("gone")
        session = ImapSession(server.host, server.port, "none", "gone", "secret", 30)
        idle = IdleFolder(session, "INBOX")
        idle.start()
        threading.Timer(0.2, server.stop).start()
        with pytest.raises(MailServerError):
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                idle.wait(1)
        idle.close()
        server.start()  # the same port again
        session = ImapSession(server.host, server.port, "none", "gone", "secret", 30)
        idle = IdleFolder(session, "INBOX")
        idle.start()
        threading.Timer(0.2, idle.interrupt).start()
        with pytest.raises(MailServerError, match="stopped"):
            idle.wait(TIMEOUT)
        idle.close()


# -- status and systemd ---------------------------------------------------------------------------------


def test_a_store_made_before_m004_gets_the_heartbeat_table(tmp_path, monkeypatch):
    from espomail.store import migrations
    from espomail.store.db import open_store

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
    open_store(tmp_path / "old.db").close()
    monkeypatch.undo()
    store = open_store(tmp_path / "old.db")
    try:
        assert "m004_watch" in store.column("SELECT name FROM _sqlite_migrations")
        assert store.value("SELECT COUNT(*) FROM watch_heartbeats") == 0
    finally:
        store.close()


def test_status_shows_no_watch_without_a_watcher(espomail, group_account):
    group_account("support")
    row = status_of(espomail, "support")
    assert row["watch"] is None and row["watched_since"] is None


def test_systemd_prints_a_watch_service_and_a_fetch_timer(espomail, isolated):
    result = espomail("systemd", "--json")
    assert result.exit_code == 0, result
    data = result.json
    assert set(data["units"]) == {"espomail-watch.service", "espomail-fetch.service", "espomail-fetch.timer"}
    service = data["units"]["espomail-watch.service"]
    [exec_start] = [line for line in service.splitlines() if line.startswith("ExecStart=")]
    program, *args = exec_start[len("ExecStart=") :].split()
    assert Path(program).is_absolute() and args[-1] == "watch"
    # the file, or on PostgreSQL the URL without its password (~/.pgpass or --db-password-cmd give it)
    assert args[args.index("--db") + 1] == shown(os.environ["ESPOMAIL_DB"])
    for line in ("Type=simple", "Restart=on-failure", "KillSignal=SIGTERM"):
        assert line in service.splitlines()
    assert "RestartSec=" in service and "TimeoutStopSec=" in service
    assert "OnCalendar=*-*-* *:*:00" in data["units"]["espomail-fetch.timer"]
    assert "Type=oneshot" in data["units"]["espomail-fetch.service"]
    user_units = espomail("systemd", "--user", "--json").json
    assert user_units["scope"] == "user" and user_units["directory"].endswith("/.config/systemd/user")
    assert "User=" not in user_units["units"]["espomail-watch.service"]
    assert any("systemctl --user enable --now espomail-watch.service" in c for c in user_units["install"])
    system_units = espomail("systemd", "--system", "--json").json
    assert "\nUser=" in system_units["units"]["espomail-watch.service"]
    assert system_units["directory"] == "/etc/systemd/system"
    text = espomail("systemd", "--user")
    assert text.exit_code == 0 and text.stdout.startswith("# espomail as a service")
    assert "[Service]" in text.stdout and "# ---- " in text.stdout
    one = espomail("systemd", "--unit", "espomail-fetch.timer").stdout
    assert one.startswith("[Unit]") and "[Timer]" in one and "[Service]" not in one


def test_systemd_quotes_for_systemd():
    from espomail.cli.systemd import systemd_quote

    assert systemd_quote("/usr/bin/espomail") == "/usr/bin/espomail"
    assert systemd_quote("/srv/my mail/espomail.db") == '"/srv/my mail/espomail.db"'
    assert systemd_quote("/srv/100%/$HOME") == '"/srv/100%%/$$HOME"'
