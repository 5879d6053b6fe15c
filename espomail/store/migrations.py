"""The schema: numbered, append-only migrations (the only code that creates or alters tables).

Never edit a migration once released; add ``m002_…`` instead. ``tests/store/test_migrations.py``
migrates a blank database, compares it to the expected schema and checks that a second run
changes nothing.

Raw message sources live in pack files beside the database (``store/blobs.py``); each
email row says where its source is (pack, offset, size) and its SHA-256; each delivery
where the copy it brought is. Text and html bodies are not
stored twice: they are parsed from the raw source when shown (about half a millisecond),
which keeps email rows small and halves what an import writes.

Conventions: ids are INTEGER PRIMARY KEY; times are TEXT in ISO 8601 UTC with ``Z``;
booleans are INTEGER 0/1; lists are JSON text. The statements are SQLite's; PostgreSQL runs
a mechanical rendering of each (``postgres_statement``: BIGINT identities, BIGINT, BYTEA,
byte-order text, NULLS FIRST indexes, deferrable foreign keys) plus ``POSTGRES_EXTRA`` (the
raw sources table), and records them in a table of its own, ``espomail_migrations``, with a
checksum of what it ran.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from espomail.errors import EspomailError
from espomail.store.db import Store
from espomail.timeutil import now_iso

M001_INITIAL = [
    # -- people -----------------------------------------------------------------------
    """CREATE TABLE teams (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        positions TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL)""",
    """CREATE TABLE roles (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        email_create TEXT NOT NULL DEFAULT 'no',
        email_read TEXT NOT NULL DEFAULT 'no',
        email_edit TEXT NOT NULL DEFAULT 'no',
        email_delete TEXT NOT NULL DEFAULT 'no',
        personal_accounts TEXT NOT NULL DEFAULT 'no',
        group_send TEXT NOT NULL DEFAULT 'no',
        created_at TEXT NOT NULL)""",
    """CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0,
        is_active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE user_teams (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
        position TEXT,
        PRIMARY KEY (user_id, team_id))""",
    "CREATE INDEX user_teams_by_team ON user_teams (team_id, user_id)",
    """CREATE TABLE user_roles (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role_id INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, role_id))""",
    # -- CRM records and the email addresses of users and records ------------------------
    """CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL CHECK (type IN ('account', 'contact', 'lead', 'opportunity')),
        name TEXT NOT NULL,
        account_id INTEGER REFERENCES records(id) ON DELETE SET NULL,
        created_at TEXT NOT NULL)""",
    "CREATE INDEX records_by_type ON records (type, id)",
    "CREATE INDEX records_by_account ON records (account_id)",
    """CREATE TABLE addresses (
        id INTEGER PRIMARY KEY,
        owner_type TEXT NOT NULL,
        owner_id INTEGER NOT NULL,
        address TEXT NOT NULL,
        address_lower TEXT NOT NULL,
        is_primary INTEGER NOT NULL DEFAULT 0,
        UNIQUE (owner_id, owner_type, address_lower))""",
    "CREATE INDEX addresses_by_address ON addresses (address_lower, owner_type, owner_id)",
    """CREATE TABLE followers (
        record_type TEXT NOT NULL,
        record_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        PRIMARY KEY (record_type, record_id, user_id))""",
    "CREATE INDEX followers_by_user ON followers (user_id)",
    # -- folders ------------------------------------------------------------------------
    """CREATE TABLE folders (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('personal', 'group')),
        name TEXT NOT NULL,
        owner_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
        skip_notifications INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX folders_personal_name ON folders (owner_id, name) WHERE kind = 'personal'",
    "CREATE UNIQUE INDEX folders_group_name ON folders (name) WHERE kind = 'group'",
    """CREATE TABLE folder_teams (
        folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
        PRIMARY KEY (folder_id, team_id))""",
    # -- mail accounts and their fetch state ---------------------------------------------
    """CREATE TABLE mail_accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('group', 'personal')),
        owner_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        address_lower TEXT NOT NULL,
        is_active INTEGER NOT NULL DEFAULT 1,
        host TEXT,
        port INTEGER,
        security TEXT NOT NULL DEFAULT 'ssl',
        insecure INTEGER NOT NULL DEFAULT 0,
        username TEXT,
        secret_ref TEXT,
        folders TEXT NOT NULL DEFAULT '["INBOX"]',
        fetch_since TEXT,
        mark_seen INTEGER NOT NULL DEFAULT 0,
        add_team_users INTEGER NOT NULL DEFAULT 1,
        group_folder_id INTEGER REFERENCES folders(id) ON DELETE SET NULL,
        personal_folder_id INTEGER REFERENCES folders(id) ON DELETE SET NULL,
        folder_map TEXT NOT NULL DEFAULT '{}',
        create_case INTEGER NOT NULL DEFAULT 0,
        distribution TEXT NOT NULL DEFAULT 'none',
        target_team_id INTEGER REFERENCES teams(id) ON DELETE SET NULL,
        target_position TEXT,
        assign_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        auto_reply INTEGER NOT NULL DEFAULT 0,
        reply_subject TEXT,
        reply_body TEXT,
        reply_from_address TEXT,
        reply_from_name TEXT,
        reply_to_address TEXT,
        smtp_host TEXT,
        smtp_port INTEGER,
        smtp_security TEXT,
        smtp_username TEXT,
        smtp_secret_ref TEXT,
        smtp_shared INTEGER NOT NULL DEFAULT 0,
        store_sent TEXT,
        lease_holder TEXT,
        lease_expires_at TEXT,
        last_success_at TEXT,
        last_error TEXT,
        last_error_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX mail_accounts_by_address ON mail_accounts (address_lower)",
    "CREATE INDEX mail_accounts_by_owner ON mail_accounts (owner_id)",
    """CREATE TABLE account_teams (
        account_id INTEGER NOT NULL REFERENCES mail_accounts(id) ON DELETE CASCADE,
        team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
        PRIMARY KEY (account_id, team_id))""",
    """CREATE TABLE fetch_state (
        account_id INTEGER NOT NULL REFERENCES mail_accounts(id) ON DELETE CASCADE,
        folder TEXT NOT NULL,
        uidvalidity INTEGER,
        last_uid INTEGER NOT NULL DEFAULT 0,
        last_date TEXT,
        by_date INTEGER NOT NULL DEFAULT 0,
        uidnext INTEGER,
        messages INTEGER,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (account_id, folder))""",
    """CREATE TABLE fetch_runs (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES mail_accounts(id) ON DELETE CASCADE,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        new INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0,
        filtered INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        cases_created INTEGER NOT NULL DEFAULT 0,
        auto_replies INTEGER NOT NULL DEFAULT 0,
        backlog INTEGER NOT NULL DEFAULT 0,
        error TEXT)""",
    "CREATE INDEX fetch_runs_by_account ON fetch_runs (account_id, id)",
    # -- cases --------------------------------------------------------------------------
    """CREATE TABLE cases (
        id INTEGER PRIMARY KEY,
        number INTEGER NOT NULL UNIQUE,
        name TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'New'
            CHECK (status IN ('New', 'Assigned', 'Pending', 'Closed', 'Rejected', 'Duplicate')),
        priority TEXT NOT NULL DEFAULT 'Normal'
            CHECK (priority IN ('Low', 'Normal', 'High', 'Urgent')),
        type TEXT,
        description TEXT,
        assigned_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        account_id INTEGER REFERENCES records(id) ON DELETE SET NULL,
        contact_id INTEGER REFERENCES records(id) ON DELETE SET NULL,
        lead_id INTEGER REFERENCES records(id) ON DELETE SET NULL,
        inbound_account_id INTEGER REFERENCES mail_accounts(id) ON DELETE SET NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX cases_by_status ON cases (status, number)",
    "CREATE INDEX cases_by_assignee ON cases (assigned_user_id, status)",
    "CREATE INDEX cases_by_assignee_number ON cases (assigned_user_id, number)",
    """CREATE TABLE case_teams (
        case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
        team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
        PRIMARY KEY (case_id, team_id))""",
    # -- emails -------------------------------------------------------------------------
    """CREATE TABLE emails (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        has_message_id INTEGER NOT NULL DEFAULT 1,
        subject TEXT NOT NULL DEFAULT '',
        from_address TEXT,
        from_name TEXT,
        to_list TEXT NOT NULL DEFAULT '[]',
        cc_list TEXT NOT NULL DEFAULT '[]',
        bcc_list TEXT NOT NULL DEFAULT '[]',
        reply_to_list TEXT NOT NULL DEFAULT '[]',
        address_names TEXT NOT NULL DEFAULT '{}',
        date_sent TEXT,
        in_reply_to TEXT,
        references_list TEXT NOT NULL DEFAULT '[]',
        raw_sha256 TEXT,
        raw_pack TEXT,
        raw_offset INTEGER,
        raw_size INTEGER NOT NULL DEFAULT 0,
        truncated INTEGER NOT NULL DEFAULT 0,
        parent_type TEXT,
        parent_id INTEGER,
        crm_account_id INTEGER REFERENCES records(id) ON DELETE SET NULL,
        replied_id INTEGER REFERENCES emails(id) ON DELETE SET NULL,
        is_auto_reply INTEGER NOT NULL DEFAULT 0,
        is_auto_submitted INTEGER NOT NULL DEFAULT 0,
        is_bounce INTEGER NOT NULL DEFAULT 0,
        is_system INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'Archived'
            CHECK (status IN ('Archived', 'Sent', 'Failed', 'Draft', 'Sending')),
        assigned_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        group_folder_id INTEGER REFERENCES folders(id) ON DELETE SET NULL,
        created_by_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        sent_account_id INTEGER REFERENCES mail_accounts(id) ON DELETE SET NULL,
        send_attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'processed', 'failed', 'filtered')),
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX emails_by_parent ON emails (parent_type, parent_id, date_sent)",
    "CREATE INDEX emails_by_crm_account ON emails (crm_account_id, date_sent)",
    "CREATE INDEX emails_by_replied ON emails (replied_id)",
    "CREATE INDEX emails_by_date ON emails (date_sent)",
    "CREATE INDEX emails_unfinished ON emails (state) WHERE state <> 'processed'",
    "CREATE INDEX emails_unsent ON emails (status) WHERE status IN ('Failed', 'Sending')",
    """CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        email_id INTEGER REFERENCES emails(id) ON DELETE CASCADE,
        case_id INTEGER REFERENCES cases(id) ON DELETE CASCADE,
        source_email_id INTEGER REFERENCES emails(id) ON DELETE SET NULL,
        part TEXT,
        filename TEXT,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        is_inline INTEGER NOT NULL DEFAULT 0,
        content_id TEXT,
        data BLOB)""",
    "CREATE INDEX attachments_by_email ON attachments (email_id)",
    "CREATE INDEX attachments_by_case ON attachments (case_id)",
    """CREATE TABLE email_users (
        email_id INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        is_read INTEGER NOT NULL DEFAULT 0,
        in_trash INTEGER NOT NULL DEFAULT 0,
        in_archive INTEGER NOT NULL DEFAULT 0,
        folder_id INTEGER REFERENCES folders(id) ON DELETE SET NULL,
        is_sender INTEGER NOT NULL DEFAULT 0,
        sort_date TEXT,
        reason TEXT,
        PRIMARY KEY (email_id, user_id))""",
    """CREATE INDEX email_users_mailbox
        ON email_users (user_id, in_trash, in_archive, folder_id, sort_date)""",
    """CREATE TABLE email_teams (
        email_id INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
        team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
        PRIMARY KEY (email_id, team_id))""",
    "CREATE INDEX email_teams_by_team ON email_teams (team_id, email_id)",
    """CREATE TABLE email_deliveries (
        id INTEGER PRIMARY KEY,
        email_id INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
        account_id INTEGER REFERENCES mail_accounts(id) ON DELETE SET NULL,
        folder TEXT,
        uid INTEGER,
        raw_pack TEXT,
        raw_offset INTEGER,
        raw_size INTEGER,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'done', 'failed', 'filtered', 'dropped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL,
        processed_at TEXT)""",
    "CREATE INDEX email_deliveries_by_email ON email_deliveries (email_id)",
    "CREATE INDEX email_deliveries_by_account ON email_deliveries (account_id, email_id)",
    """CREATE INDEX email_deliveries_unfinished ON email_deliveries (state, id)
        WHERE state IN ('pending', 'failed')""",
    """CREATE TABLE email_events (
        id INTEGER PRIMARY KEY,
        email_id INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
        delivery_id INTEGER,
        step TEXT NOT NULL,
        decision TEXT NOT NULL,
        detail TEXT,
        created_at TEXT NOT NULL)""",
    "CREATE INDEX email_events_by_email ON email_events (email_id, id)",
    # -- filters, notifications, stream ----------------------------------------------------
    """CREATE TABLE filters (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('global', 'account', 'user')),
        account_id INTEGER REFERENCES mail_accounts(id) ON DELETE CASCADE,
        user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
        from_pattern TEXT,
        to_pattern TEXT,
        subject_pattern TEXT,
        body_contains TEXT NOT NULL DEFAULT '[]',
        body_contains_all TEXT NOT NULL DEFAULT '[]',
        action TEXT NOT NULL DEFAULT 'skip'
            CHECK (action IN ('skip', 'move-to-folder', 'move-to-group-folder', 'none')),
        folder_id INTEGER REFERENCES folders(id) ON DELETE CASCADE,
        mark_read INTEGER NOT NULL DEFAULT 0,
        skip_notification INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL)""",
    "CREATE INDEX filters_by_scope ON filters (scope, account_id, user_id)",
    """CREATE TABLE stream_notes (
        id INTEGER PRIMARY KEY,
        record_type TEXT NOT NULL,
        record_id INTEGER NOT NULL,
        type TEXT NOT NULL,
        email_id INTEGER REFERENCES emails(id) ON DELETE CASCADE,
        body TEXT,
        is_initial INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL)""",
    "CREATE INDEX stream_notes_by_record ON stream_notes (record_type, record_id, id)",
    "CREATE INDEX stream_notes_by_email ON stream_notes (email_id)",
    """CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        type TEXT NOT NULL,
        email_id INTEGER REFERENCES emails(id) ON DELETE CASCADE,
        note_id INTEGER REFERENCES stream_notes(id) ON DELETE CASCADE,
        record_type TEXT,
        record_id INTEGER,
        is_read INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL)""",
    # One index serves "all" and "--unread" (unread ones are the recent ones, met first).
    "CREATE INDEX notifications_by_user ON notifications (user_id, id)",
    "CREATE INDEX notifications_by_email ON notifications (email_id)",
    # -- outbound -------------------------------------------------------------------------
    """CREATE TABLE system_sends (
        id INTEGER PRIMARY KEY,
        address_lower TEXT NOT NULL,
        email_id INTEGER REFERENCES emails(id) ON DELETE SET NULL,
        sent_at TEXT NOT NULL)""",
    "CREATE INDEX system_sends_by_address ON system_sends (address_lower, sent_at)",
    """CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT)""",
]


# Outgoing mail (SPEC 11, docs/field-safety.md): one outbox row per email owed a send (an
# auto-reply, an 'email send', a resend) until it is Sent. A sender claims a row in a
# transaction before sending (claim_holder HOST:PID:TOKEN, claimed_at; a claim older than the
# stale timeout, or of a dead process on this host, may be taken over), so overlapping runs
# never send one email twice; the attempt is counted on the email when claimed.
# next_attempt_at is the backoff (1, 2, 4 ... minutes); NULL once given up (gave_up_at):
# after send_retries tries or a permanent refusal the email stays Failed until 'email resend'.
# Deliveries carry the server's arrival time (INTERNALDATE) for the side-effects age rule,
# and whether they may auto-reply or create a case ('email import' without the flags: no).
M002_OUTBOX = [
    """CREATE TABLE outbox (
        email_id INTEGER PRIMARY KEY REFERENCES emails(id) ON DELETE CASCADE,
        next_attempt_at TEXT,
        claim_holder TEXT,
        claimed_at TEXT,
        gave_up_at TEXT,
        created_at TEXT NOT NULL)""",
    "CREATE INDEX outbox_due ON outbox (next_attempt_at)",
    # System mail left unsent by an earlier version keeps its retries (3, the default); a
    # user's failed 'email send' was never retried before: it waits for 'email resend'.
    """INSERT INTO outbox (email_id, next_attempt_at, gave_up_at, created_at)
        SELECT id,
            CASE WHEN is_system = 1 AND send_attempts < 3 THEN updated_at END,
            CASE WHEN is_system = 1 AND send_attempts < 3 THEN NULL ELSE updated_at END,
            created_at
        FROM emails WHERE status IN ('Sending', 'Failed')""",
    "ALTER TABLE email_deliveries ADD COLUMN arrived_at TEXT",
    "ALTER TABLE email_deliveries ADD COLUMN allow_auto_reply INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE email_deliveries ADD COLUMN allow_case INTEGER NOT NULL DEFAULT 1",
    # The run log counts auto-replies not sent apart from those sent.
    "ALTER TABLE fetch_runs ADD COLUMN auto_replies_failed INTEGER NOT NULL DEFAULT 0",
]


# Health of fetching (SPEC 11): a row per failing account (consecutive failures, when the
# next automatic attempt is due, the error last printed); see store/health.py.
M003_HEALTH = [
    """CREATE TABLE account_health (
        account_id INTEGER PRIMARY KEY REFERENCES mail_accounts(id) ON DELETE CASCADE,
        failures INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        error_shown TEXT,
        updated_at TEXT NOT NULL)""",
]


# espomail watch: one heartbeat row per watched account folder and watch process (holder:
# host:pid). A row whose expires_at has passed belongs to a watcher that died.
M004_WATCH = [
    """CREATE TABLE watch_heartbeats (
        account_id INTEGER NOT NULL REFERENCES mail_accounts(id) ON DELETE CASCADE,
        folder TEXT NOT NULL,
        holder TEXT NOT NULL,
        mode TEXT NOT NULL,
        since TEXT,
        seen_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (account_id, folder, holder))""",
    "CREATE INDEX watch_heartbeats_by_holder ON watch_heartbeats (holder)",
]


# OAuth2 accounts (SPEC 12): how the account logs in, and its OAuthConfig as JSON (provider,
# client id, endpoints, where the client secret is read and where the tokens are kept; never a
# token or a client secret).
M005_OAUTH = [
    "ALTER TABLE mail_accounts ADD COLUMN auth TEXT NOT NULL DEFAULT 'password'",
    "ALTER TABLE mail_accounts ADD COLUMN oauth_config TEXT",
]


# Users' email notifications (issue 17): a user who opts in is mailed, through the system
# sender, when a case or an email is assigned to them (policy/assignment_notices.py).
M006_USER_NOTICES = [
    "ALTER TABLE users ADD COLUMN email_notifications INTEGER NOT NULL DEFAULT 0",
]


# PostgreSQL only (POSTGRES_EXTRA): the ledger of raw sources uploaded ahead of their batch.
M007_RAW_UPLOADS: list[str] = []


# The numbered migrations, in order, each a list of SQL statements. Append; never edit a
# released one.
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("m001_initial", M001_INITIAL),
    ("m002_outbox", M002_OUTBOX),
    ("m003_health", M003_HEALTH),
    ("m004_watch", M004_WATCH),
    ("m005_oauth", M005_OAUTH),
    ("m006_user_notices", M006_USER_NOTICES),
    ("m007_raw_uploads", M007_RAW_UPLOADS),
]
SET_NAME = "espomail"


# -- PostgreSQL: the same migrations, rendered mechanically ----------------------------------

# What PostgreSQL needs besides the translated statements of a migration (SQLite keeps raw
# sources in packs beside the file; PostgreSQL keeps them in the database).
POSTGRES_EXTRA: dict[str, list[str]] = {
    "m001_initial": [
        """CREATE TABLE raw_sources (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        sha256 TEXT COLLATE "C" NOT NULL,
        size BIGINT NOT NULL,
        data BYTEA NOT NULL)""",
        # Mail is stored as it came, uncompressed: compressing it costs the server more CPU
        # than a fetch spends on everything else (pglz); attachments do not compress anyway.
        "ALTER TABLE raw_sources ALTER COLUMN data SET STORAGE EXTERNAL",
    ],
    # A fetch of several batches uploads each batch's sources before the transaction that
    # stores its rows (store.postgres.RawUploader) and notes them here in the upload's
    # transaction; the storing transaction deletes the note. A note left behind is a batch
    # whose rows never committed (a host killed or cut off): the next fetch that takes the
    # account deletes its sources, which no row names.
    "m007_raw_uploads": [
        """CREATE TABLE raw_uploads (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        account_id BIGINT NOT NULL,
        source_ids BIGINT[] NOT NULL,
        uploaded_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
        "CREATE INDEX raw_uploads_by_account ON raw_uploads (account_id)",
    ],
}
POSTGRES_TABLE = "espomail_migrations"
_CREATE_POSTGRES_TABLE = f"""CREATE TABLE IF NOT EXISTS {POSTGRES_TABLE} (
    migration_set TEXT NOT NULL,
    name TEXT NOT NULL,
    checksum BIGINT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (migration_set, name))"""
