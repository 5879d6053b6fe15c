"""The big-store benchmark: does a store of a million emails slow espomail down?

    .venv/bin/python -m bench.bigstore --emails 1000000            # about 12-15 minutes (8 generating)
    .venv/bin/python -m bench.bigstore --emails 100000 --contacts 10000   # about 3 minutes
    .venv/bin/python -m bench.bigstore --sizes 0 100000 1000000    # import time per message per size
    .venv/bin/python -m bench.bigstore --emails 1000000 --keep     # keep the stores, then measure
    .venv/bin/python -m bench.bigstore --emails 1000000 --reuse    # again without generating (2 minutes)
    .venv/bin/python -m bench.bigstore --emails 1000000 --postgresql   # and the same commands on PostgreSQL

Method. One run builds, then measures:

1. **The base** (not timed as a figure): ``espomail init`` and, through the real CLI, the
   people every store shares: 20 users u01..u20 (``--users``) with addresses, 5 teams of
   4 (positions agent/lead), one role granting email read ``team`` to all, a personal
   folder per user, 3 group accounts (support: create-case round-robin to its team and
   adds its team's users; sales and billing: reach the addressed owner only), a global,
   an account and a user filter. The **empty store** is a copy of the base.
2. **The big store**: another copy of the base, filled by ``bench.storegen`` with direct
   SQL (never the pipeline, which would take hours): N emails over 3 years with threads,
   parents (cases, accounts, contacts), email_users/teams/deliveries/events, stream notes,
   notifications, contacts, accounts, cases, and a 2-5 KB raw source per email in one pack
   file (see ``bench/storegen.py``). Reported: generation time, rows, and the size on disk
   (database + WAL + packs) per email. The generator runs no ANALYZE: the planner
   statistics are whatever espomail's own commands leave (its connections run ``PRAGMA
   optimize`` on close), starting with the untimed ``email show ID --raw`` check (which
   also checks that the stored bytes come back exactly) and the warm-up runs.
3. **Commands**: each command is run as a subprocess (the real ``espomail`` CLI, wall
   clock; a blocking ``wait4``, not ``Popen.wait(timeout)``, whose 50 ms polling would
   round every figure up), once untimed to warm the page cache, then ``--repeat`` times
   (default 5) against the empty store and the big store alternately, so that a change of
   machine load hits both. Figures: best and median seconds per store, and the ratio big/empty of the
   medians: what the store's size adds over start-up, opening the store and an empty
   answer. ``espomail --version`` (pure start-up: no store, no command module) and
   ``espomail --help`` (start-up plus importing every command module for the help text)
   are timed the same way. The target is every command under 0.3 s on the 1M store. On
   the empty store ``email show ID`` answers "not found" (exit 3): its baseline is
   start-up plus one lookup. "rows" is how many items the JSON answer holds (a list page
   is 100).
4. **Import**: 1,000 messages of ``bench.mailgen.generate(1000, seed=7)`` (realistic mail,
   2% with 0.5-5 MB attachments, 63 MB) written as .eml files, imported with
   ``espomail email import DIR --account support --json`` into a fresh copy of the empty
   store and of the big store, alternately, ``--import-repeat`` times (default 3; each
   import on its own copy: the database is copied, the packs hard-linked, since an import
   only appends new packs). ``ESPOMAIL_NOTIFY_MAX_AGE_DAYS=36500`` makes the import
   notify as a live fetch would (mailgen's mail is dated 2023). The big store knows about
   100 addresses of each mailgen company as contacts, so there the import also links
   mail to accounts, writes stream notes and notifies followers: it does at least the
   work it does on the empty store (the ratio is conservative). Figures: messages/s per
   store (median), ms per message, and the ratio big/empty of the rates (target >= 0.8).
   With ``--sizes`` every size is generated in turn and gets the same measures.
5. **Query plans**: each command, and one extra untimed import on the largest store,
   run once more under a wrapper that records every SQL statement (sqlite3's trace
   callback). Each distinct statement's ``EXPLAIN QUERY PLAN`` is taken on the big store
   and each distinct read is timed there (best of 3); the report lists statements slower
   than 5 ms, and those of 1 ms or more whose plan scans a big table (``SCAN t`` without
   a covering index) or sorts (``USE TEMP B-TREE``): linking, filtering and notifying
   should cost indexed lookups only. "SQL per command" adds up each command's reads
   (each distinct statement's time x how often the command sent it): compare it with the
   command's wall time to see whether the store or the Python around it costs the time.

6. **PostgreSQL** (``--postgresql``): a private PostgreSQL (``bench.fetch.BenchPostgres``,
   durable settings, otherwise PostgreSQL's defaults) on the work disk; the empty and the
   big store are copied into it with the real ``espomail store copy --to URL`` (timed,
   every table's count compared; the copy runs ANALYZE at its end), and the commands of 3.
   are timed on both PostgreSQL stores in the same rounds as the SQLite ones (target:
   every list under 0.3 s on the big one). The import and the plans are SQLite's only.

Absolute times depend on the machine (CPU, disk, page cache, load: the machine is
described at the top and the load average is stored); compare the ratios, measured in
the same run. Everything goes under ``bench/out/`` (gitignored): the stores in
``--workdir`` (default ``bench/out/bigstore-work``; deleted after each size unless
``--keep``; ``--reuse`` measures kept stores of the same parameters again without
generating them: the figures of their generation are those of the run that made them)
and the results in ``bench/out/bigstore-<timestamp>.json``. Disk: about 7 KB per email
(6.8 GB for 1,000,000), plus one copy of the database during the imports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import storegen
from bench.fetch import Child, machine, print_machine

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
TARGET_S = 0.3
TARGET_IMPORT_RATIO = 0.8
SLOW_STATEMENT_MS = 5.0
BIG_TABLE_ROWS = 10_000
IMPORT_MESSAGES = 1000
IMPORT_SEED = 7
IMPORT_ACCOUNT = "support"

# (key, argv) — {account} and {middle} are filled in per store.
COMMANDS = [
    ("version", ["--version"]),
    ("help", ["--help"]),
    ("inbox u07", ["--as", "u07", "email", "list", "--folder", "inbox", "--json"]),
    ("parent account", ["email", "list", "--parent", "account:{account}", "--json"]),
    ("cases New", ["case", "list", "--status", "New", "--json"]),
    ("show middle", ["email", "show", "{middle}", "--json"]),
    ("notifications u07", ["--as", "u07", "notification", "list", "--json"]),
    ("all u07", ["--as", "u07", "email", "list", "--folder", "all", "--json"]),
    ("all admin", ["email", "list", "--json"]),
]


STARTUP = ("version", "help")  # no store opened: pure start-up

# -- running the CLI ----------------------------------------------------------------------


class Run(Child):
    """One finished espomail process (wall and CPU seconds, exit code, output), timed
    without GNU time around it."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 3600) -> None:
        super().__init__(argv, env, cwd, timeout, peak_rss=False)

    def rows(self) -> int | None:
        """How many items a --json answer holds (1 for an object), None without JSON."""
        try:
            data = json.loads(self.stdout)
        except ValueError:
            return None
        return len(data) if isinstance(data, list) else 1


