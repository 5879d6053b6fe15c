"""The push benchmark: from APPEND on the server to the email stored and cased, with
``espomail watch`` and with cron ``espomail fetch``; and 200 accounts watched at once.

Each part has its own private Dovecot (``espomail.testing.dovecot``) and its own store, made
the way a user would (``espomail account add-group ... --create-case`` through the CLI).
Latency is measured from the moment the server answered the APPEND (a persistent IMAP
connection, TCP_NODELAY) to the moment a poller (a read-only SQLite connection every 5 ms)
first sees the email with that Message-ID processed and linked to its new case.

watch   ``espomail watch`` (a child process, IDLE); ``--messages`` messages one after the
        other, each APPENDed 0.2-1.0 s (random) after the previous one was seen.
cron    simulated cron: ``espomail fetch`` (a child process) at the top of every wall-clock
        minute, as cron runs it; ``--messages`` messages APPENDed at uniformly random times
        over ``--cron-minutes`` minutes (a shortened run; every message still waits for the
        next minute, so the figures are those of a long run). ``--cron-minutes 0`` skips it.
idle    ``--accounts`` accounts (Dovecot users) watched by one ``espomail watch``: once every
        folder is in IDLE (the heartbeat rows say so) and the first fetches are done, CPU of
        the watch process over ``--idle-seconds`` (utime + stime from /proc/PID/stat, as % of
        one core), its RSS (VmRSS; VmHWM is the peak), threads, open IMAP connections, and
        the Dovecot imap processes serving them; then ``--idle-messages`` messages to random
        accounts, one at a time, for the latency with that many accounts watched.

Targets: watch p95 <= 2 s; 200 idle accounts under 2 % of one core and under 200 MB.
Dovecot delays IDLE notifications by about half a second (it batches changes), which is
part of every watch figure here, as it would be with a real Dovecot.

    .venv/bin/python -m bench.latency [--messages 100] [--cron-minutes 3] [--accounts 200]
        [--idle-seconds 60] [--only watch cron idle]

Results are printed and stored in ``bench/out/latency-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.fetch import OUT, espomail_binary, machine, print_machine

PASSWORD = "secret"
POLL_S = 0.005
TARGET_P95_S = 2.0
TARGET_CPU_PCT = 2.0
TARGET_RSS_MB = 200.0


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(at(0.95), 3),
        "max_s": round(ordered[-1], 3),
        "mean_s": round(statistics.fmean(ordered), 3),
    }


# -- the pieces ------------------------------------------------------------------------------------


class Store:
    """A store directory and the environment of the espomail children that use it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True)
        self.db = base / "espomail.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ESPOMAIL_")}
        self.env.update(
            ESPOMAIL_DB=str(self.db),
            XDG_CONFIG_HOME=str(base / "config"),
            XDG_DATA_HOME=str(base / "data"),
            HOME=str(base),
            BENCH_PASS=PASSWORD,
        )
        self.binary = espomail_binary()
        if not self.binary:
            raise SystemExit("no espomail executable next to this Python; run .venv/bin/python -m bench.latency")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"espomail {' '.join(args[:3])} failed: {done.stderr.strip()[-300:]}")
        return done

    def add_account(self, dovecot, name: str) -> None:
        self.run(
            "account", "add-group", name, "--address", f"{name}@example.com", "--host", dovecot.host,
            "--port", str(dovecot.port), "--security", "none", "--username", name,
            "--password-env", "BENCH_PASS", "--fetch-since", "2000-01-01", "--create-case",
        )  # fmt: skip

    def watch(self) -> subprocess.Popen:
        log = open(self.base / "watch.stderr", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen([self.binary, "watch"], env=self.env, stdout=subprocess.DEVNULL, stderr=log)


class Poller(threading.Thread):
    """Notes when each expected email first appears processed and cased (monotonic seconds)."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.seen: dict[str, float] = {}
        self._wanted: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.start()

    def expect(self, message_ids: list[str]) -> None:
        with self._lock:
            self._wanted.update(message_ids)

    def run(self) -> None:
        conn = None
        while not self._stop.is_set():
            with self._lock:
                wanted = sorted(self._wanted - self.seen.keys())
            if wanted:
                try:
                    conn = conn or sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
                    marks = ", ".join("?" for _ in wanted)
                    found = conn.execute(
                        f"""SELECT message_id FROM emails WHERE message_id IN ({marks})
                            AND state = 'processed' AND parent_type = 'case'""",
                        wanted,
                    ).fetchall()
                except sqlite3.Error:
                    found = []
                now = time.monotonic()
                for (message_id,) in found:
                    self.seen.setdefault(message_id, now)
            time.sleep(POLL_S)

    def wait_for(self, message_id: str, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while message_id not in self.seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{message_id} was not stored within {timeout} s")
            time.sleep(POLL_S / 2)
        return self.seen[message_id]

    def stop(self) -> None:
        self._stop.set()


class Appender:
    """A logged-in IMAP connection that APPENDs and returns when the server has the message."""

    def __init__(self, dovecot) -> None:  # noqa: ANN001
        self.dovecot = dovecot
        self.clients: dict = {}

    def append(self, user: str, subject: str, message_id: str) -> float:
        from espomail.testing.messages import build_message

        client = self.clients.get(user)
        if client is None:
            from imapclient import IMAPClient

            client = IMAPClient(self.dovecot.host, port=self.dovecot.port, ssl=False, timeout=60)
            client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.login(user, PASSWORD)
            self.clients[user] = client
        raw = build_message(to=f"{user}@example.com", subject=subject, message_id=message_id)
        client.append("INBOX", raw)
        return time.monotonic()

    def close(self) -> None:
        for client in self.clients.values():
            try:
                client.logout()
            except Exception:  # noqa: BLE001
                pass


def wait_until_watching(store: Store, proc: subprocess.Popen, folders: int, timeout: float = 600) -> float:
    """Seconds until every folder's heartbeat row says idle."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"watch ended: {(store.base / 'watch.stderr').read_text()[-500:]}")
        try:
            with sqlite3.connect(f"file:{store.db}?mode=ro", uri=True, timeout=5) as conn:
                idle = conn.execute("SELECT COUNT(*) FROM watch_heartbeats WHERE mode = 'idle'").fetchone()[0]
            if idle >= folders:
                return time.monotonic() - started
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"not every folder was in IDLE after {timeout} s")