MIGRATION_LOCK = 0x6573706F_6D6967  # pg_advisory_xact_lock key: one migrating session at a time


def postgres_statement(statement: str, nullable: Mapping[str, AbstractSet[str]] | None = None) -> str:
    """The PostgreSQL rendering of one SQLite DDL statement.

    Tables: ``INTEGER PRIMARY KEY`` -> a BIGINT identity (BY DEFAULT, so ids can be kept by
    ``store copy`` and cases take their number as id); every other INTEGER -> BIGINT (IMAP
    UIDs, sizes, offsets); BLOB -> BYTEA; TEXT compares byte by byte (``COLLATE "C"``, as
    SQLite's BINARY: the same order whatever the database's locale); foreign keys are
    DEFERRABLE (still checked at once, unless ``store copy`` defers them). Indexes: the
    columns that may be NULL (``nullable``: table -> columns) sort NULLS FIRST, SQLite's
    order, so that a query's ``ORDER BY x DESC NULLS LAST`` reads such an index backwards
    on both engines (the lists say NULLS FIRST/LAST where a column may be NULL).
    """
    if re.match(r"\s*CREATE\s+TABLE\b", statement):
        text = re.sub(
            r"\bid INTEGER PRIMARY KEY\b", "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", statement
        )
        return _postgres_columns(text)
    if re.match(r"\s*ALTER\s+TABLE\s+\w+\s+ADD\s+COLUMN\b", statement):
        return _postgres_columns(statement)
    if re.match(r"\s*(INSERT|UPDATE|DELETE)\b", statement):
        return statement  # data moved by a migration: portable SQL, the same on both engines
    if re.match(r"\s*CREATE\s+(UNIQUE\s+)?INDEX\b", statement):

        def nulls_first(match: re.Match) -> str:
            maybe_null = (nullable or {}).get(match.group(1))
            columns = [c.strip() for c in match.group(2).split(",")]
            shown = [f"{c} NULLS FIRST" if maybe_null is None or c in maybe_null else c for c in columns]
            return f"ON {match.group(1)} ({', '.join(shown)})"

        return re.sub(r"ON\s+(\w+)\s*\(([^)]*)\)", nulls_first, statement, count=1)
    raise ValueError(f"no PostgreSQL rendering for: {statement[:60]}")


