"""A fast generator of a big, realistic espomail store (for ``bench.bigstore``).

``create_base(db, users)`` makes the part every store shares through the real CLI
(``espomail init``, teams, one role, users u01..uNN with addresses, a personal folder
per user, three group accounts, a few filters): the same for an empty and a big store.
``fill(db, emails=N, ...)`` then adds, with direct SQL (``executemany`` in one
transaction per chunk of 50,000 emails, ``synchronous=OFF``, no rollback journal and a
large page cache during generation only; the store is back in WAL mode afterwards):

- CRM records: ``contacts`` contacts in ``contacts // 5`` accounts (``records``), with
  addresses (``addresses`` owner_type contact/account); the first 18 accounts are the
  companies of ``bench.mailgen`` and about 100 of each one's addresses are contacts, so
  that imported mailgen messages link to them as real mail would; some users follow
  accounts (``followers``);
- ``cases`` cases (numbers 1..N, mixed statuses, assignees among the support team,
  ``case_teams``), opened by the first email of a support thread;
- N emails over the last 3 years in date order (id order), 45% of them replies
  (``in_reply_to``/``references_list``/``replied_id`` pointing at an earlier email of the
  thread, which shares its parent); parents are cases, accounts (a contact's account),
  contacts (private persons without account) or none (unknown senders); ``crm_account_id``;
  every email ``state='processed'``, ``status='Archived'``;
- who it reached: ``email_users`` (the group account's team for support, else the
  account owner or the staff sender; sort_date = date_sent; a few read, trashed, archived,
  in a personal folder), ``email_teams``, ``email_deliveries`` (state done, by the group
  accounts), ``email_events`` (one pipeline trail per delivery, as the import writes);
- ``stream_notes`` on the parent of every parented email and ``notifications``
  (email-received for every reached user but the sender, stream-note for followers);
- raw sources: a realistic RFC 5322 message of 2-5 KB (3.4 KB on average) per email
  (trace headers, DKIM, 7bit/quoted-printable/base64 text, 3% with a small attachment)
  appended to ONE pack file in ``<db stem>-raw/``; ``emails.raw_pack``, ``raw_offset``,
  ``raw_size`` and ``raw_sha256`` (exact offsets: ``espomail email show ID --raw`` gives
  the bytes back).

The same seed gives the same mail (dates are relative to the day of generation). Memory
stays bounded: threads are chosen among the last 3,000 emails and rows are written per
chunk. About 2,100-2,600 emails/s on a 2-core VM: 1,000,000 in 8 minutes, 6.8 GB.

    .venv/bin/python -m bench.storegen --db /tmp/big/espomail.db --emails 100000
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import datetime as dt
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from bench import mailgen

CHUNK = 50_000
HISTORY = 3_000
REPLY_SHARE = 0.45
ATTACHMENT_SHARE = 0.03
PASSWORD_ENV = "BIGSTORE_IMAP_PASSWORD"
TEAM_NAMES = ["support", "sales", "billing", "operations", "management"]
# (name, address, team, options): support adds its team's users and opens cases;
# sales and billing reach only the addressed user (the account owner).
GROUP_ACCOUNTS = [
    ("support", "support@example.com", "support",
     ["--create-case", "--distribution", "round-robin", "--target-team", "support"]),
    ("sales", "sales@example.com", "sales", ["--no-add-team-users"]),
    ("billing", "billing@example.com", "billing", ["--no-add-team-users"]),
]  # fmt: skip
ACCOUNT_SHARE = [0.55, 0.25, 0.20]  # of new threads, per group account

CASE_STATUSES = ["Closed", "Assigned", "Pending", "New", "Rejected", "Duplicate"]
CASE_WEIGHTS = [60, 15, 10, 8, 4, 3]

_json = json.JSONEncoder(ensure_ascii=False).encode


def _json_list(items: list[str]) -> str:
    """``_json(items)`` for strings without quotes or backslashes (addresses, Message-IDs), faster."""
    return '["' + '", "'.join(items) + '"]' if items else "[]"


def _json_names(names: dict[str, str]) -> str:
    return "{" + ", ".join(f'"{k}": "{v}"' for k, v in names.items()) + "}" if names else "{}"


# -- names ----------------------------------------------------------------------------

# (display, ascii) first and last names per language.
FIRST = {
    "en": ["James", "Emily", "Oliver", "Sophie", "Daniel", "Grace", "Thomas", "Chloe", "Henry", "Lucy", "Jack", "Mia"],
    "de": [("Jürgen", "juergen"), ("Käthe", "kaethe"), "Stefan", "Anna", ("Björn", "bjoern"), "Katrin", "Lukas",
           "Lena", "Matthias", ("Jörg", "joerg"), "Sabine", "Felix"],
    "fr": [("François", "francois"), ("Hélène", "helene"), ("Jérôme", "jerome"), ("Amélie", "amelie"), "Camille",
           "Louis", ("Zoé", "zoe"), "Julien", ("Léa", "lea"), "Nicolas", "Manon", "Antoine"],
    "ru": [("Анна", "anna"), ("Дмитрий", "dmitry"), ("Ольга", "olga"), ("Сергей", "sergey"), ("Елена", "elena"),
           ("Иван", "ivan"), ("Мария", "maria"), ("Алексей", "alexey"), ("Наталья", "natalya"), ("Павел", "pavel")],
    "zh": [("伟", "wei"), ("娜", "na"), ("敏", "min"), ("洋", "yang"), ("静", "jing"), ("磊", "lei"), ("芳", "fang"),
           ("军", "jun"), ("丽", "li"), ("强", "qiang")],
    "ja": [("花子", "hanako"), ("一郎", "ichiro"), ("美咲", "misaki"), ("健", "ken"), ("由美", "yumi"),
           ("翔", "sho"), ("陽菜", "hina"), ("大輔", "daisuke"), ("愛", "ai"), ("拓也", "takuya")],
}  # fmt: skip
LAST = {
    "en": ["Smith", "Clarke", ("O'Brien", "obrien"), "Johnson", "Lee", "Walker", "Wright", "Hughes", "Evans", "Taylor",
           "Brown", "Wilson"],
    "de": [("Müller", "mueller"), ("Schröder", "schroeder"), ("Weiß", "weiss"), ("Hölzer", "hoelzer"),
           ("Groß", "gross"), "Schmidt", "Fischer", "Wagner", "Becker", "Hoffmann", "Schulz", "Koch"],
    "fr": ["Dubois", ("Lefèvre", "lefevre"), "Garcia", "Rousseau", "Mercier", "Martin", "Bernard", "Moreau",
           "Laurent", "Girard", "Bonnet", "Fontaine"],
    "ru": [("Смирнова", "smirnova"), ("Иванов", "ivanov"), ("Кузнецова", "kuznetsova"), ("Попов", "popov"),
           ("Волкова", "volkova"), ("Соколов", "sokolov"), ("Лебедева", "lebedeva"), ("Козлов", "kozlov")],
    "zh": [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
           ("黄", "huang"), ("赵", "zhao")],
    "ja": [("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"), ("渡辺", "watanabe"),
           ("伊藤", "ito"), ("山本", "yamamoto"), ("中村", "nakamura")],
}  # fmt: skip
COMPANY_A = ["Nord", "Alpen", "Blue", "Green", "Silver", "Atlas", "Delta", "Nova", "Apex", "Pioneer", "Summit",
             "Harbor", "Lumen", "Vertex", "Orion", "Falcon", "Cedar", "Maple", "Granite", "River", "Rhein", "Baltic",
             "Sun", "Iron", "Crystal", "Eagle", "Oak", "Polar", "Coral", "Metro", "Prime", "Stellar", "Urban",
             "Vista", "Zenith", "Aurora", "Boreal", "Cobalt", "Emerald", "Horizon"]  # fmt: skip
COMPANY_B = ["Tech", "Logistik", "Systems", "Consulting", "Trade", "Bau", "Medical", "Foods", "Energy", "Software",
             "Motors", "Design", "Finance", "Print", "Textil", "Pharma", "Media", "Solutions", "Works", "Labs",
             "Robotics", "Optics", "Chemie", "Freight", "Analytics"]  # fmt: skip
FORMS = {
    "en": ["Ltd", "Inc.", "LLC", "plc"],
    "de": ["GmbH", "AG", "GmbH & Co. KG", "KG"],
    "fr": ["SA", "SARL", "SAS"],
    "ru": ["ООО", "АО"],
    "zh": ["有限公司", "股份有限公司"],
    "ja": ["株式会社", "合同会社"],
}
TLDS = {"en": ["com", "co.uk", "net", "io"], "de": ["de", "at", "ch"], "fr": ["fr", "be", "ch"], "ru": ["ru"],
        "zh": ["cn", "com.cn"], "ja": ["jp", "co.jp"]}  # fmt: skip
FREEMAIL = ["gmail.com", "outlook.com", "gmx.de", "web.de", "yahoo.fr", "mail.ru", "qq.com", "yahoo.co.jp"]
LANGS = mailgen.LANGUAGES
LANG_WEIGHTS = mailgen.LANGUAGE_WEIGHTS
MAILGEN_LOCALS = ["info", "accounts", "buchhaltung", "orders", "it", "office"]
MAILGEN_KNOWN_USERS = 100  # user1..user100 of each mailgen domain are contacts (mailgen uses 1..400)
CSV_ROWS = "\n".join(f"{i};ART-{i * 37 % 1000:04d};{i * 13 % 97 + 1};{i * 7.5:.2f}" for i in range(1, 40))


def _pair(item: str | tuple[str, str]) -> tuple[str, str]:
    return item if isinstance(item, tuple) else (item, item.lower())


# -- the base: the same users, teams, accounts and filters in every store ---------------


def cli_env(db: Path) -> dict[str, str]:
    """The environment the CLI runs in: this store, no config file, nothing inherited."""
    home = db.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPOMAIL_")}
    # Start as an installed espomail does (pip compiles it): with a bytecode cache, kept in
    # bench/out/pycache so nothing is written into the source tree, even where the
    # environment sets PYTHONDONTWRITEBYTECODE.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(__file__).resolve().parent / "out" / "pycache")
    env.update(
        ESPOMAIL_DB=str(db),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        HOME=str(home),
        **{PASSWORD_ENV: "not-used"},
    )
    return env


def espomail_binary() -> str:
    local = Path(sys.executable).parent / "espomail"
    return str(local) if local.exists() else "espomail"


def team_of(index: int, teams: int) -> int:
    """The team (0-based) of user ``index`` (0-based): four users per team."""
    return (index // 4) % teams


def create_base(db: Path, users: int = 20) -> float:
    """init, teams, a role, users, folders, group accounts and filters via the real CLI."""
    started = time.perf_counter()
    db.parent.mkdir(parents=True, exist_ok=True)
    teams = max(3, -(-users // 4))
    names = [TEAM_NAMES[i] if i < len(TEAM_NAMES) else f"team{i + 1}" for i in range(teams)]
    calls = [["init"]]
    calls += [["team", "add", name, "--position", "agent", "--position", "lead"] for name in names]
    calls.append(
        ["role", "add", "staff", "--email-create", "yes", "--email-read", "team", "--email-edit", "own",
         "--email-delete", "own", "--personal-accounts", "yes", "--group-send", "team"]
    )  # fmt: skip
    for i in range(users):
        position = "lead" if i % 4 == 0 else "agent"
        calls.append(
            ["user", "add", f"u{i + 1:02d}", "--name", f"User {i + 1:02d}", "--email", f"u{i + 1:02d}@example.com",
             "--team", f"{names[team_of(i, teams)]}:{position}", "--role", "staff"]
        )  # fmt: skip
        calls.append(["folder", "add", "Invoices", "--user", f"u{i + 1:02d}"])
    for name, address, team, options in GROUP_ACCOUNTS:
        calls.append(
            ["account", "add-group", name, "--address", address, "--host", "imap.example.invalid",
             "--username", name, "--password-env", PASSWORD_ENV, "--team", team, "--fetch-since", "2023-01-01",
             *options]
        )  # fmt: skip
    calls += [
        ["filter", "add", "spam", "--global", "--from", "*@spam.example"],
        ["filter", "add", "alerts", "--account", "support", "--subject", "*[monitoring alert]*"],
        ["filter", "add", "invoices", "--user", "u07", "--body-contains", "invoice", "--body-contains", "Rechnung",
         "--action", "move-to-folder", "--folder", "Invoices"],
    ]  # fmt: skip
    env = cli_env(db)
    binary = espomail_binary()
    for argv in calls:
        done = subprocess.run([binary, *argv], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"espomail {' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
    return time.perf_counter() - started


# -- the generator ------------------------------------------------------------------------


class Generator:
    def __init__(self, conn, db: Path, emails: int, contacts: int, cases: int, seed: int, now: dt.datetime) -> None:  # noqa: ANN001
        self.conn, self.db, self.n = conn, db, emails
        self.contacts_wanted, self.cases_wanted = contacts, cases
        self.rng = random.Random(seed)
        self.now = now
        self.stats: collections.Counter = collections.Counter()
        self._load_people()

    # -- what the base holds ---------------------------------------------------------------
    def _load_people(self) -> None:
        c = self.conn
        self.team_ids = {name: tid for tid, name in c.execute("SELECT id, name FROM teams")}
        self.users = [uid for (uid,) in c.execute("SELECT id FROM users ORDER BY id")]
        self.username = dict(c.execute("SELECT id, username FROM users"))
        self.user_address = dict(
            c.execute("SELECT owner_id, address FROM addresses WHERE owner_type = 'user' AND is_primary = 1")
        )
        self.folder_of = dict(
            c.execute("SELECT owner_id, id FROM folders WHERE kind = 'personal' AND name = 'Invoices'")
        )
        self.team_users: dict[int, list[int]] = collections.defaultdict(list)
        for uid, tid in c.execute("SELECT user_id, team_id FROM user_teams ORDER BY user_id"):
            self.team_users[tid].append(uid)
        self.team_of_user = {uid: tid for tid, uids in self.team_users.items() for uid in uids}
        self.accounts = []  # (id, name, address, team_id, add_team_users)
        for name, address, team, _ in GROUP_ACCOUNTS:
            row = c.execute("SELECT id, add_team_users FROM mail_accounts WHERE name = ?", [name]).fetchone()
            if row is None:
                raise RuntimeError(f"no group account {name}: run create_base first")
            self.accounts.append((row[0], name, address, self.team_ids[team], bool(row[1])))
        self.team_name = {tid: name for name, tid in self.team_ids.items()}

    # -- CRM records -------------------------------------------------------------------------
    def records(self) -> None:
        rng, c = self.rng, self.conn
        n_accounts = max(len(mailgen.LANGUAGES) * 3, self.contacts_wanted // 5)
        stamp = _iso(self.now - dt.timedelta(days=3 * 365 + 30))
        rows, addresses = [], []
        self.account_lang: list[str] = []
        self.account_domain: list[str] = []
        self.account_name: list[str] = []
        mailgen_domains = [(lang, d) for lang in LANGS for d in mailgen.DOMAINS[lang]]
        for i in range(n_accounts):
            if i < len(mailgen_domains):
                lang, domain = mailgen_domains[i]
                stem = domain.split(".")[0].replace("-", " ").title()
                name = f"{stem} {rng.choice(FORMS[lang])}"
            else:
                lang = rng.choices(LANGS, LANG_WEIGHTS)[0]
                j = i - len(mailgen_domains)
                a, b = COMPANY_A[j % len(COMPANY_A)], COMPANY_B[(j // len(COMPANY_A)) % len(COMPANY_B)]
                serial = j // (len(COMPANY_A) * len(COMPANY_B))
                suffix = f" {serial + 1}" if serial else ""
                name = f"{a}{b.lower()}{suffix} {rng.choice(FORMS[lang])}"
                domain = f"{a}{b}{serial or ''}.{rng.choice(TLDS[lang])}".lower()
            self.account_lang.append(lang)
            self.account_domain.append(domain)
            self.account_name.append(name)
            rows.append((i + 1, "account", name, None, stamp))
            addresses.append(("account", i + 1, f"info@{domain}", f"info@{domain}", 1))
        # Contacts: mailgen's known senders first, then people of the accounts (skewed:
        # big accounts have many contacts), 5% private persons without an account.
        self.contact_id: list[int] = []
        self.contact_account: list[int | None] = []  # 0-based account index or None
        self.contact_addr: list[str] = []
        self.contact_name: list[str] = []
        self.account_contacts: list[list[int]] = [[] for _ in range(n_accounts)]
        used: set[str] = set()
        next_id = n_accounts + 1

        def add_contact(name: str, address: str, account: int | None) -> None:
            nonlocal next_id
            address = address.lower()
            if address in used:
                return
            used.add(address)
            index = len(self.contact_id)
            self.contact_id.append(next_id)
            self.contact_account.append(account)
            self.contact_addr.append(address)
            self.contact_name.append(name)
            if account is not None:
                self.account_contacts[account].append(index)
            rows.append((next_id, "contact", name, account + 1 if account is not None else None, stamp))
            addresses.append(("contact", next_id, address, address, 1))
            if rng.random() < 0.1:
                alias = f"{address.split('@')[0]}.alt@{address.split('@')[1]}"
                addresses.append(("contact", next_id, alias, alias, 0))
            next_id += 1

        for i, (lang, domain) in enumerate(mailgen_domains):
            if len(self.contact_id) >= self.contacts_wanted:
                break
            people = mailgen.PEOPLE[lang]
            for local in MAILGEN_LOCALS + [f"user{k}" for k in range(1, MAILGEN_KNOWN_USERS + 1)]:
                add_contact(rng.choice(people), f"{local}@{domain}", i)
        while len(self.contact_id) < self.contacts_wanted:
            if rng.random() < 0.05:
                lang = rng.choices(LANGS, LANG_WEIGHTS)[0]
                first, last = _pair(rng.choice(FIRST[lang])), _pair(rng.choice(LAST[lang]))
                address = f"{first[1]}.{last[1]}{rng.randint(1, 999)}@{rng.choice(FREEMAIL)}"
                add_contact(_person_name(lang, first[0], last[0]), address, None)
                continue
            account = _skewed(rng, n_accounts, 1.6)
            lang = self.account_lang[account]
            first, last = _pair(rng.choice(FIRST[lang])), _pair(rng.choice(LAST[lang]))
            local = rng.choice([f"{first[1]}.{last[1]}", f"{first[1][0]}.{last[1]}", f"{last[1]}", f"{first[1]}"])
            address = f"{local}@{self.account_domain[account]}"
            if address in used:
                address = f"{local}{rng.randint(2, 99)}@{self.account_domain[account]}"
            add_contact(_person_name(lang, first[0], last[0]), address, account)
        c.executemany("INSERT INTO records (id, type, name, account_id, created_at) VALUES (?, ?, ?, ?, ?)", rows)
        c.executemany(
            """INSERT INTO addresses (owner_type, owner_id, address, address_lower, is_primary)
               VALUES (?, ?, ?, ?, ?)""",
            addresses,
        )
        self.n_accounts = n_accounts
        self.stats["accounts"] = n_accounts
        self.stats["contacts"] = len(self.contact_id)
        self.stats["addresses"] = len(addresses)
        # Followers: every user follows ~15 accounts (mostly big ones).
        follows = set()
        for uid in self.users:
            for _ in range(15):
                follows.add(("account", _skewed(rng, n_accounts, 2.0) + 1, uid))
        c.executemany(
            "INSERT INTO followers (record_type, record_id, user_id, created_at) VALUES (?, ?, ?, ?)",
            [(*f, stamp) for f in sorted(follows)],
        )
        self.followers: dict[int, list[int]] = collections.defaultdict(list)
        for _kind, record_id, uid in sorted(follows):
            self.followers[record_id].append(uid)
        self.stats["followers"] = len(follows)
        # Accounts with contacts, for picking a sender; each account's owner in sales and billing.
        self.with_contacts = [a for a in range(n_accounts) if self.account_contacts[a]]

    # -- emails --------------------------------------------------------------------------------
    def emails(self, pack_dir: Path, progress: bool = True) -> None:
        rng = self.rng
        pack_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.pack_name = f"pack-{stamp}-storegen-{os.getpid()}-1.dat"
        fd = os.open(pack_dir / self.pack_name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        pack = os.fdopen(fd, "wb")
        self.offset = 0
        start = self.now - dt.timedelta(days=3 * 365)
        span = (self.now - dt.timedelta(days=1) - start).total_seconds()
        self.start, self.step = start, span / max(self.n, 1)
        # Expected support threads that are inbound from a known contact: cases open there.
        expected_support = self.n * (1 - REPLY_SHARE) * ACCOUNT_SHARE[0] * 0.8 * 0.87
        self.case_p = min(1.0, self.cases_wanted / max(expected_support, 1) * 1.05)
        self.next_case = 1
        self.pending_cases: list[tuple] = []
        self.pending_case_teams: list[tuple] = []
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self.uids = collections.Counter()
        self.per_account: collections.Counter = collections.Counter()  # CRM account id -> emails
        self.notification_id = 0
        self.note_id = 0
        self.delivery_id = 0
        self.rr = 0
        support_team = self.accounts[0][3]
        self.case_agents = self.team_users[support_team]
        started = time.perf_counter()
        for first in range(0, self.n, CHUNK):
            last = min(self.n, first + CHUNK)
            self._chunk(first, last, pack)
            if progress:
                elapsed = time.perf_counter() - started
                rate = last / elapsed
                print(
                    f"    {last:>10,} emails  {elapsed:6.0f} s  {rate:7.0f}/s  ETA {(self.n - last) / rate:5.0f} s",
                    flush=True,
                )
        pack.flush()
        os.fsync(pack.fileno())
        pack.close()
        # Cases nobody wrote about (opened by phone or in the CRM), up to the number asked for.
        rows, teams = [], []
        while self.next_case <= self.cases_wanted:
            when = self.now - dt.timedelta(seconds=rng.random() * 3 * 365 * 86400)
            rows.append(self._case_row(self.next_case, rng.choice(SUBJECTS_FLAT), None, when))
            teams.append((self.next_case, support_team))
            self.next_case += 1
        self._insert_cases(rows, teams)
        self.stats["cases"] = self.next_case - 1
        self.stats["pack_bytes"] = self.offset

    def _case_row(self, number: int, subject: str, contact: int | None, when: dt.datetime) -> tuple:
        rng = self.rng
        age = (self.now - when).days
        status = rng.choices(CASE_STATUSES, CASE_WEIGHTS)[0]
        if age < 14 and status in ("Closed", "Rejected", "Duplicate"):
            status = rng.choice(["New", "Assigned", "Pending"])
        if age > 120 and status in ("New", "Assigned", "Pending") and rng.random() < 0.8:
            status = "Closed"
        assignee = None
        if status != "New":
            assignee = self.case_agents[self.rr % len(self.case_agents)]
            self.rr += 1
        account_id = contact_id = None
        if contact is not None:
            contact_id = self.contact_id[contact]
            acct = self.contact_account[contact]
            account_id = acct + 1 if acct is not None else None
        priority = rng.choices(["Low", "Normal", "High", "Urgent"], [10, 70, 15, 5])[0]
        description = " ".join(rng.choice(mailgen.SENTENCES["en"]) for _ in range(rng.randint(3, 12)))
        created = _iso(when)
        updated = _iso(min(self.now, when + dt.timedelta(hours=rng.random() * 24 * 20)))
        return (number, number, subject[:255], status, priority, None, description, assignee, account_id, contact_id,
                None, self.accounts[0][0], created, updated)  # fmt: skip

    def _insert_cases(self, rows: list[tuple], teams: list[tuple]) -> None:
        self.conn.executemany(
            """INSERT INTO cases (id, number, name, status, priority, type, description, assigned_user_id,
               account_id, contact_id, lead_id, inbound_account_id, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            rows,
        )
        self.conn.executemany("INSERT INTO case_teams (case_id, team_id) VALUES (?, ?)", teams)

    def _chunk(self, first: int, last: int, pack) -> None:  # noqa: ANN001
        rng = self.rng
        out = {name: [] for name in TABLES}
        raws: list[bytes] = []
        for index in range(first, last):
            email_id = index + 1
            date = self.start + dt.timedelta(seconds=int((index + rng.random()) * self.step))
            parent_thread = None
            if self.history and rng.random() < REPLY_SHARE:
                window = len(self.history)
                # Mostly recent mail; sometimes an old thread comes back.
                pick = window - 1 - int(rng.random() ** 2 * window)
                parent_thread = self.history[pick]
            m = self._message(email_id, date, parent_thread)
            raw = m["raw"]
            sha = hashlib.sha256(raw).hexdigest()
            raws.append(raw)
            self._rows(out, email_id, m, sha, len(raw), self.offset)
            self.offset += len(raw)
        pack.write(b"".join(raws))
        c = self.conn
        c.execute("BEGIN")
        self._insert_cases(self.pending_cases, self.pending_case_teams)
        self.stats["case_teams"] += len(self.pending_case_teams)
        self.pending_cases, self.pending_case_teams = [], []
        for table, sql in TABLES.items():
            if out[table]:
                c.executemany(sql, out[table])
        c.execute("COMMIT")
        for table in TABLES:
            self.stats[table] += len(out[table])

    def _message(self, email_id: int, date: dt.datetime, thread) -> dict:  # noqa: ANN001
        """Who writes to whom about what, and the raw source."""
        rng = self.rng
        if thread is None:
            account = rng.choices(range(len(self.accounts)), ACCOUNT_SHARE)[0]
            roll = rng.random()
            contact = None
            if roll < 0.87:
                acct = self.with_contacts[_skewed(rng, len(self.with_contacts), 2.5)]
                contact = rng.choice(self.account_contacts[acct])
            elif roll < 0.92:  # a private person (a contact without account)
                contact = rng.randrange(len(self.contact_id))
            if contact is not None:
                lang = self.account_lang[self.contact_account[contact]] if self.contact_account[contact] is not None \
                    else rng.choices(LANGS, LANG_WEIGHTS)[0]  # fmt: skip
                customer = (self.contact_name[contact], self.contact_addr[contact])
            else:  # unknown sender
                lang = rng.choices(LANGS, LANG_WEIGHTS)[0]
                first, last = _pair(rng.choice(FIRST[lang])), _pair(rng.choice(LAST[lang]))
                customer = (_person_name(lang, first[0], last[0]),
                            f"{first[1]}.{last[1]}{rng.randint(1, 9999)}@{rng.choice(FREEMAIL)}")  # fmt: skip
            inbound = rng.random() < 0.8
            acct_id, acct_name, acct_address, team_id, _ = self.accounts[account]
            staff = rng.choice(self.team_users[team_id])
            subject = rng.choice(mailgen.SUBJECTS[lang]).format(n=rng.randint(10000, 99999))
            case = None
            parent = None
            crm = None
            if contact is not None:
                acct_index = self.contact_account[contact]
                if acct_index is not None:
                    parent, crm = ("account", acct_index + 1), acct_index + 1
                else:
                    parent = ("contact", self.contact_id[contact])
            if (
                account == 0
                and inbound
                and contact is not None
                and self.next_case <= self.cases_wanted
                and rng.random() < self.case_p
            ):
                case = self.next_case
                self.next_case += 1
                row = self._case_row(case, subject, contact, date)
                self.pending_cases.append(row)
                self.pending_case_teams.append((case, team_id))
                if rng.random() < 0.1:
                    self.pending_case_teams.append((case, self.team_ids["billing"]))
                parent = ("case", case)
                staff = row[7] or staff
            thread = {
                "root": email_id, "account": account, "customer": customer, "lang": lang, "staff": staff,
                "subject": subject, "parent": parent, "crm": crm, "case": case, "contact": contact,
                "mid": None, "refs": [], "id": None, "inbound": not inbound, "text": "", "date": date, "from_": None,
            }  # fmt: skip
            reply_to = None
        else:
            reply_to = thread
            subject = thread["subject"]
            if not subject.startswith(("Re:", "AW:", "RE:")):
                subject = ("AW: " if thread["lang"] == "de" and rng.random() < 0.5 else "Re: ") + subject
            inbound = not thread["inbound"]  # answers go the other way, mostly
            if rng.random() < 0.15:
                inbound = thread["inbound"]  # a follow-up by the same side
        account = thread["account"]
        acct_id, acct_name, acct_address, team_id, add_team = self.accounts[account]
        lang, customer, staff = thread["lang"], thread["customer"], thread["staff"]
        staff_addr = (f"User {self.username[staff][1:]}", self.user_address[staff])
        if inbound:
            sender, recipient = customer, (acct_name.title() + " Team", acct_address)
        else:
            sender, recipient = staff_addr, customer
        cc = []
        if (
            rng.random() < 0.12
            and thread["contact"] is not None
            and self.contact_account[thread["contact"]] is not None
        ):
            peers = self.account_contacts[self.contact_account[thread["contact"]]]
            other = rng.choice(peers)
            if self.contact_addr[other] != customer[1]:
                cc.append((self.contact_name[other], self.contact_addr[other]))
        colleague = None
        if rng.random() < 0.08:
            colleague = rng.choice(self.users)
            if colleague != staff:
                cc.append((f"User {self.username[colleague][1:]}", self.user_address[colleague]))
            else:
                colleague = None
        message_id = _message_id(rng, email_id, sender[1])
        refs = []
        if reply_to is not None:
            refs = [*reply_to["refs"][-9:], reply_to["mid"]]
        text = _body(rng, lang, recipient[0], sender[0], reply_to)
        attachment = rng.random() < ATTACHMENT_SHARE
        raw, attached = _render(
            rng, date, sender, recipient, cc, subject, lang, message_id, refs, text, attachment, acct_address
        )
        new = dict(thread)
        new.update(mid=message_id, refs=refs, id=email_id, inbound=inbound, text=text[:400], date=date, from_=sender)
        self.history.append(new)
        return {
            "raw": raw, "thread": thread, "reply_to": reply_to, "inbound": inbound, "sender": sender,
            "recipient": recipient, "cc": cc, "subject": subject, "message_id": message_id, "refs": refs,
            "date": date, "text": text, "attachment": attachment, "staff": staff, "colleague": colleague,
            "account": account, "attached": attached,
        }  # fmt: skip

    def _rows(self, out: dict, email_id: int, m: dict, sha: str, size: int, offset: int) -> None:
        rng = self.rng
        thread, reply_to = m["thread"], m["reply_to"]
        acct_id, acct_name, acct_address, team_id, add_team = self.accounts[m["account"]]
        date = m["date"]
        date_sent = _iso(date)
        fetched = _iso(date + dt.timedelta(seconds=30 + rng.random() * 240))
        parent, crm, case = thread["parent"], thread["crm"], thread["case"]
        sender, recipient, cc = m["sender"], m["recipient"], m["cc"]
        names = {a.lower(): n for n, a in [sender, recipient, *cc] if n}
        staff = m["staff"]
        assigned = staff if case is not None else None
        out["emails"].append(
            (email_id, m["message_id"], m["subject"], sender[1], sender[0], _json_list([recipient[1]]),
             _json_list([a for _, a in cc]), _json_names(names), date_sent, reply_to["mid"] if reply_to else None,
             _json_list(m["refs"]), sha, self.pack_name, offset, size, parent[0] if parent else None,
             parent[1] if parent else None, crm,
             reply_to["id"] if reply_to else None, assigned, fetched, fetched)
        )  # fmt: skip
        if crm:
            self.per_account[crm] += 1
        if parent and parent[0] == "account" and parent[1] != crm:
            self.per_account[parent[1]] += 1
        # Who it reached.
        reached: dict[int, tuple[str, int]] = {}  # user -> (reason, is_sender)
        if not m["inbound"]:
            reached[staff] = (f"address {self.user_address[staff]} in From", 1)
        if add_team:
            for uid in self.team_users[team_id]:
                reached.setdefault(uid, (f"member of a team of group account {acct_name}", 0))
        else:
            reached.setdefault(staff, (f"address {acct_address} of group account {acct_name}", 0))
        if assigned:
            reached.setdefault(assigned, (f"assignee of case {case}", 0))
        if m["colleague"]:
            reached.setdefault(m["colleague"], (f"address {self.user_address[m['colleague']]} in Cc", 0))
        old = (self.now - date).days > 30
        notified, not_notified = [], {}
        for uid, (reason, is_sender) in reached.items():
            is_read = 1 if is_sender or (old and rng.random() < 0.97) or rng.random() < 0.5 else 0
            roll = rng.random()
            in_trash = 1 if roll < 0.01 else 0
            in_archive = 1 if 0.01 <= roll < 0.04 else 0
            folder = self.folder_of.get(uid) if 0.04 <= roll < 0.06 else None
            out["email_users"].append(
                (email_id, uid, is_read, in_trash, in_archive, folder, is_sender, date_sent, reason)
            )
            if is_sender:
                not_notified[self.username[uid]] = "the sender"
            else:
                notified.append(uid)
        teams = {team_id}
        if case is not None and rng.random() < 0.05:
            teams.add(self.team_ids["billing"])
        if m["colleague"]:
            teams.add(self.team_of_user[m["colleague"]])
        for tid in sorted(teams):
            out["email_teams"].append((email_id, tid))
        # Deliveries: the group account; some mail reached two group mailboxes.
        accounts = [m["account"]]
        if m["inbound"] and rng.random() < 0.06:
            accounts.append((m["account"] + 1) % len(self.accounts))
        for k in accounts:
            aid = self.accounts[k][0]
            self.uids[aid] += 1
            self.delivery_id += 1
            folder = "INBOX" if m["inbound"] else "Sent Items"
            out["email_deliveries"].append((self.delivery_id, email_id, aid, folder, self.uids[aid], fetched, fetched))
            trail = self._trail(m, email_id, parent, reached, notified, not_notified, k == accounts[0])
            out["email_events"].append((email_id, self.delivery_id, "pipeline", "processed", trail, fetched))
        if m["attachment"]:
            name, size = m["attached"]
            out["attachments"].append((email_id, "2", name, "text/csv", size, 0, None))
        # Stream note and notifications.
        note = None
        followers = []
        if parent:
            self.note_id += 1
            note = self.note_id
            excerpt = m["text"].split("\n\nOn ", 1)[0].strip()[:500]  # without the quoted parent
            is_initial = 1 if case is not None and reply_to is None else 0
            out["stream_notes"].append(
                (note, parent[0], parent[1], "email-received", email_id, excerpt, is_initial, fetched)
            )
            if crm:
                followers = [u for u in self.followers.get(crm, ()) if u in reached or self.team_of_user[u] in teams]
        read_stamp = 1 if old else 0
        for uid in followers:
            if reached.get(uid, ("", 0))[1]:
                continue
            self.notification_id += 1
            out["notifications"].append(
                (self.notification_id, uid, "stream-note", email_id, note, "account", crm,
                 read_stamp if rng.random() < 0.95 else 0, fetched)
            )  # fmt: skip
        for uid in notified:
            if uid in followers:
                continue
            self.notification_id += 1
            out["notifications"].append(
                (self.notification_id, uid, "email-received", email_id, None, None, None,
                 read_stamp if rng.random() < 0.95 else 0, fetched)
            )  # fmt: skip

    def _trail(self, m, email_id, parent, reached, notified, not_notified, first: bool) -> str:  # noqa: ANN001
        acct_name = self.accounts[m["account"]][1]
        steps: list = [
            ["parse", "parsed", {"attachments": 1 if m["attachment"] else 0}],
            ["loop-guard", "passed", None],
            ["account-filter", "import", "no global or account filter matches"],
        ]
        if not first:
            steps = [["parse", "parsed", {"attachments": 0}]]
            steps.append(["users-teams", "users", "no new users"])
            return _json(steps)
        reply_to = m["reply_to"]
        if reply_to:
            steps.append(
                ["thread", "reply", f"replies to email {reply_to['id']} ({reply_to['mid']}, from In-Reply-To)"]
            )
        else:
            steps.append(["thread", "no thread", None])
        if parent and reply_to:
            steps.append(
                [
                    "parent",
                    f"{parent[0]}:{parent[1]}",
                    f"the parent of email {reply_to['id']}, which this one replies to",
                ]
            )
        elif parent:
            steps.append(["parent", f"{parent[0]}:{parent[1]}", f"From {m['sender'][1]} belongs to a contact"])
        else:
            steps.append(["parent", "none", "no generated reference, no linked thread, no known address"])
        steps.append(["users-teams", "users", {self.username[u]: r for u, (r, _) in reached.items()}])
        steps.append(["users-teams", "teams", [acct_name]])
        if parent and parent[0] == "case" and not reply_to:
            steps.append(
                ["email-to-case", f"created case {parent[1]}", {"assigned": None, "distribution": "round-robin"}]
            )
        if parent:
            steps.append(["notify", "stream note", {"record": f"{parent[0]}:{parent[1]}", "followers notified": [],
                                                    "followers not notified": {}}])  # fmt: skip
        steps.append(["notify", "email-received", {"notified": [self.username[u] for u in notified],
                                                   "not notified": not_notified}])  # fmt: skip
        return _json(steps)

    def finish(self) -> dict:
        top, count = max(self.per_account.items(), key=lambda kv: kv[1]) if self.per_account else (None, 0)
        self.stats["busiest_account"] = top
        self.stats["busiest_account_emails"] = count
        return dict(self.stats)