def command_argv(argv: list[str], facts: dict) -> list[str]:
    return [part.format(**facts) for part in argv]


def target_env(target: Path | str, home: Path) -> tuple[dict[str, str], Path]:
    """The CLI's environment and working directory for a SQLite file or a PostgreSQL URL."""
    if isinstance(target, Path):
        return storegen.cli_env(target), target.parent
    env = storegen.cli_env(home / "espomail.db")
    env["ESPOMAIL_DB"] = target
    return env, home


def time_commands(stores: dict[str, Path | str], facts: dict, repeat: int, home: Path) -> dict:
    """Each command on each store: one warm-up, then ``repeat`` rounds, stores alternating."""
    binary = storegen.espomail_binary()
    runs: dict = {key: {label: [] for label in stores} for key, _ in COMMANDS}
    cpu: dict = {key: {label: [] for label in stores} for key, _ in COMMANDS}
    info: dict = {key: {label: {} for label in stores} for key, _ in COMMANDS}
    for round_ in range(repeat + 1):
        for key, argv in COMMANDS:
            for label, db in stores.items():
                if key in STARTUP and label != next(iter(stores)):
                    continue  # --version and --help open no store: once per round is enough
                env, cwd = target_env(db, home)
                run = Run([binary, *command_argv(argv, facts[label])], env, cwd)
                if round_ == 0:  # the warm-up: untimed
                    info[key][label] = {"exit": run.returncode, "rows": run.rows()}
                    if run.returncode not in (0, 3):
                        info[key][label]["error"] = run.error_line()
                    continue
                runs[key][label].append(run.seconds)
                cpu[key][label].append(run.cpu_s)
        print(f"    round {round_}/{repeat} done" + (" (warm-up)" if round_ == 0 else ""), flush=True)
    result = {}
    for key, argv in COMMANDS:
        row = {"argv": argv, "stores": {}}
        for label in stores:
            times = runs[key][label]
            if not times:
                continue
            row["stores"][label] = {
                "best_s": round(min(times), 4),
                "median_s": round(statistics.median(times), 4),
                "runs_s": [round(t, 4) for t in times],
                "cpu_median_s": round(statistics.median(cpu[key][label]), 4),
                **info[key][label],
            }
        result[key] = row
    return result


# -- import ---------------------------------------------------------------------------------


def write_import_messages(directory: Path) -> dict:
    from bench import mailgen

    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for index, raw in enumerate(mailgen.generate(IMPORT_MESSAGES, seed=IMPORT_SEED)):
        (directory / f"{index:05d}.eml").write_bytes(raw)
        total += len(raw)
    return {"messages": IMPORT_MESSAGES, "seed": IMPORT_SEED, "bytes": total}