def _postgres_columns(text: str) -> str:
    """Column types as PostgreSQL spells them (a key other than ``id`` stays a plain BIGINT)."""
    text = re.sub(r"\bINTEGER\b", "BIGINT", text)
    text = re.sub(r"\bBLOB\b", "BYTEA", text)
    text = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', text)
    return re.sub(
        r"(REFERENCES\s+\w+\s*\(\w+\)(?:\s+ON\s+DELETE\s+(?:CASCADE|SET\s+NULL|RESTRICT|NO\s+ACTION))?)",
        r"\1 DEFERRABLE INITIALLY IMMEDIATE",
        text,
    )


def nullable_columns(statement: str) -> tuple[str, set[str]] | None:
    """(table, the columns that may be NULL) of a CREATE TABLE statement."""
    added = re.match(r"\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(\w+)(.*)$", statement, re.DOTALL)
    if added:
        return added.group(1), set() if "NOT NULL" in added.group(3) else {added.group(2)}
    match = re.match(r"\s*CREATE\s+TABLE\s+(\w+)\s*\((.*)\)\s*$", statement, re.DOTALL)
    if not match:
        return None
    body = match.group(2)
    keys = set()
    for key in re.findall(r"PRIMARY KEY\s*\(([^)]*)\)", body):
        keys |= {c.strip() for c in key.split(",")}
    found = set()
    for line in re.split(r",\s*\n", body):
        words = line.split()
        if not words or words[0] in ("PRIMARY", "UNIQUE", "CHECK", "FOREIGN"):
            continue
        if "NOT NULL" not in line and "PRIMARY KEY" not in line and words[0] not in keys:
            found.add(words[0])
    return match.group(1), found


