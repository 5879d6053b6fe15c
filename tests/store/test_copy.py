"""``espomail store copy`` (SPEC 13): SQLite -> PostgreSQL -> SQLite, every table with its
ids, raw sources byte for byte, counts printed and compared; refusals change nothing."""

from __future__ import annotations

import itertools
import os

import pytest

from espomail.store.db import open_store
from espomail.store.migrations import table_names
from espomail.testing.messages import build_message

_numbers = itertools.count(1)
LEASE_COLUMNS = ("lease_holder", "lease_expires_at")


@pytest.fixture
def pg_database(postgres):
    """A bare PostgreSQL database (no tables): its URL."""
    made = []

    def make() -> str:
        name = f"espomail_copy_{os.getpid()}_{next(_numbers)}"
        postgres.drop_database(name)
        made.append(name)
        return postgres.create_database(name)

    yield make
    for name in made:
        postgres.drop_database(name)


LATER_TABLES = ("outbox", "account_health", "watch_heartbeats")
OAUTH_CONFIG = '{"provider": "custom", "client_id": "espomail-test", "token_url": "https://auth.example/token"}'


def later_rows(db) -> None:
    """Rows of the tables and columns of migrations m002-m005, as the services leave them: an
    email waiting in the outbox, a failing account's backoff, a watcher's heartbeat, an OAuth
    account's settings (and a delivery's arrival time)."""
    db.execute(
        """INSERT INTO outbox (email_id, next_attempt_at, claim_holder, claimed_at, created_at)
           SELECT MAX(id), '2030-01-01T00:00:00Z', 'host:1:x', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'
           FROM emails WHERE id NOT IN (SELECT email_id FROM outbox)"""
    )
    db.execute(
        """INSERT INTO account_health (account_id, failures, next_attempt_at, error_shown, updated_at)
           VALUES (1, 2, '2030-01-01T00:00:00Z', 'connection refused', '2026-01-01T00:00:00Z')"""
    )
    db.execute(
        """INSERT INTO watch_heartbeats (account_id, folder, holder, mode, since, seen_at, expires_at)
           VALUES (1, 'INBOX', 'host:1', 'idle', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z',
           '2026-01-01T00:01:00Z')"""
    )
    db.execute("UPDATE mail_accounts SET auth = 'oauth2', oauth_config = ? WHERE id = 1", [OAUTH_CONFIG])
    db.execute("UPDATE email_deliveries SET arrived_at = '2026-01-01T00:00:00Z', allow_case = 0")


@pytest.fixture
def world(espomail, group_account, dovecot, smtp, tmp_path, db):
    """A store with rows in (nearly) every table: people, records, folders, filters, an
    account with cases and auto-replies, fetched mail with attachments, per-user state, the
    outbox, health, watch heartbeats and OAuth settings."""

    def run(*args):
        result = espomail(*args)
        assert result.exit_code == 0, result
        return result

    run("team", "add", "support", "--position", "agent")
    run("role", "add", "agents", "--email-read", "team", "--email-create", "yes")
    run("user", "add", "ann", "--email", "ann@example.com", "--team", "support:agent", "--role", "agents")
    run("user", "add", "ben", "--email", "ben@example.com", "--team", "support:agent", "--role", "agents")
    run("record", "add", "account", "--name", "Acme", "--email", "info@acme.example")
    run("record", "add", "contact", "--name", "Carla", "--email", "carla@acme.example", "--account", "Acme")
    run("record", "follow", "account", "Acme", "--user", "ann")
    run("folder", "add", "Invoices", "--user", "ann")
    run("folder", "add", "Escalations", "--group", "--team", "support")
    run("filter", "add", "spam", "--global", "--subject", "*viagra*")
    run(
        "filter",
        "add",
        "bills",
        "--user",
        "ann",
        "--subject",
        "*invoice*",
        "--action",
        "move-to-folder",
        *("--folder", "Invoices"),
    )
    reply = tmp_path / "reply.txt"
    reply.write_text("We opened case {case_number}.\n")
    _, box = group_account(
        "support",
        "--team",
        "support",
        "--create-case",
        "--target-team",
        "support",
        "--distribution",
        "round-robin",
        "--auto-reply",
        "--reply-subject",
        "ack",
        "--reply-body-file",
        reply,
        "--smtp-host",
        smtp.host,
        "--smtp-port",
        smtp.port,
        "--smtp-security",
        "none",
        address="support@example.com",
    )
    run("outbound", "set", "--address", "support@example.com", "--name", "Support")
    messages = [
        build_message(
            from_="carla@acme.example", subject=f"printer {i}", attachments=[("log.txt", "text/plain", b"x" * i)]
        )
        for i in range(1, 6)
    ]
    messages.append(build_message(from_="carla@acme.example", subject="cheap viagra"))
    messages.append(build_message(from_="carla@acme.example", subject="invoice 7", to="ann@example.com"))
    dovecot.append(box, messages)
    run("fetch")
    emails = run("email", "list", "--json").json
    run("--as", "ann", "email", "read", emails[0]["id"])
    run("--as", "ben", "email", "trash", emails[1]["id"])
    later_rows(db)
    return emails