def scratch_copy(db: Path, scratch: Path) -> float:
    """A copy of the store at ``scratch``: the database (and WAL) copied, the packs hard-linked."""
    from espomail.store.blobs import directory_for

    started = time.perf_counter()
    if scratch.parent.exists():
        shutil.rmtree(scratch.parent)
    scratch.parent.mkdir(parents=True)
    shutil.copyfile(db, scratch)
    wal = db.with_name(db.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        shutil.copyfile(wal, scratch.with_name(scratch.name + "-wal"))
    source, target = directory_for(db), directory_for(scratch)
    if source.exists():
        target.mkdir(mode=0o700)
        for pack in source.iterdir():
            os.link(pack, target / pack.name)
    os.chmod(scratch, 0o600)
    return time.perf_counter() - started


def import_env(db: Path) -> dict[str, str]:
    env = storegen.cli_env(db)
    env["ESPOMAIL_NOTIFY_MAX_AGE_DAYS"] = "36500"  # notify as a live fetch would
    return env


def time_imports(stores: dict[str, Path], eml: Path, work: Path, repeat: int) -> dict:
    """``email import`` of the same messages into a fresh copy of each store, alternately."""
    binary = storegen.espomail_binary()
    argv = [binary, "email", "import", str(eml), "--account", IMPORT_ACCOUNT, "--json"]
    results: dict = {label: [] for label in stores}
    for round_ in range(repeat):
        for label, db in stores.items():
            scratch = work / "scratch" / "espomail.db"
            copy_s = scratch_copy(db, scratch)
            os.sync()
            run = Run(argv, import_env(scratch), scratch.parent)
            entry: dict = {
                "seconds": round(run.seconds, 3),
                "cpu_s": round(run.cpu_s, 3),
                "exit": run.returncode,
                "copy_s": round(copy_s, 1),
            }
            try:
                entry["summary"] = json.loads(run.stdout)
            except ValueError:
                entry["error"] = run.error_line()
            if run.returncode == 0:
                entry["linked"] = _linked(scratch)
            results[label].append(entry)
            note = f"  {entry.get('error', '')}" if run.returncode else ""
            print(f"    import {round_ + 1}/{repeat} into {label}: {run.seconds:.2f} s{note}", flush=True)
            shutil.rmtree(scratch.parent)
    summary = {}
    for label, entries in results.items():
        good = [e["seconds"] for e in entries if e["exit"] == 0]
        row: dict = {"runs": entries}
        if good:
            median = statistics.median(good)
            row.update(
                median_s=round(median, 3),
                best_s=round(min(good), 3),
                msg_per_s=round(IMPORT_MESSAGES / median, 1),
                ms_per_msg=round(median * 1000 / IMPORT_MESSAGES, 2),
            )
        summary[label] = row
    return summary


def _linked(db: Path) -> dict:
    """What the import did on this store: emails with a parent, notes, notifications it wrote."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        first = conn.execute("SELECT MIN(email_id) FROM email_deliveries WHERE folder LIKE 'import:%'").fetchone()[0]
        if first is None:
            return {}
        counts = {
            "emails": "SELECT COUNT(*) FROM emails WHERE id >= ?",
            "with_parent": "SELECT COUNT(*) FROM emails WHERE id >= ? AND parent_type IS NOT NULL",
            "with_crm_account": "SELECT COUNT(*) FROM emails WHERE id >= ? AND crm_account_id IS NOT NULL",
            "notifications": "SELECT COUNT(*) FROM notifications WHERE email_id >= ?",
            "stream_notes": "SELECT COUNT(*) FROM stream_notes WHERE email_id >= ?",
        }
        return {name: conn.execute(sql, [first]).fetchone()[0] for name, sql in counts.items()}
    finally:
        conn.close()


# -- statements and their plans --------------------------------------------------------------

_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


def traced_main(out_path: str, argv: list[str]) -> int:
    """Run the espomail CLI in this process, recording every SQL statement it sends."""
    import atexit

    from espomail.store import db as db_module

    seen: dict[str, dict] = {}
    original = db_module.connect

    def record(sql: str) -> None:
        shape = " ".join(_LITERAL.sub("?", sql).split())
        entry = seen.setdefault(shape, {"shape": shape, "example": sql, "count": 0})
        entry["count"] += 1

    def connect(path):  # noqa: ANN001, ANN202
        conn = original(path)
        conn.set_trace_callback(record)
        return conn

    db_module.connect = connect

    def dump() -> None:
        Path(out_path).write_text(json.dumps(list(seen.values())))

    atexit.register(dump)
    from espomail.cli import main as cli_main

    sys.argv = ["espomail", *argv]
    return cli_main()


def trace(argv: list[str], env: dict[str, str], cwd: Path) -> list[dict]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        path = Path(handle.name)
    try:
        run = Run([sys.executable, "-m", "bench.bigstore", "--traced", str(path), "--", *argv], env, ROOT)
        if run.returncode not in (0, 3):
            print(f"    traced run failed: {run.error_line()}")
        return json.loads(path.read_text()) if path.stat().st_size else []
    finally:
        path.unlink(missing_ok=True)


def _table_rows(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}


_SKIP = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA", "INSERT", "CREATE")


def examine(db: Path, statements: dict[str, list[dict]]) -> list[dict]:
    """Plan and (for reads) time each distinct statement on ``db``; flag the suspicious ones."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.execute("PRAGMA cache_size = -4096")  # as espomail's connections
    counts = _table_rows(conn)
    big = {name for name, n in counts.items() if n >= BIG_TABLE_ROWS}
    found: dict[str, dict] = {}
    for source, entries in statements.items():
        for entry in entries:
            shape = entry["shape"]
            if shape.upper().startswith(_SKIP):
                continue
            if shape in found:
                found[shape]["sources"].append(source)
                found[shape]["counts"][source] = entry["count"]
                found[shape]["count"] += entry["count"]
                continue
            item = {
                "shape": shape,
                "example": entry["example"],
                "count": entry["count"],
                "counts": {source: entry["count"]},
                "sources": [source],
            }
            try:
                plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + entry["example"])]
            except sqlite3.Error as exc:
                item["plan_error"] = str(exc)
                plan = []
            item["plan"] = plan
            scans = []
            for line in plan:
                match = re.match(r"SCAN (\w+)(?: AS \w+)?(.*)", line)
                if match and match.group(1) in big and "COVERING INDEX" not in match.group(2):
                    how = "full scan" if "INDEX" not in match.group(2) else "index scan"
                    scans.append(f"{how} of {match.group(1)} ({counts[match.group(1)]:,} rows)")
            item["scans"] = scans
            if shape.upper().startswith(("SELECT", "WITH")):
                times = []
                while len(times) < 3 and sum(times) < 1.0:  # best of 3, or one run of a slow one
                    started = time.perf_counter()
                    conn.execute(entry["example"]).fetchall()
                    times.append(time.perf_counter() - started)
                item["ms"] = round(min(times) * 1000, 3)
            ms = item.get("ms")
            flags = []
            if ms is not None and ms >= SLOW_STATEMENT_MS:
                flags.append(f"{ms:.1f} ms")
            if ms is None or ms >= 1.0:  # a scan that stops early (ORDER BY index + LIMIT) is fine
                flags += scans
                flags += [line.strip() for line in plan if "TEMP B-TREE" in line and ms is not None]
            item["flags"] = flags
            found[shape] = item
    conn.close()
    return sorted(found.values(), key=lambda i: -(i.get("ms") or 0))