@functools.cache
def _nullable() -> dict[str, frozenset[str]]:
    """Table -> the columns that may be NULL, over every migration."""
    nullable: dict[str, set[str]] = {}
    for _, earlier in MIGRATIONS:
        for statement in earlier:
            table = nullable_columns(statement)
            if table:
                nullable.setdefault(table[0], set()).update(table[1])
    return {table: frozenset(columns) for table, columns in nullable.items()}


def postgres_statements(name: str, statements: list[str]) -> list[str]:
    nullable = _nullable()
    return [postgres_statement(s, nullable) for s in statements] + POSTGRES_EXTRA.get(name, [])


def _checksum(name: str, statements: list[str]) -> int:
    return zlib.crc32("\n".join([name, *postgres_statements(name, statements)]).encode()) & 0x7FFFFFFF


# What ``_checksum`` gives for each migration on PostgreSQL, written out: opening a store (every
# command) compares the applied checksums with these and translates nothing (8 ms a command).
# tests/store/test_migrations.py recomputes them: a new migration, or a change to one or to
# the translation, fails that test until this table says it.
POSTGRES_CHECKSUMS: dict[str, int] = {
    "m001_initial": 908015555,
    "m002_outbox": 1166379063,
    "m003_health": 1706486467,
    "m004_watch": 1801456083,
    "m005_oauth": 1121115656,
    "m006_user_notices": 442265176,
    "m007_raw_uploads": 1442849780,
}