def stop_watch(proc: subprocess.Popen) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# -- the parts -------------------------------------------------------------------------------------


def bench_watch(work: Path, messages: int) -> dict:
    from espomail.testing.dovecot import Dovecot

    with Dovecot(base=work / "dovecot-watch", users=["support"]) as dovecot:
        store = Store(work / "store-watch")
        store.run("init")
        store.add_account(dovecot, "support")
        proc = store.watch()
        poller = Poller(store.db)
        appender = Appender(dovecot)
        try:
            wait_until_watching(store, proc, 1)
            latencies = []
            for i in range(messages):
                message_id = f"<watch-{i}-{time.time_ns()}@bench.example>"
                poller.expect([message_id])
                appended = appender.append("support", f"watch latency {i}", message_id)
                latencies.append(poller.wait_for(message_id) - appended)
                time.sleep(random.uniform(0.2, 1.0))
            stopped = stop_watch(proc)
        finally:
            appender.close()
            poller.stop()
            if proc.poll() is None:
                proc.kill()
    return {**percentiles(latencies), "watch_exit": stopped, "latencies_s": [round(x, 3) for x in latencies]}


def bench_cron(work: Path, messages: int, minutes: int) -> dict:
    from espomail.testing.dovecot import Dovecot

    with Dovecot(base=work / "dovecot-cron", users=["support"]) as dovecot:
        store = Store(work / "store-cron")
        store.run("init")
        store.add_account(dovecot, "support")
        store.run("fetch")  # the first run (fetch-since) is not what a message waits for
        poller = Poller(store.db)
        appender = Appender(dovecot)
        window = minutes * 60
        begin = time.monotonic()
        offsets = sorted(random.uniform(0, window) for _ in range(messages))
        ids = [f"<cron-{i}-{time.time_ns()}@bench.example>" for i in range(messages)]
        poller.expect(ids)
        appended: dict[str, float] = {}
        fetches: list[dict] = []
        done = threading.Event()

        def cron() -> None:
            while not done.is_set():
                wall = time.time()
                time.sleep(60 - wall % 60)  # the top of the next minute
                started = time.monotonic()
                store.run("fetch")
                fetches.append({"at": round(started - begin, 1), "seconds": round(time.monotonic() - started, 2)})

        scheduler = threading.Thread(target=cron, daemon=True)
        scheduler.start()
        try:
            for offset, message_id in zip(offsets, ids, strict=True):
                time.sleep(max(0.0, begin + offset - time.monotonic()))
                appended[message_id] = appender.append("support", "cron latency", message_id)
            for message_id in ids:
                poller.wait_for(message_id, timeout=180)
        finally:
            done.set()
            appender.close()
            poller.stop()
        latencies = [poller.seen[m] - appended[m] for m in ids]
    return {
        **percentiles(latencies),
        "mode": f"simulated cron: fetch at the top of each wall-clock minute; {messages} messages at uniformly "
        f"random times over {minutes} min",
        "fetch_runs": fetches,
    }