def dump(url_or_path) -> dict[str, list[dict]]:
    """Every row of espomail's tables, raw locations and leases left out (they differ by design)."""
    store = open_store(url_or_path, migrate=False)
    try:
        rows = {}
        for table in table_names():
            found = [dict(r) for r in store.rows(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for row in found:
                for column in ("raw_pack", "raw_offset", *LEASE_COLUMNS):
                    row.pop(column, None)
            rows[table] = found
        return rows
    finally:
        store.close()


def raw_sources(url_or_path) -> dict[int, bytes]:
    store = open_store(url_or_path, migrate=False)
    try:
        from espomail.store import emails as emails_q

        return {i: emails_q.raw_of(store, i) for i in store.column("SELECT id FROM emails ORDER BY id")}
    finally:
        store.close()


def test_sqlite_to_postgresql_and_back_keeps_every_row_and_byte(espomail, world, db, db_path, pg_database, tmp_path):
    # A row pointing forwards in its own table (a reply to a later email) is copied too.
    db.execute("UPDATE emails SET replied_id = (SELECT MAX(id) FROM emails) WHERE id = (SELECT MIN(id) FROM emails)")
    before = dump(db_path)
    assert sum(1 for rows in before.values() if rows) >= 27, [t for t, rows in before.items() if not rows]
    assert all(before[table] for table in LATER_TABLES)
    assert before["mail_accounts"][0]["oauth_config"] == OAUTH_CONFIG
    sources = raw_sources(db_path)
    assert len(sources) >= 7 and all(sources.values())

    url = pg_database()
    result = espomail("store", "copy", "--to", url, "--json")
    assert result.exit_code == 0, result
    report = result.json
    assert report["ok"] is True and "password" not in result.stdout
    counts = {t["table"]: (t["source"], t["target"]) for t in report["tables"]}
    assert set(counts) == {*table_names(), "raw sources"}
    assert all(source == target for source, target in counts.values())
    assert counts["emails"][0] == len(sources) and counts["raw sources"][0] >= len(sources)
    assert dump(url) == before
    assert raw_sources(url) == sources
    assert not_vacuumed(url) == []  # index-only scans (the counts of lists) work at once

    back = tmp_path / "back" / "espomail.db"
    text = espomail("--db", url, "store", "copy", "--to", back)
    assert text.exit_code == 0, text
    assert "every table's count matches" in text.stderr and "emails" in text.stdout
    assert dump(back) == before
    assert raw_sources(back) == sources

    # The copies are stores like any other: ids go on after the copied ones.
    for target in (url, str(back)):
        added = espomail("--db", target, "team", "add", f"new-{len(target)}", "--json")
        assert added.exit_code == 0, added
        assert added.json["id"] == max(t["id"] for t in before["teams"]) + 1


def test_a_target_holding_data_or_other_tables_is_refused_and_left_alone(espomail, world, db_path, pg_database):
    url = pg_database()
    assert espomail("--db", url, "team", "add", "elsewhere").exit_code == 0
    before = dump(url)
    refused = espomail("store", "copy", "--to", url)
    assert refused.exit_code == 2
    [line] = refused.stderr.splitlines()
    assert line.startswith("Error: the target store postgresql://") and "holds data (teams)" in line
    assert dump(url) == before

    other = pg_database()
    import psycopg

    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    refused = espomail("store", "copy", "--to", other)
    assert refused.exit_code == 2 and "holds other tables (invoices)" in refused.stderr
    with psycopg.connect(other) as conn:
        assert [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")] == [
            "invoices"
        ]

    itself = espomail("store", "copy", "--to", db_path)
    assert itself.exit_code == 2 and "is the store itself" in itself.stderr
    denied = espomail("--as", "ann", "store", "copy", "--to", pg_database())
    assert denied.exit_code == 4


def test_a_count_that_differs_is_an_error(espomail, world, pg_database, monkeypatch):
    from espomail.store import copy as copy_q

    counted = copy_q._count

    def miscounted(store, table):  # the target seems to have one case more
        return counted(store, table) + (table == "cases" and store.engine == "postgresql")

    monkeypatch.setattr(copy_q, "_count", miscounted)
    result = espomail("store", "copy", "--to", pg_database(), "--json")
    assert result.exit_code == 1
    assert "differs from the source in cases" in result.stderr
    assert [t["table"] for t in result.json["tables"] if not t["ok"]] == ["cases"]


def not_vacuumed(url: str) -> list[str]:
    """espomail's PostgreSQL tables that no VACUUM has visited (raw_sources: analyzed only)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NULL").fetchall()
    return sorted(name for (name,) in rows if name in table_names())