def computed_checksums() -> dict[str, int]:
    """Migration -> the checksum of its translated statements (what POSTGRES_CHECKSUMS must hold)."""
    return {name: _checksum(name, statements) for name, statements in MIGRATIONS}


def tables_with_id() -> list[str]:
    """Tables whose key is an ``id`` column (the engine returns it after an insert)."""
    found = ["raw_sources"]
    for _, statements in MIGRATIONS:
        for statement in statements:
            match = re.match(r"\s*CREATE\s+TABLE\s+(\w+)\s*\(\s*id INTEGER PRIMARY KEY", statement)
            if match:
                found.append(match.group(1))
    return found


def table_names() -> list[str]:
    """Every table the migrations create, in creation order (parents before children)."""
    names = []
    for _, statements in MIGRATIONS:
        for statement in statements:
            match = re.match(r"\s*CREATE\s+TABLE\s+(\w+)", statement)
            if match:
                names.append(match.group(1))
    return names


def _postgres_applied(store: Store) -> dict[str, int]:
    """Applied migration -> the checksum of what was run (empty for a bare database)."""
    if store.value("SELECT to_regclass(?)", [POSTGRES_TABLE]) is None:
        return {}
    rows = store.rows(f"SELECT name, checksum FROM {POSTGRES_TABLE} WHERE migration_set = ?", [SET_NAME])
    return {row["name"]: row["checksum"] for row in rows}


