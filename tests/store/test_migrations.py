"""Migrating a blank database gives the expected schema; a second run changes nothing."""

import stat

from espomail.store import migrations
from espomail.store.db import open_store
from espomail.store.migrations import MIGRATIONS, apply_migrations, check_schema, schema_stamp

EXPECTED_TABLES = {
    "teams",
    "roles",
    "users",
    "user_teams",
    "user_roles",
    "records",
    "addresses",
    "followers",
    "folders",
    "folder_teams",
    "mail_accounts",
    "account_teams",
    "fetch_state",
    "fetch_runs",
    "cases",
    "case_teams",
    "emails",
    "attachments",
    "email_users",
    "email_teams",
    "email_deliveries",
    "email_events",
    "filters",
    "stream_notes",
    "notifications",
    "system_sends",
    "settings",
    "_sqlite_migrations",
}

# The lookups SPEC 10 says must be indexed: address, Message-ID, case number, mailbox lists.
EXPECTED_INDEXED = {
    ("addresses", "address_lower"),
    ("emails", "message_id"),
    ("cases", "number"),
    ("email_users", "user_id"),
    ("emails", "parent_type"),
    ("notifications", "user_id"),
    ("followers", "record_type"),
    ("email_deliveries", "email_id"),
}


def schema(store):
    return {
        row["name"]: row["sql"]
        for row in store.rows("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
    }


def test_blank_database_gets_the_expected_tables(tmp_path):
    store = open_store(tmp_path / "new.db")
    tables = set(store.column("SELECT name FROM sqlite_master WHERE type = 'table'"))
    assert EXPECTED_TABLES <= tables
    email_columns = {r["name"] for r in store.rows("PRAGMA table_info(emails)")}
    assert {
        "message_id",
        "subject",
        "from_address",
        "to_list",
        "cc_list",
        "bcc_list",
        "reply_to_list",
        "date_sent",
        "parent_type",
        "parent_id",
        "crm_account_id",
        "replied_id",
        "is_auto_reply",
        "is_bounce",
        "status",
        "state",
        "last_error",
        "assigned_user_id",
        "truncated",
    } <= email_columns


def test_lookups_are_indexed(tmp_path):
    store = open_store(tmp_path / "new.db")
    indexed = set()
    for table in {t for t, _ in EXPECTED_INDEXED}:
        for index in store.rows(f"PRAGMA index_list({table})"):
            first = store.rows(f"PRAGMA index_info({index['name']})")[0]["name"]
            indexed.add((table, first))
    assert EXPECTED_INDEXED <= indexed


def test_second_migration_run_changes_nothing(tmp_path):
    store = open_store(tmp_path / "new.db")
    before = schema(store)
    assert apply_migrations(store) == []
    assert schema(store) == before
    assert store.value("SELECT COUNT(*) FROM _sqlite_migrations") == len(MIGRATIONS)


def test_a_store_of_an_earlier_version_is_upgraded_by_alter_table(tmp_path, monkeypatch):
    """m005_oauth adds columns to mail_accounts; the upgraded schema passes the check, old rows get defaults."""
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:1])
    old = open_store(tmp_path / "old.db")
    old.insert(
        "mail_accounts",
        {
            "name": "support",
            "kind": "group",
            "address": "s@example.com",
            "address_lower": "s@example.com",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        },
    )
    old.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS)
    store = open_store(tmp_path / "old.db")
    row = store.row("SELECT auth, oauth_config FROM mail_accounts")
    assert (row["auth"], row["oauth_config"]) == ("password", None)
    fresh = open_store(tmp_path / "new.db")
    tables = {name: sql for name, sql in schema(store).items() if not name.startswith("sqlite_stat")}
    assert tables == schema(fresh)
    store.conn.execute("PRAGMA user_version = 0")
    check_schema(store)  # compares the altered CREATE TABLE text statement by statement


def test_store_is_wal_and_owner_only(tmp_path):
    path = tmp_path / "data" / "espomail.db"
    store = open_store(path)
    assert store.value("PRAGMA journal_mode") == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_unstamped_store_with_the_same_schema_is_stamped_once(tmp_path):
    store = open_store(tmp_path / "new.db")
    store.conn.execute("PRAGMA user_version = 0")
    check_schema(store)
    assert store.value("PRAGMA user_version") == schema_stamp()


def test_a_store_from_another_build_is_refused_with_a_clear_error(espomail, db_path):
    store = open_store(db_path)
    store.conn.execute("DROP INDEX emails_by_date")
    store.conn.execute("CREATE INDEX emails_by_date ON emails (id)")
    store.conn.execute("PRAGMA user_version = 0")
    store.close()
    result = espomail("user", "list")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: the store {db_path} was made by another build of espomail: its 'emails_by_date' "
        "differs from this version's schema; move it aside and run 'espomail init', or use the "
        "build that made it"
    ]


def test_the_written_postgres_checksums_are_the_computed_ones():
    """Opening a PostgreSQL store compares with POSTGRES_CHECKSUMS instead of translating every
    migration; a new or changed migration (or translation) must update that table."""
    computed = migrations.computed_checksums()
    assert migrations.POSTGRES_CHECKSUMS == computed, (
        f"update POSTGRES_CHECKSUMS in espomail/store/migrations.py to {computed!r}"
    )