def sql_estimates(statements: list[dict]) -> dict[str, dict]:
    """Per command: statements sent, and the time of its reads (each distinct one timed once, x its count)."""
    per: dict[str, dict] = {}
    for item in statements:
        for source, count in item["counts"].items():
            entry = per.setdefault(source, {"statements": 0, "read_ms": 0.0})
            entry["statements"] += count
            entry["read_ms"] += (item.get("ms") or 0) * count
    return {k: {"statements": v["statements"], "read_ms": round(v["read_ms"], 1)} for k, v in per.items()}


def plans(store: Path, facts: dict, eml: Path, work: Path, with_import: bool) -> list[dict]:
    statements: dict[str, list[dict]] = {}
    env = storegen.cli_env(store)
    for key, argv in COMMANDS:
        if key not in STARTUP:
            statements[key] = trace(command_argv(argv, facts), env, store.parent)
    target = store
    if with_import:
        scratch = work / "scratch" / "espomail.db"
        scratch_copy(store, scratch)
        statements["import"] = trace(
            ["email", "import", str(eml), "--account", IMPORT_ACCOUNT, "--json"], import_env(scratch), scratch.parent
        )
        target = scratch
    try:
        return examine(target, statements)
    finally:
        if with_import:
            shutil.rmtree(work / "scratch", ignore_errors=True)


# -- one size -----------------------------------------------------------------------------------