def _apply_postgres(store: Store) -> list[str]:
    import psycopg

    from espomail.store.postgres import StoreUnavailable

    applied_now = []
    try:
        with store.atomic():
            store.execute("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK])  # another host may be migrating
            store.execute(_CREATE_POSTGRES_TABLE)
            applied = _postgres_applied(store)
            for name, statements in MIGRATIONS:
                if name in applied:
                    continue
                for statement in postgres_statements(name, statements):
                    store.execute(statement)
                store.execute(
                    f"INSERT INTO {POSTGRES_TABLE} (migration_set, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                    [SET_NAME, name, _checksum(name, statements), now_iso()],
                )
                applied_now.append(name)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StoreUnavailable(
            f"cannot create espomail's tables in {store.describe()}: {str(exc).splitlines()[0]}; "
            "make the user the owner of the database (ALTER DATABASE ... OWNER TO ...) and run 'espomail init'"
        ) from None
    return applied_now


def _check_postgres(store: Store, applied: dict[str, int]) -> None:
    for name, checksum in applied.items():
        # a migration newer than the table (the test says so) is translated to compare
        known = POSTGRES_CHECKSUMS.get(name) or computed_checksums().get(name)
        if known != checksum:
            raise EspomailError(
                f"the store {store.describe()} was made by another build of espomail: its migration "
                f"'{name}' differs from this version's schema; use the build that made it, or copy the "
                "data with that build's 'espomail store copy' into a new database"
            )


# -- both engines ---------------------------------------------------------------------------


def pending(store: Store) -> list[str]:
    """The migrations not applied yet (a cheap check: every command runs it)."""
    if store.engine == "postgresql":
        applied = _postgres_applied(store)
        return [name for name, _ in MIGRATIONS if name not in applied]
    if not store.value("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlite_migrations'"):
        return [name for name, _ in MIGRATIONS]
    applied = set(store.column("SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [SET_NAME]))
    return [name for name, _ in MIGRATIONS if name not in applied]


def apply_migrations(store: Store) -> list[str]:
    """Apply pending migrations, check the schema; return the names applied."""
    if store.engine == "postgresql":
        applied = _postgres_applied(store)
        names = _apply_postgres(store) if any(name not in applied for name, _ in MIGRATIONS) else []
        _check_postgres(store, _postgres_applied(store) if names else applied)
        return names
    names = pending(store)
    if names:
        import sqlite_utils
        from sqlite_utils.migrations import Migrations

        migrations = Migrations(SET_NAME)
        for name, statements in MIGRATIONS:
            migrations(name=name)(_runner(statements))
        migrations.apply(sqlite_utils.Database(store.conn))
    check_schema(store)
    return names


def _runner(statements: list[str]):  # noqa: ANN202 - a sqlite-utils migration function
    def run(db) -> None:  # noqa: ANN001 - sqlite_utils.Database
        for statement in statements:
            db.execute(statement)

    return run


def schema_stamp() -> int:
    """A fingerprint of every migration's SQL, kept in ``PRAGMA user_version``."""
    text = "\n".join(f"{name}\n" + "\n".join(statements) for name, statements in MIGRATIONS)
    return zlib.crc32(text.encode()) & 0x7FFFFFFF or 1


def check_schema(store: Store) -> None:
    """Refuse a store whose tables differ from what the migrations create.

    The stamp in ``user_version`` makes this one pragma read. A store without the stamp
    (made before it existed) is compared statement by statement once, then stamped. A
    mismatch means the store was made by a development build whose migration changed.
    """
    stamp = schema_stamp()
    if store.value("PRAGMA user_version") == stamp:
        return
    stored = {row["name"]: row["sql"] for row in store.rows("SELECT name, sql FROM sqlite_master")}
    for name, sql in expected_schema().items():
        if stored.get(name) != sql:
            raise EspomailError(
                f"the store {store.path} was made by another build of espomail: its "
                f"'{name}' differs from this version's schema; move it aside and run "
                "'espomail init', or use the build that made it"
            )
    store.conn.execute(f"PRAGMA user_version = {stamp}")


def expected_schema() -> dict[str, str]:
    """Table and index name -> the SQL that SQLite keeps for it after every migration: the
    CREATE statement, with each later ``ALTER TABLE t ADD COLUMN def`` appended the way
    SQLite records it (``, def`` before the closing parenthesis)."""
    expected: dict[str, str] = {}
    for _, statements in MIGRATIONS:
        for statement in statements:
            name = _created_name(statement)
            if name:
                expected[name] = statement
                continue
            added = re.match(r"\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(.+?)\s*$", statement, re.S | re.I)
            if added and added.group(1) in expected:
                created = expected[added.group(1)]
                end = created.rindex(")")
                expected[added.group(1)] = f"{created[:end]}, {added.group(2)}{created[end:]}"
    return expected


def _created_name(statement: str) -> str | None:
    match = re.match(r"\s*CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+(\w+)", statement)
    return match.group(1) if match else None