INOTIFY_WARNING = "Inotify instance limit"


def idle_dovecot(base: Path, users: list[str], idle_check_s: int | None):  # noqa: ANN201
    """A private Dovecot whose limits let hundreds of connections stay open.

    Dovecot learns of new mail for an IDLE client through inotify, one instance per imap
    process; past the kernel's per-user limit (``fs.inotify.max_user_instances``, 128 by
    default, shared by every Dovecot running as the same user) it warns and falls back to
    looking every ``mailbox_idle_check_interval`` (30 s by default). A production server
    raises the limit (Dovecot's warning says so); a benchmark in a container may not be
    allowed to, so ``idle_check_s`` shortens the fallback instead."""
    from espomail.testing.dovecot import Dovecot

    class Many(Dovecot):
        def _config(self, uid: int, gid: int) -> str:
            extra = (
                "default_process_limit = 2000\n"
                "default_client_limit = 8000\n"
                "mail_max_userip_connections = 100\n"
                "service imap {\n  process_limit = 2000\n}\n"
                "service anvil {\n  client_limit = 8000\n}\n"
            )
            if idle_check_s:
                extra += f"mailbox_idle_check_interval = {idle_check_s} secs\n"
            return super()._config(uid, gid) + extra

    return Many(base=base, users=users)


def without_inotify(dovecot) -> int:  # noqa: ANN001
    """imap processes that found no inotify instance left (Dovecot's log says so)."""
    log = dovecot.base / "dovecot.log"
    return log.read_text(errors="replace").count(INOTIFY_WARNING) if log.exists() else 0


def proc_stat(pid: int) -> dict:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "cpu_ticks": int(fields[11]) + int(fields[12]),  # utime + stime
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "hwm_mb": int(status["VmHWM"].split()[0]) / 1024,
        "threads": int(status["Threads"]),
    }


