"""Several fetch hosts: two ``espomail fetch`` processes against one PostgreSQL store, against
one process, over N accounts with new mail, in one run.

One private Dovecot (``espomail.testing.dovecot``, as in ``bench.accounts``) serves N users
(``a001`` ...), each with ``--messages`` messages; one private PostgreSQL
(``bench.fetch.BenchPostgres``: durable settings) holds the stores. Setup, not timed: a
template store made through the CLI (``espomail init``, one ``account add-group`` per
account), copied (CREATE DATABASE ... TEMPLATE) into a store for one host and a store for
two hosts, so both start alike.

Timed, wall time of real child processes, each phase in rounds that alternate the two:

one host   ``espomail fetch --json`` (default settings: 4 worker threads) on the first store;
two hosts  two such processes started together on the second store, each with a data
           directory of its own (its own file locks: two hosts), one ESPOMAIL_DB URL; the
           time is from the start of both to the end of the later one.

Phases: (a) the first fetch of every account (N x messages); (b) ``--new`` new messages
APPENDed (untimed) to every account, then a fetch, ``--rounds`` times.

Checked after every run: the hosts' "new" counts add up to what was appended (a host may
also process, as "retried", deliveries another host stored a moment before), no account was
imported by two runs of one phase, and in the store each message is one email with one
delivery per account (no Message-ID and no (account, email) pair twice), all processed.
Reported: the seconds, the two-host/one-host ratio (target: at most 1.0, "no slower"), how
the accounts were shared, CPU of espomail, Dovecot and PostgreSQL.

    .venv/bin/python -m bench.hosts --accounts 200 [--messages 5] [--new 1] [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.accounts import account_names, child_environment, make_dovecot
from bench.fetch import BenchPostgres, Child, ServerCpu, espomail_binary, machine, print_machine

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PASSWORD = "secret"


class Hosts:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.names = account_names(args.accounts)
        self.binary = espomail_binary()
        if not self.binary:
            raise SystemExit("no espomail executable next to this Python")
        args.workdir.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=f"hosts-{args.accounts}-", dir=args.workdir))
        os.chmod(self.work, 0o755)
        self.dovecot = make_dovecot(self.work / "dovecot", self.names, "reused")
        self.postgres = BenchPostgres(self.work / "postgres")
        self.stores: dict[str, str] = {}
        self.appended = 0
        self.runs: list[dict] = []

    def env(self, host: str, store: str) -> dict[str, str]:
        base = self.work / host
        env = {k: v for k, v in child_environment("cache").items() if not k.startswith("ESPOMAIL_")}
        env.update(
            ESPOMAIL_DB=self.stores[store],
            XDG_CONFIG_HOME=str(base / "config"),
            XDG_DATA_HOME=str(base / "data"),
            HOME=str(base),
            BENCH_PASS=PASSWORD,
        )
        return env

    # -- setup -----------------------------------------------------------------------
    def setup(self) -> None:
        self.dovecot.start()
        self.postgres.start()
        self.imap_cpu = ServerCpu(self.dovecot._pid or 0)
        self.append(self.args.messages)
        self.stores["template"] = self.postgres.new_database()
        env = self.env("setup", "template")
        self._ok([self.binary, "init"], env)
        started = time.perf_counter()
        for name in self.names:
            self._ok(
                [
                    self.binary, "account", "add-group", name, "--address", f"{name}@example.com",
                    "--host", self.dovecot.host, "--port", str(self.dovecot.port), "--security", "none",
                    "--username", name, "--password-env", "BENCH_PASS", "--fetch-since", "2000-01-01",
                ],
                env,
            )  # fmt: skip
        print(f"   {len(self.names)} accounts added in {time.perf_counter() - started:.0f} s", flush=True)
        template = self.stores["template"].rsplit("/", 1)[1]
        for store in ("one", "two"):
            self.stores[store] = self.postgres.server.create_database(f"hosts_{store}", template=template)

    def append(self, count: int) -> None:
        from espomail.testing.messages import build_message

        first = self.appended

        def fill(name: str) -> int:
            batch = [
                build_message(to=f"{name}@example.com", subject=f"{name} {i}", body=f"Hello {name}, #{i}.\n" * 20)
                for i in range(first, first + count)
            ]
            return self.dovecot.append(name, batch)

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            accepted = list(pool.map(fill, self.names))
        assert all(a == count for a in accepted), accepted
        self.appended += count

    def _ok(self, argv: list[str], env: dict[str, str]) -> None:
        step = Child(argv, env, self.work, 300, peak_rss=False)
        if step.returncode != 0:
            raise RuntimeError(f"setup step failed: {' '.join(argv[1:4])}: {step.error_line()}")

    # -- timed runs ------------------------------------------------------------------
    def fetch(self, phase: str, store: str, hosts: int, expected_per_account: int) -> dict:
        envs = [self.env(f"{store}-host{h}", store) for h in range(hosts)]
        imap_before, db_before = self.imap_cpu.settled(), self.postgres.cpu()
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=hosts) as pool:
            children = list(
                pool.map(lambda env: Child([self.binary, "fetch", "--json"], env, self.work, 3600, False), envs)
            )
        seconds = time.perf_counter() - started
        run = {
            "phase": phase,
            "store": store,
            "hosts": hosts,
            "seconds": round(seconds, 3),
            "cpu_s": round(sum(c.cpu_s for c in children), 2),
            "imap_cpu_s": round((self.imap_cpu.settled() or 0) - (imap_before or 0), 2),
            "db_cpu_s": round(self.postgres.cpu() - db_before, 2),
            "load_1m": round(os.getloadavg()[0], 2),
        }
        run.update(self.check(children, store, expected_per_account))
        self.runs.append(run)
        share = "/".join(str(n) for n in run.get("accounts_per_host", []))
        print(
            f"   {phase:<9} {hosts} host{'s' if hosts > 1 else ' '} {seconds:6.2f} s"
            f"  (accounts per host {share}; espomail CPU {run['cpu_s']:.1f} s, Dovecot {run['imap_cpu_s']:.1f} s,"
            f" PostgreSQL {run['db_cpu_s']:.1f} s)" + (f"  {run['note']}" if run["note"] else ""),
            flush=True,
        )
        return run

    def check(self, children: list[Child], store: str, expected: int) -> dict:
        problems = []
        summaries = []
        for child in children:
            if child.returncode != 0:
                problems.append(f"exit {child.returncode}: {child.error_line()}")
                continue
            summaries.append(json.loads(child.stdout))
        importing = dict.fromkeys(self.names, 0)
        per_host = []
        for summary in summaries:
            mine = 0
            for account in summary["accounts"]:
                if account["status"] not in ("ok", "locked"):
                    problems.append(f"{account['name']}: {account['status']} {account.get('error') or ''}")
                importing[account["name"]] += account["status"] == "ok" and account["new"] > 0
                mine += account["status"] == "ok" and account["new"] > 0
            per_host.append(mine)
        new = sum(summary["new"] for summary in summaries)
        if summaries and new != expected * len(self.names):
            problems.append(f"the hosts imported {new} messages, expected {expected * len(self.names)}")
        twice = [n for n, runs in importing.items() if runs > 1]
        if twice:
            problems.append(f"{len(twice)} accounts imported by two runs")
        problems += self.check_store(store)
        return {
            "ok": not problems,
            "note": "WARNING: " + "; ".join(problems) if problems else "",
            "accounts_per_host": per_host,
        }

    def check_store(self, store: str) -> list[str]:
        import psycopg

        total = self.appended * len(self.names)
        with psycopg.connect(self.stores[store]) as conn:
            emails, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM emails").fetchone()
            deliveries = conn.execute("SELECT COUNT(*) FROM email_deliveries").fetchone()[0]
            doubled = conn.execute(
                "SELECT COUNT(*) FROM (SELECT 1 FROM email_deliveries GROUP BY account_id, email_id"
                " HAVING COUNT(*) > 1) AS d"
            ).fetchone()[0]
            unprocessed = conn.execute("SELECT COUNT(*) FROM emails WHERE state <> 'processed'").fetchone()[0]
        problems = []
        if (emails, distinct, deliveries, doubled, unprocessed) != (total, total, total, 0, 0):
            problems.append(
                f"store {store}: {emails} emails, {distinct} Message-IDs, {deliveries} deliveries, "
                f"{doubled} doubled, {unprocessed} not processed; expected {total} of each"
            )
        return problems

    def close(self) -> None:
        self.dovecot.stop()
        self.postgres.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def summarize(runs: list[dict]) -> dict:
    table = {}
    for phase in dict.fromkeys(r["phase"] for r in runs):
        row = {}
        for hosts in (1, 2):
            good = [r["seconds"] for r in runs if r["phase"] == phase and r["hosts"] == hosts and r["ok"]]
            row[hosts] = round(statistics.median(good), 3) if good else None
        row["ratio"] = round(row[2] / row[1], 2) if row[1] and row[2] else None
        table[phase] = row
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hosts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5, help="messages per account before the first fetch")
    parser.add_argument("--new", type=int, default=1, help="new messages per account before each later fetch")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of new mail (one host, then two)")
    parser.add_argument("--workdir", type=Path, default=OUT / "work")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    bench = Hosts(args)
    info = machine(args.workdir)
    print_machine(info)
    try:
        print(f"-- setup: {args.accounts} accounts, {args.messages} messages each", flush=True)
        bench.setup()
        info["postgresql"] = bench.postgres.version
        print(f"-- (a) first fetch: {args.accounts * args.messages:,} messages", flush=True)
        bench.fetch("first", "one", 1, args.messages)
        bench.fetch("first", "two", 2, args.messages)
        for round_ in range(args.rounds):
            bench.append(args.new)
            print(
                f"-- (b) round {round_ + 1}: {args.new} new message(s) in each of {args.accounts} accounts", flush=True
            )
            bench.fetch("new mail", "one", 1, args.new)
            bench.fetch("new mail", "two", 2, args.new)
    finally:
        bench.close()
    table = summarize(bench.runs)
    print("\n== medians: one host vs two hosts on one PostgreSQL ==")
    for phase, row in table.items():
        print(f"   {phase:<9} one {row[1]} s, two {row[2]} s, two/one {row[2] and row['ratio']}x (target <= 1.0)")
    failed = [r for r in bench.runs if not r["ok"]]
    if failed:
        print(f"   {len(failed)} run(s) failed their checks (see above); they do not count")
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"hosts-{stamp}.json"
    out.write_text(json.dumps({"started": stamp, "machine": info, "args": vars(args) | {"workdir": str(args.workdir)},
                               "runs": bench.runs, "medians": table}, indent=1, default=str) + "\n")  # fmt: skip
    print(f"\nResults: {out.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