def store_facts(db: Path, stats: dict | None) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        top = conn.execute("SELECT MAX(id) FROM emails").fetchone()[0] or 0
    finally:
        conn.close()
    account = (stats or {}).get("busiest_account") or 1
    return {"account": account, "middle": max(1, top // 2)}


def check_raw(db: Path, email_id: int) -> str:
    """``email show ID --raw`` must give back the exact pack bytes, whose SHA-256 the row names."""
    import hashlib

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sha, size = conn.execute("SELECT raw_sha256, raw_size FROM emails WHERE id = ?", [email_id]).fetchone()
    finally:
        conn.close()
    done = subprocess.run(
        [storegen.espomail_binary(), "email", "show", str(email_id), "--raw"],
        env=storegen.cli_env(db),
        capture_output=True,
    )
    if done.returncode != 0:
        return f"email show {email_id} --raw failed: {done.stderr.decode(errors='replace').strip()}"
    if len(done.stdout) != size or hashlib.sha256(done.stdout).hexdigest() != sha:
        return f"email show {email_id} --raw: {len(done.stdout)} bytes, not the {size} bytes of {sha[:12]}"
    return "ok"


def bench_size(size: int, args: argparse.Namespace, base: Path, empty: Path, eml: Path, largest: bool) -> dict:
    work = args.workdir
    store = work / f"n{size}" / "espomail.db"
    contacts, cases = storegen.default_scale(size, args.contacts, args.cases)
    report: dict = {"emails": size, "contacts": contacts, "cases": cases, "store": str(store)}
    params = {"emails": size, "contacts": contacts, "cases": cases, "seed": args.seed, "users": args.users}
    saved = store.parent / "generation.json"
    if args.reuse and saved.exists() and json.loads(saved.read_text()).get("params") == params:
        report["generation"] = json.loads(saved.read_text())["generation"]
        report["generation"]["reused"] = True
        print(f"\n-- {size:,} emails: reusing the store in {store.parent} (--reuse)", flush=True)
    else:
        if store.parent.exists():
            shutil.rmtree(store.parent)
        print(f"\n-- {size:,} emails, {contacts:,} contacts, {cases:,} cases: generating", flush=True)
        store.parent.mkdir(parents=True)
        shutil.copyfile(base, store)
        os.chmod(store, 0o600)  # as espomail creates it
        stats = storegen.fill(store, size, contacts, cases, seed=args.seed, cache_mb=args.cache_mb)
        usage = storegen.disk_usage(store)
        total = usage["db"] + usage["wal"] + usage["packs"]
        report["generation"] = {
            "seconds": stats.pop("seconds"),
            "rows": stats,
            "disk_bytes": usage,
            "bytes_per_email": round(total / size),
            "db_bytes_per_email": round((usage["db"] + usage["wal"]) / size),
        }
        saved.write_text(json.dumps({"params": params, "generation": report["generation"]}, indent=1) + "\n")
    stats = report["generation"]["rows"]
    usage = report["generation"]["disk_bytes"]
    total = usage["db"] + usage["wal"] + usage["packs"]
    gen = report["generation"]
    print(
        f"   {'generated (by an earlier run)' if gen.get('reused') else 'generated'} in {gen['seconds']:.0f} s "
        f"({size / gen['seconds']:,.0f} emails/s); on disk "
        f"{total / 1e9:.2f} GB = {gen['bytes_per_email'] / 1024:.1f} KiB per email "
        f"(database {usage['db'] / 1e9:.2f} GB + WAL {usage['wal'] / 1e6:.0f} MB "
        f"+ packs {usage['packs'] / 1e9:.2f} GB)",
        flush=True,
    )
    facts = {"empty": store_facts(empty, stats), "big": store_facts(store, stats)}
    report["facts"] = facts["big"]
    report["raw_check"] = check_raw(store, facts["big"]["middle"])
    print(f"   email show {facts['big']['middle']} --raw gives the stored bytes: {report['raw_check']}", flush=True)
    stores: dict[str, Path | str] = {"empty": empty, "big": store}
    if POSTGRES is not None:
        report["postgresql"] = {}
        for label, source in (("empty", empty), ("big", store)):
            url, copied = copy_to_postgres(source, work)
            report["postgresql"][f"copy {label}"] = copied
            stores[f"{label}-pg"], facts[f"{label}-pg"] = url, facts[label]
    print(f"-- commands: {args.repeat} runs each, {' and '.join(stores)} alternately", flush=True)
    report["commands"] = time_commands(stores, facts, args.repeat, work)
    report["load_average_after_commands"] = [round(x, 2) for x in os.getloadavg()]
    if args.import_repeat:
        print(f"-- import of {IMPORT_MESSAGES:,} messages: {args.import_repeat} runs each, fresh copies", flush=True)
        report["import"] = time_imports(stores, eml, work, args.import_repeat)
    if not args.no_plans:
        print("-- statements: plans and timings on the big store", flush=True)
        report["statements"] = plans(store, facts["big"], eml, work, with_import=largest and bool(args.import_repeat))
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if not args.keep:
        shutil.rmtree(store.parent, ignore_errors=True)
    for label in ("empty-pg", "big-pg"):
        if label in stores:
            POSTGRES.drop(stores[label])
    return report


POSTGRES = None  # --postgresql: a bench.fetch.BenchPostgres


def copy_to_postgres(source: Path, work: Path) -> tuple[str, dict]:
    """``espomail store copy`` of a SQLite store into a new database: its URL and the figures."""
    url = POSTGRES.new_database()
    print(f"-- store copy of {source.parent.name} into PostgreSQL", flush=True)
    run = Run([storegen.espomail_binary(), "store", "copy", "--to", url, "--json"], storegen.cli_env(source), work)
    figures: dict = {"seconds": round(run.seconds, 1), "exit": run.returncode, "db_mb": POSTGRES.database_mb(url)}
    try:
        answer = json.loads(run.stdout)
        figures["ok"] = answer["ok"]
        figures["rows"] = {t["table"]: t["target"] for t in answer["tables"]}
    except (ValueError, KeyError):
        figures["ok"], figures["error"] = False, run.error_line()
    print(
        f"   {run.seconds:.0f} s, counts {'equal' if figures['ok'] else 'NOT EQUAL: ' + figures.get('error', '')}, "
        f"database {figures['db_mb'] / 1000:.2f} GB",
        flush=True,
    )
    return url, figures


# -- printing -----------------------------------------------------------------------------------


def _cmd_text(argv: list[str]) -> str:
    return "espomail " + " ".join(argv)


def print_report(report: dict) -> None:
    size = report["emails"]
    gen = report["generation"]
    usage = gen["disk_bytes"]
    print(f"\n== {size:,} emails ({report['contacts']:,} contacts, {report['cases']:,} cases) ==")
    rows = gen["rows"]
    print(
        f"   generation: {gen['seconds']:.0f} s ({size / gen['seconds']:,.0f} emails/s); "
        f"{(usage['db'] + usage['wal'] + usage['packs']) / 1e9:.2f} GB on disk, "
        f"{gen['bytes_per_email'] / 1024:.1f} KiB per email "
        f"(database {gen['db_bytes_per_email'] / 1024:.1f} KiB, raw packs {usage['packs'] / size / 1024:.1f} KiB)"
    )
    print(
        "   rows: "
        + ", ".join(
            f"{name} {rows[name]:,}"
            for name in (
                "emails",
                "email_users",
                "email_teams",
                "email_deliveries",
                "email_events",
                "notifications",
                "stream_notes",
                "attachments",
                "contacts",
                "accounts",
                "cases",
            )  # fmt: skip
            if name in rows
        )
    )
    busiest = rows.get("busiest_account_emails", 0)
    print(f"   busiest account: account:{report['facts']['account']} ({busiest:,} emails)")
    print(f"\n   Commands: wall seconds of the real CLI, best / median of {_runs(report)} (warm page cache)")
    print(f"   {'command':<62} {'empty store':>15} {f'{size:,} emails':>17} {'rows':>5} {'ratio':>7}")
    for key, row in report["commands"].items():
        argv = command_argv(row["argv"], {**report["facts"]})
        empty, big = row["stores"].get("empty"), row["stores"].get("big")
        text = _cmd_text(argv)
        if key in STARTUP:
            what = "start-up" if key == "version" else "start-up, loads every command module"
            print(f"   {text:<62} {empty['best_s']:6.3f} /{empty['median_s']:6.3f}   ({what})")
            continue
        ratio = big["median_s"] / empty["median_s"] if empty and big else None
        over = " !" if big and big["median_s"] > TARGET_S else ""
        note = " (empty: not found)" if empty and empty.get("exit") == 3 else ""
        problem = f"  exit {big['exit']}: {big.get('error', '')}" if big and big.get("exit") else ""
        print(
            f"   {text[:62]:<62} {empty['best_s']:6.3f} /{empty['median_s']:6.3f}  "
            f"{big['best_s']:6.3f} /{big['median_s']:6.3f}{over:<2} {big.get('rows') or 0:>4} "
            f"{ratio:6.2f}x{note}{problem}"
        )
    print(f"   ! = median over the {TARGET_S} s target; ratio = median big / median empty")
    if report.get("postgresql"):
        print_postgres(report)
    imp = report.get("import")
    if imp:
        empty, big = imp["empty"], imp["big"]
        print(
            f"\n   Import of {IMPORT_MESSAGES:,} mailgen messages (seed {IMPORT_SEED}) into account "
            f"{IMPORT_ACCOUNT}, median of {len(big['runs'])}, each into a fresh copy:"
        )
        print(f"   {'store':<22} {'seconds':>8} {'msg/s':>7} {'ms/msg':>7}  summary / what it linked")
        for label, row in (("empty", empty), (f"{size:,} emails", big)):
            if "median_s" not in row:
                print(f"   {label:<22} failed: {row['runs'][-1].get('error', '')}")
                continue
            last = row["runs"][-1]
            summary = last.get("summary", {})
            linked = last.get("linked", {})
            print(
                f"   {label:<22} {row['median_s']:8.2f} {row['msg_per_s']:7.1f} {row['ms_per_msg']:7.2f}  "
                f"new {summary.get('new')}, cases {summary.get('cases_created')}, "
                f"parent {linked.get('with_parent')}, notifications {linked.get('notifications')}, "
                f"notes {linked.get('stream_notes')}"
            )
        if "msg_per_s" in empty and "msg_per_s" in big:
            ratio = big["msg_per_s"] / empty["msg_per_s"]
            verdict = "meets" if ratio >= TARGET_IMPORT_RATIO else "BELOW"
            print(f"   rate big/empty: {ratio:.2f} ({verdict} the target {TARGET_IMPORT_RATIO})")
    statements = report.get("statements")
    if statements:
        estimates = sql_estimates(statements)
        print(
            "\n   SQL per command on the big store (reads re-run one by one; writes not timed): "
            + "; ".join(f"{k} {v['statements']} statements, reads {v['read_ms']:.1f} ms" for k, v in estimates.items())
        )
        flagged = [s for s in statements if s["flags"]]
        print(
            f"\n   Statements: {len(statements)} distinct reads/writes of the commands"
            + (" and the import" if any("import" in s["sources"] for s in statements) else "")
            + f"; {len(flagged)} flagged (>= {SLOW_STATEMENT_MS} ms, a scan or a sort of a big table):"
        )
        for item in flagged:
            ms = f"{item['ms']:.1f} ms" if item.get("ms") is not None else "write"
            print(f"   - [{', '.join(sorted(set(item['sources'])))}] {ms}, x{item['count']}: {item['shape'][:300]}")
            for line in item["plan"]:
                print(f"       {line}")
        slowest = [s for s in statements if s.get("ms") is not None][:5]
        print("   slowest reads: " + "; ".join(f"{s['ms']:.2f} ms {s['shape'][:60]}..." for s in slowest))


def print_postgres(report: dict) -> None:
    size = report["emails"]
    for label, copied in report["postgresql"].items():
        rows = copied.get("rows", {})
        print(
            f"\n   PostgreSQL: store {label} {copied['seconds']:.0f} s ({rows.get('emails', 0):,} emails, "
            f"{rows.get('raw sources', 0):,} raw sources; counts {'equal' if copied.get('ok') else 'NOT EQUAL'}), "
            f"database {copied['db_mb'] / 1000:.2f} GB"
        )
    print(f"   {'command on PostgreSQL':<62} {'empty store':>15} {f'{size:,} emails':>17} {'rows':>5} {'pg/sqlite':>9}")
    for key, row in report["commands"].items():
        if key in STARTUP:
            continue
        empty, big, sqlite_big = row["stores"].get("empty-pg"), row["stores"].get("big-pg"), row["stores"].get("big")
        if not (empty and big):
            continue
        text = _cmd_text(command_argv(row["argv"], {**report["facts"]}))
        over = " !" if big["median_s"] > TARGET_S else ""
        problem = f"  exit {big['exit']}: {big.get('error', '')}" if big.get("exit") else ""
        versus = big["median_s"] / sqlite_big["median_s"] if sqlite_big else None
        print(
            f"   {text[:62]:<62} {empty['best_s']:6.3f} /{empty['median_s']:6.3f}  "
            f"{big['best_s']:6.3f} /{big['median_s']:6.3f}{over:<2} {big.get('rows') or 0:>4} "
            f"{(f'{versus:.2f}x' if versus else '-'):>9}{problem}"
        )
    print("   pg/sqlite = median on the big PostgreSQL store / median on the big SQLite store (same rounds)")


def _runs(report: dict) -> int:
    first = next(iter(report["commands"].values()))
    return len(next(iter(first["stores"].values()))["runs_s"])


def print_summary(results: dict) -> None:
    sizes = results["sizes"]
    if not sizes:
        return
    print("\n== Summary: import time per message by store size (each measured alternately with the empty store) ==")
    print(f"   {'emails':>10} {'gen s':>7} {'KiB/email':>10} {'import msg/s':>13} {'ms/msg':>7} "
          f"{'empty msg/s':>12} {'ratio':>6} {'slowest command (median)':>30}")  # fmt: skip
    empties = [
        e["seconds"] for r in sizes for e in (r.get("import") or {}).get("empty", {}).get("runs", []) if e["exit"] == 0
    ]
    if empties:
        median = statistics.median(empties)
        print(
            f"   {0:>10} {'-':>7} {'-':>10} {IMPORT_MESSAGES / median:>13.1f} {median * 1000 / IMPORT_MESSAGES:>7.2f} "
            f"{'':>12} {'1.00':>6}   (all {len(empties)} empty-store imports)"
        )
    for report in sizes:
        gen = report["generation"]
        imp = report.get("import") or {}
        big, empty = imp.get("big", {}), imp.get("empty", {})
        ratio = big["msg_per_s"] / empty["msg_per_s"] if "msg_per_s" in big and "msg_per_s" in empty else None
        worst = max(
            ((k, r["stores"]["big"]["median_s"]) for k, r in report["commands"].items() if "big" in r["stores"]),
            key=lambda kv: kv[1],
            default=("-", 0),
        )
        print(
            f"   {report['emails']:>10,} {gen['seconds']:>7.0f} {gen['bytes_per_email'] / 1024:>10.1f} "
            f"{big.get('msg_per_s', 0):>13.1f} {big.get('ms_per_msg', 0):>7.2f} {empty.get('msg_per_s', 0):>12.1f} "
            f"{(f'{ratio:.2f}' if ratio else '-'):>6} {f'{worst[0]} {worst[1]:.3f} s':>30}"
        )
    print(f"   ratio = import rate into that store / into the empty store (target >= {TARGET_IMPORT_RATIO})")


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--traced"]:  # internal: run the CLI recording its SQL (see plans())
        return traced_main(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
    parser = argparse.ArgumentParser(prog="python -m bench.bigstore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=1_000_000, metavar="N", help="size of the big store")
    parser.add_argument("--sizes", type=int, nargs="+", metavar="N", help="several sizes (0 = the empty store)")
    parser.add_argument("--contacts", type=int, help="contacts (default min(50000, emails/10)); accounts = 1/5")
    parser.add_argument("--cases", type=int, help="cases (default min(20000, emails/50))")
    parser.add_argument("--users", type=int, default=20, help="users u01..uNN, 4 per team (default 20)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command and store (default 5)")
    parser.add_argument("--import-repeat", type=int, default=3, help="imports per store, 0: none (default 3)")
    parser.add_argument("--no-plans", action="store_true", help="skip the statement plans and timings")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated store")
    parser.add_argument("--cache-mb", type=int, default=1024, help="SQLite page cache while generating (MiB)")
    parser.add_argument("--keep", action="store_true", help="keep the generated stores")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse stores kept by --keep with the same parameters (no generation)"
    )
    parser.add_argument("--workdir", type=Path, default=OUT / "bigstore-work", help="where the stores live")
    parser.add_argument(
        "--postgresql", action="store_true", help="also copy each store into a private PostgreSQL and time it there"
    )
    args = parser.parse_args(argv)
    sizes = sorted({n for n in (args.sizes or [args.emails]) if n > 0})
    if not sizes:
        parser.error("give at least one size above 0 (the empty store is always measured)")
    if args.users < 7:
        parser.error("--users must be at least 7 (the commands run as u07)")

    args.workdir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    global POSTGRES
    if args.postgresql:
        from bench.fetch import BenchPostgres

        shutil.rmtree(args.workdir / "postgres", ignore_errors=True)
        POSTGRES = BenchPostgres(args.workdir / "postgres")
        POSTGRES.start()
    try:
        return _main(args, sizes, stamp)
    finally:
        if POSTGRES is not None:
            POSTGRES.stop()


def _main(args: argparse.Namespace, sizes: list[int], stamp: str) -> int:
    info = machine(args.workdir)
    if POSTGRES is not None:
        info["postgresql"] = f"{POSTGRES.version} (private, durable)"
    print_machine(info)
    print(
        "NOTE: absolute times depend on this machine and its load (see the load average); compare the\n"
        "      ratios, which are against baselines measured in this same run, alternately with the big store."
    )
    OUT.mkdir(parents=True, exist_ok=True)
    out_path = OUT / f"bigstore-{stamp}.json"
    results: dict = {"started": stamp, "machine": info, "args": {**vars(args), "workdir": str(args.workdir)}}
    results["sizes"] = []
    base = args.workdir / "base" / "espomail.db"
    empty = args.workdir / "n0" / "espomail.db"
    eml = args.workdir / "import-eml"
    setup = args.workdir / "base" / "setup.json"
    if args.reuse and setup.exists() and json.loads(setup.read_text()).get("users") == args.users and empty.exists():
        results.update(json.loads(setup.read_text())["results"])
        print(f"\n-- reusing the base, the empty store and the import messages in {args.workdir} (--reuse)")
    else:
        for path in (base.parent, empty.parent, eml):
            if path.exists():
                shutil.rmtree(path)
        print("\n-- the base: init, users, teams, role, folders, group accounts, filters (real CLI)", flush=True)
        results["base_s"] = round(storegen.create_base(base, args.users), 1)
        print(f"   {results['base_s']} s", flush=True)
        empty.parent.mkdir(parents=True)
        shutil.copyfile(base, empty)
        os.chmod(empty, 0o600)
        results["import_messages"] = write_import_messages(eml)
        print(
            f"   import messages: {IMPORT_MESSAGES:,} (mailgen seed {IMPORT_SEED}, "
            f"{results['import_messages']['bytes'] / 1e6:.1f} MB) in {eml}",
            flush=True,
        )
        subset = {k: results[k] for k in ("base_s", "import_messages")}
        setup.write_text(json.dumps({"users": args.users, "results": subset}) + "\n")
    for size in sizes:
        report = bench_size(size, args, base, empty, eml, largest=size == sizes[-1])
        results["sizes"].append(report)
        out_path.write_text(json.dumps(results, indent=1) + "\n")
        print_report(report)
    print_summary(results)
    if not args.keep:
        for path in (base.parent, empty.parent, eml):
            shutil.rmtree(path, ignore_errors=True)
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nResults: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