def sockets_of(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return count


def imap_processes(master_pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            if name == "imap" and int(fields[1].split()[1]) == master_pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def bench_idle(work: Path, accounts: int, seconds: float, messages: int, idle_check_s: int | None) -> dict:
    names = [f"w{i:03d}" for i in range(1, accounts + 1)]
    dovecot = idle_dovecot(work / "dovecot-idle", names, idle_check_s)
    dovecot.start()
    proc = None
    try:
        store = Store(work / "store-idle")
        store.run("init")
        started = time.monotonic()
        for done, name in enumerate(names, 1):
            store.add_account(dovecot, name)
            if done % 50 == 0 or done == len(names):
                print(f"   {done} accounts added ({time.monotonic() - started:.0f} s)", flush=True)
        proc = store.watch()
        to_idle = wait_until_watching(store, proc, accounts)
        print(f"   all {accounts} folders in IDLE after {to_idle:.1f} s; settling 10 s", flush=True)
        time.sleep(10)
        ticks = os.sysconf("SC_CLK_TCK")
        servers = imap_processes(dovecot._pid or 0)  # noqa: SLF001
        server_before = sum(_ticks(p) for p in servers)
        before, wall = proc_stat(proc.pid), time.monotonic()
        time.sleep(seconds)
        after, wall = proc_stat(proc.pid), time.monotonic() - wall
        server_after = sum(_ticks(p) for p in servers)
        result = {
            "accounts": accounts,
            "seconds_to_all_idle": round(to_idle, 1),
            "measured_s": round(wall, 1),
            "cpu_pct_of_one_core": round((after["cpu_ticks"] - before["cpu_ticks"]) / ticks / wall * 100, 3),
            "rss_mb": round(after["rss_mb"], 1),
            "peak_rss_mb": round(after["hwm_mb"], 1),
            "threads": after["threads"],
            "imap_connections": sockets_of(proc.pid),
            "dovecot_imap_processes": len(servers),
            "dovecot_imap_cpu_pct_of_one_core": round((server_after - server_before) / ticks / wall * 100, 3),
        }
        poller = Poller(store.db)
        appender = Appender(dovecot)
        latencies = []
        try:
            for i in range(messages):
                user = random.choice(names)
                message_id = f"<idle-{i}-{time.time_ns()}@bench.example>"
                poller.expect([message_id])
                appended = appender.append(user, f"latency with {accounts} watched", message_id)
                latencies.append(poller.wait_for(message_id) - appended)
                time.sleep(random.uniform(0.2, 1.0))
        finally:
            appender.close()
            poller.stop()
        result["latency"] = {**percentiles(latencies), "latencies_s": [round(x, 3) for x in latencies]}
        result["dovecot_processes_without_inotify"] = without_inotify(dovecot)
        result["dovecot_mailbox_idle_check_interval_s"] = idle_check_s or 30
        result["watch_exit"] = stop_watch(proc)
        return result
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        dovecot.stop()


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


# -- the report ------------------------------------------------------------------------------------


def _line(name: str, figures: dict) -> str:
    return (
        f"   {name:<28} p50 {figures['p50_s']:7.3f} s   p95 {figures['p95_s']:7.3f} s   "
        f"max {figures['max_s']:7.3f} s   (n={figures['n']})"
    )


def print_report(report: dict) -> None:
    print("\nAPPEND -> stored and cased")
    if "watch" in report:
        watch = report["watch"]
        verdict = "met" if watch["p95_s"] <= TARGET_P95_S else "MISSED"
        print(_line("espomail watch", watch) + f"   target p95 <= {TARGET_P95_S:g} s: {verdict}")
    if "cron" in report:
        print(_line("cron fetch every minute", report["cron"]) + f"   mean {report['cron']['mean_s']:.1f} s")
        print(f"   ({report['cron']['mode']})")
    if "idle" in report:
        idle = report["idle"]
        if idle["latency"]["n"]:
            print(_line(f"watch, {idle['accounts']} accounts", idle["latency"]))
            lacking = idle["dovecot_processes_without_inotify"]
            if lacking:
                print(
                    f"   ({lacking} of Dovecot's imap processes had no inotify instance left "
                    "(fs.inotify.max_user_instances): they look for new mail every "
                    f"{idle['dovecot_mailbox_idle_check_interval_s']} s, mailbox_idle_check_interval)"
                )
        cpu_ok = idle["cpu_pct_of_one_core"] < TARGET_CPU_PCT
        rss_ok = idle["rss_mb"] < TARGET_RSS_MB
        print(f"\n{idle['accounts']} accounts watched, idle for {idle['measured_s']:.0f} s:")
        print(
            f"   CPU {idle['cpu_pct_of_one_core']:.3f} % of one core (target < {TARGET_CPU_PCT:g} %: "
            f"{'met' if cpu_ok else 'MISSED'}); RSS {idle['rss_mb']:.1f} MB, peak {idle['peak_rss_mb']:.1f} MB "
            f"(target < {TARGET_RSS_MB:g} MB: {'met' if rss_ok else 'MISSED'})"
        )
        print(
            f"   {idle['threads']} threads, {idle['imap_connections']} IMAP connections; Dovecot: "
            f"{idle['dovecot_imap_processes']} imap processes, {idle['dovecot_imap_cpu_pct_of_one_core']:.3f} % "
            f"of one core; all folders in IDLE {idle['seconds_to_all_idle']:.1f} s after start"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100, help="messages for the watch and the cron latency")
    parser.add_argument("--cron-minutes", type=int, default=3, help="length of the simulated cron run (0: skip)")
    parser.add_argument("--accounts", type=int, default=200, help="accounts watched at once (idle part)")
    parser.add_argument("--idle-seconds", type=float, default=60, help="how long the idle CPU is measured")
    parser.add_argument("--idle-messages", type=int, default=20, help="latency messages with all accounts watched")
    parser.add_argument(
        "--dovecot-idle-check",
        type=int,
        default=1,
        metavar="S",
        help="idle part: Dovecot's mailbox_idle_check_interval, its fallback when it has no inotify instance "
        "left (0: Dovecot's default, 30 s)",
    )
    parser.add_argument("--only", nargs="+", choices=("watch", "cron", "idle"), default=("watch", "cron", "idle"))
    parser.add_argument("--keep", action="store_true", help="keep the servers' and stores' files in bench/out")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="latency-", dir=OUT))
    os.chmod(work, 0o755)  # Dovecot's unprivileged processes must reach its directory
    info = machine(work)
    print_machine(info)
    report: dict = {"machine": info, "args": vars(args) | {"only": list(args.only)}}
    try:
        if "watch" in args.only:
            print(f"watch: {args.messages} messages, one at a time", flush=True)
            report["watch"] = bench_watch(work, args.messages)
        if "cron" in args.only and args.cron_minutes > 0:
            print(f"cron: {args.messages} messages over {args.cron_minutes} min, fetch every minute", flush=True)
            report["cron"] = bench_cron(work, args.messages, args.cron_minutes)
        if "idle" in args.only and args.accounts > 0:
            print(f"idle: {args.accounts} accounts watched at once", flush=True)
            report["idle"] = bench_idle(
                work, args.accounts, args.idle_seconds, args.idle_messages, args.dovecot_idle_check or None
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_report(report)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = OUT / f"latency-{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