TABLES = {
    "emails": """INSERT INTO emails (id, message_id, subject, from_address, from_name, to_list, cc_list,
        address_names, date_sent, in_reply_to, references_list, raw_sha256, raw_pack, raw_offset, raw_size,
        parent_type, parent_id, crm_account_id, replied_id, assigned_user_id, state, status, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'processed', 'Archived', ?, ?)""",
    "email_users": """INSERT INTO email_users (email_id, user_id, is_read, in_trash, in_archive, folder_id,
        is_sender, sort_date, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
    "email_teams": "INSERT INTO email_teams (email_id, team_id) VALUES (?, ?)",
    "email_deliveries": """INSERT INTO email_deliveries (id, email_id, account_id, folder, uid, state, attempts,
        created_at, processed_at) VALUES (?, ?, ?, ?, ?, 'done', 0, ?, ?)""",
    "email_events": """INSERT INTO email_events (email_id, delivery_id, step, decision, detail, created_at)
        VALUES (?, ?, ?, ?, ?, ?)""",
    "attachments": """INSERT INTO attachments (email_id, part, filename, content_type, size, is_inline, content_id)
        VALUES (?, ?, ?, ?, ?, ?, ?)""",
    "stream_notes": """INSERT INTO stream_notes (id, record_type, record_id, type, email_id, body, is_initial,
        created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
    "notifications": """INSERT INTO notifications (id, user_id, type, email_id, note_id, record_type, record_id,
        is_read, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
}
SUBJECTS_FLAT = [s.format(n=n) for lang in LANGS for s in mailgen.SUBJECTS[lang] for n in (10417, 52210)]


# -- message text --------------------------------------------------------------------------


def _skewed(rng: random.Random, n: int, power: float) -> int:
    """0..n-1, the low ones far more often (a power law: a few big customers)."""
    return min(n - 1, int(n * rng.random() ** power))


def _person_name(lang: str, first: str, last: str) -> str:
    if lang in ("zh", "ja"):
        return f"{last}{first}" if lang == "zh" else f"{last} {first}"
    if lang == "ru":
        return f"{first} {last}"
    return f"{first} {last}"


def _iso(when: dt.datetime) -> str:
    """ISO 8601 UTC with Z, as espomail stores times (``when`` is naive UTC)."""
    return when.isoformat() + "Z"


_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _rfc2822(when: dt.datetime) -> str:
    """The Date header of ``when`` (naive UTC)."""
    return (
        f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} +0000"
    )


def _message_id(rng: random.Random, email_id: int, address: str) -> str:
    domain = address.partition("@")[2].lower()
    style = rng.random()
    if domain == "example.com":  # staff mail, written in the CRM's mail client
        return f"<{rng.getrandbits(64):016x}.{email_id}@example.com>"
    if style < 0.3:
        token = base64.b64encode(rng.randbytes(24), altchars=b"+_").decode().rstrip("=")
        return f"<CA{token}{email_id:x}@mail.gmail.com>"
    if style < 0.55:
        return f"<AM0PR{rng.getrandbits(64):016X}{email_id:08X}@AM0PR06MB.eurprd06.prod.outlook.com>".replace(
            "@AM0PR06MB.eurprd06.prod.outlook.com", "@am0pr06mb.eurprd06.prod.outlook.com"
        )
    return f"<{rng.getrandbits(64):016x}.{email_id}@{domain}>"


def _paragraphs(lang: str, seed: int = 5) -> list[str]:
    """A pool of wrapped paragraphs per language (wrapping each message's text is slow)."""
    if lang not in _POOL:
        rng = random.Random(f"{seed}-{lang}")
        joiner = "" if lang in ("zh", "ja") else " "
        pool = []
        for _ in range(PARAGRAPHS):
            para = joiner.join(rng.choice(mailgen.SENTENCES[lang]) for _ in range(rng.randint(2, 5)))
            pool.append("\n".join(mailgen._wrap(para)))  # CJK: cut by characters
        _POOL[lang] = pool
    return _POOL[lang]


PARAGRAPHS = 500
_POOL: dict[str, list[str]] = {}


def _body(rng: random.Random, lang: str, to_name: str, from_name: str, reply_to: dict | None) -> str:
    hello, bye = mailgen.GREETINGS[lang]
    pool = _paragraphs(lang)
    budget = rng.randint(500, 2200) // (3 if lang in ("zh", "ja", "ru") else 1)
    paragraphs, size = [], 0
    while size < budget:
        para = pool[int(rng.random() * PARAGRAPHS)]
        paragraphs.append(para)
        size += len(para)
    parts = [hello.format(name=to_name.split(" ")[0]), *paragraphs, f"{bye}\n{from_name}"]
    if rng.random() < 0.5:
        parts.append(f"-- \n{from_name}\nPhone +49 221 {rng.randint(1000000, 9999999)}")
    text = "\n\n".join(parts)
    if reply_to is not None:
        quoted = "> " + reply_to["text"][:300].replace("\n", "\n> ")
        sender = reply_to["from_"]
        text += f"\n\nOn {_rfc2822(reply_to['date'])}, {sender[0]} <{sender[1]}> wrote:\n{quoted}"
    return text + "\n"


def _encoded_word(text: str) -> str:
    if text.isascii():
        return text
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def _addr(name: str, address: str) -> str:
    if not name:
        return address
    if name.isascii():
        return f'"{name}" <{address}>' if any(ch in name for ch in ",.'()") else f"{name} <{address}>"
    return f"{_encoded_word(name)} <{address}>"


def _render(rng, date, sender, recipient, cc, subject, lang, message_id, refs, text, attachment, ours) -> bytes:  # noqa: ANN001
    domain = sender[1].partition("@")[2]
    stamp = _rfc2822(date)
    queue = rng.getrandbits(40)
    ip = f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    signature = base64.b64encode(rng.randbytes(192)).decode()
    lines = [
        f"Return-Path: <{sender[1]}>",
        f"Delivered-To: {ours}",
        f"Received: from mail.{domain} (mail.{domain} [{ip}])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)"
        f"\n\tby mx1.example.com (Postfix) with ESMTPS id {queue:010X}\n\tfor <{ours}>; {stamp}",
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=s{date.year};\n"
        f"\th=from:to:cc:subject:date:message-id:in-reply-to:references;\n"
        f"\tbh={base64.b64encode(rng.randbytes(32)).decode()};\n"
        f"\tb={signature[:64]}\n\t {signature[64:128]}\n\t {signature[128:]}",
        f"Authentication-Results: mx1.example.com; dkim=pass header.d={domain}; spf=pass smtp.mailfrom={domain}",
        f"From: {_addr(*sender)}",
        f"To: {_addr(*recipient)}",
    ]
    if cc:
        lines.append("Cc: " + ", ".join(_addr(*a) for a in cc))
    lines += [f"Subject: {_encoded_word(subject)}", f"Date: {stamp}", f"Message-ID: {message_id}"]
    if refs:
        lines.append(f"In-Reply-To: {refs[-1]}")
        lines.append("References: " + "\n ".join(refs))
    lines.append("MIME-Version: 1.0")
    lines.append(rng.choice(MAILERS))
    data = text.encode()
    if lang == "en" and rng.random() < 0.6:
        cte, body = "7bit", text
    elif lang in ("en", "de", "fr"):
        cte, body = "quoted-printable", binascii.b2a_qp(data, istext=True).decode("ascii")
    else:
        encoded = base64.b64encode(data).decode()
        cte, body = "base64", "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + "\n"
    part = f'Content-Type: text/plain; charset="utf-8"; format=flowed\nContent-Transfer-Encoding: {cte}\n\n{body}'
    if attachment:
        boundary = f"----=_Part_{rng.getrandbits(48):012x}"
        csv = CSV_ROWS[: rng.randint(300, len(CSV_ROWS))].encode()
        encoded = base64.b64encode(csv).decode()
        encoded = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
        name = f"positions-{rng.randint(1000, 9999)}.csv"
        part = (
            f'Content-Type: multipart/mixed; boundary="{boundary}"\n\nThis is a multi-part message in MIME format.\n\n'
            f'--{boundary}\n{part}\n--{boundary}\nContent-Type: text/csv; name="{name}"\n'
            f'Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="{name}"\n\n'
            f"{encoded}\n--{boundary}--\n"
        )
        attached = (name, len(csv))
    else:
        attached = None
    raw = "\n".join(lines) + "\n" + part
    return raw.replace("\n", "\r\n").encode(), attached


MAILERS = [
    "X-Mailer: Microsoft Outlook 16.0",
    "User-Agent: Mozilla Thunderbird",
    "X-Mailer: Apple Mail (2.3731.700.6)",
    "User-Agent: Roundcube Webmail/1.6.5",
]


# -- the whole store --------------------------------------------------------------------------


def fill(
    db: Path,
    emails: int,
    contacts: int = 50_000,
    cases: int = 20_000,
    seed: int = 1,
    cache_mb: int = 1024,
    progress: bool = True,
) -> dict:
    """Fill a store made by ``create_base`` with ``emails`` emails and their world."""
    import sqlite3

    from espomail.store.blobs import directory_for

    started = time.perf_counter()
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")  # generation only: no rollback journal, no WAL
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")
    conn.execute("PRAGMA temp_store = MEMORY")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)  # naive UTC throughout
    gen = Generator(conn, db, emails, contacts, cases, seed, now)
    conn.execute("BEGIN")
    gen.records()
    conn.execute("COMMIT")
    if emails:
        gen.emails(directory_for(db), progress)
    conn.execute("PRAGMA journal_mode = WAL")  # what espomail uses
    conn.close()
    stats = gen.finish()
    stats["seconds"] = round(time.perf_counter() - started, 1)
    return stats


def disk_usage(db: Path) -> dict:
    """Bytes of the database, its WAL and the raw packs."""
    from espomail.store.blobs import directory_for

    def size(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0

    raw_dir = directory_for(db)
    packs = sum(p.stat().st_size for p in raw_dir.glob("*") if p.is_file()) if raw_dir.exists() else 0
    return {
        "db": size(db),
        "wal": size(db.with_name(db.name + "-wal")),
        "shm": size(db.with_name(db.name + "-shm")),
        "packs": packs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storegen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="a new database path (its directory is created)")
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=None, help="default: min(50000, emails / 10)")
    parser.add_argument("--cases", type=int, default=None, help="default: min(20000, emails / 50)")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.db.exists():
        parser.error(f"{args.db} exists: give a new path")
    print(f"base (CLI): {create_base(args.db, args.users):.1f} s")
    stats = fill(args.db, args.emails, *default_scale(args.emails, args.contacts, args.cases), seed=args.seed)
    print(json.dumps(stats, indent=1))
    usage = disk_usage(args.db)
    print(json.dumps(usage, indent=1))
    return 0


def default_scale(emails: int, contacts: int | None, cases: int | None) -> tuple[int, int]:
    contacts = contacts if contacts is not None else min(50_000, max(1_000, emails // 10))
    cases = cases if cases is not None else min(20_000, emails // 50)
    return contacts, cases


if __name__ == "__main__":
    sys.exit(main())
