"""The many-accounts benchmark: ``espomail fetch`` over N accounts against one-round-trip
baselines, in one run.

One private Dovecot (``espomail.testing.dovecot``) serves N users (``a001`` ...), each with
``--messages`` small messages (``build_message``). Setup, not timed: the messages are
APPENDed, and a store is made the way a user would (``espomail init``, then
``espomail account add-group aNNN --address aNNN@example.com --host 127.0.0.1 --port PORT
--security none --username aNNN --password-env BENCH_PASS --fetch-since 2000-01-01`` per
account, through the CLI). That store is copied once per ``--workers`` setting, before any
fetch, so every setting starts from the same fresh store; the Dovecot is shared (fetching
keeps mail unread and changes nothing on the server).

Timed, each as a real child process, wall time (``time.perf_counter`` around it), and in
this order:

baselines  ``espomail --help`` (the CLI's start-up); a minimal raw-socket client, a child
           Python process that, per account, connects, LOGIN, ``STATUS INBOX (UIDVALIDITY
           UIDNEXT MESSAGES)``, LOGOUT: sequentially (``status seq``: what one round trip
           per account costs) and on 4 threads (``status x4``); the same on 4 threads with
           imapclient, the library espomail uses (``imapclient x4``). Each ``--baseline-repeat``
           times; the median counts. One untimed pass warms Dovecot up first.
(a) first  ``espomail fetch --json`` on each fresh store: all N accounts, N x messages.
(b) steady ``espomail fetch --json`` again, no new mail: every folder is unchanged, so per
           account it is a lock, a login, one STATUS and the bookkeeping. ``--steady-repeat``
           rounds; in each round every workers setting runs once (interleaved, so a burst
           of load from elsewhere does not hit one setting only). Best and median.
(c) new    one new message APPENDed (untimed) to each of ``--new-accounts`` accounts
           (different ones each round), then ``espomail fetch --json`` on every store.
           ``--new-repeat`` rounds; median.

Workers: ``ESPOMAIL_WORKERS`` (accounts fetched at the same time) is set to each value of
``--workers``; the value 4 leaves it unset, i.e. espomail's default.

Every fetch's JSON is checked: each account's status is ``ok``, ``new`` is what was put
there (5 each on the first fetch, 0 in the steady state, 1 in the chosen accounts in
(c)), no failed imports. A run that fails the check is printed with a WARNING and does
not count.

Figures: seconds (wall), CPU s (user + system of the espomail process and children),
server CPU s (CPU of Dovecot's reaped children - login, auth and imap processes - during
the run), peak RSS; ratios of (b) and (c) to the baselines (``x`` = times as long). Targets:
(b) under 5 s, (c) under 8 s, at the default workers. When a target is missed (or with
``--profile always``) one more (b) and one more (c) fetch run under cProfile, every
thread profiled and the profiles merged (times are thread-seconds: waiting threads add
up), and the top functions are printed; the ``.prof`` files stay in ``bench/out/``
(``python -m pstats FILE``).

The server: ``--dovecot-login reused`` (the default) runs the test Dovecot as
``espomail.testing.dovecot`` configures it: login processes reused (``service imap-login {
service_count = 0; process_min_avail = 2 }``, Dovecot's documented high-performance login
mode). ``--dovecot-login security`` is Dovecot's out-of-the-box high-security mode, a new
imap-login process for every connection (``service_count = 1``). ``--dovecot-login
performance`` adds pre-forked imap processes (``service imap { process_min_avail = 2 x
cores }``), as a busy production server runs. With N logins per fetch, the server's cost
per login decides much of (b): compare ``server CPU s`` of ``status seq`` and of (b), and
run the modes to see how much of a fetch is the server's.
The lines ``per account`` divide the (b) and ``status seq`` medians by N.

Absolute times depend on the machine and on what else runs on it: the machine and the
1-minute load average before each phase are printed and stored in
``bench/out/accounts-<timestamp>.json``. Compare the ratios, which are against baselines
measured in the same run.

    .venv/bin/python -m bench.accounts --accounts 200 [--workers 1 4 8] [--dovecot-login performance]
        [--profile always] [--bytecode env] [--keep]

``--bytecode cache`` (the default) gives the children a bytecode cache in
``bench/out/pycache`` (PYTHONPYCACHEPREFIX), so they start as an installed espomail
does even where the environment sets PYTHONDONTWRITEBYTECODE; ``--bytecode env`` keeps
the environment's setting.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import io
import json
import os
import pstats
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.fetch import Child, ServerCpu, espomail_binary, machine, print_machine

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PASSWORD = "secret"
DEFAULT_WORKERS = 4  # espomail's default (config key workers); the run leaves it unset
TARGETS = {"b": 5.0, "c": 8.0}
PHASES = {
    "a": "(a) first fetch",
    "b": "(b) steady state, no new mail",
    "c": "(c) new mail in some accounts",
}


def account_names(n: int) -> list[str]:
    width = max(3, len(str(n)))
    return [f"a{i:0{width}d}" for i in range(1, n + 1)]


PYCACHE = OUT / "pycache"


def child_environment(bytecode: str) -> dict[str, str]:
    """The environment of every timed child. ``cache``: Python's bytecode cache on, in
    ``bench/out/pycache`` (PYTHONPYCACHEPREFIX: nothing is written into the source tree),
    so the children start as an installed espomail does (pip compiles on install), even
    where the environment sets PYTHONDONTWRITEBYTECODE and the tree has no .pyc; it is
    filled by the untimed setup. ``env``: the environment as it is."""
    env = dict(os.environ)
    if bytecode == "cache":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def bytecode_note(bytecode: str) -> str:
    given = "PYTHONDONTWRITEBYTECODE=1" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "default"
    if bytecode == "cache":
        return f"children use a bytecode cache in {PYCACHE.relative_to(ROOT)} (environment: {given})"
    return f"children run with the environment's bytecode setting ({given})"


def load1() -> float:
    return round(os.getloadavg()[0], 2)


# -- the baselines: one login and one STATUS per account ------------------------------------


def raw_status(host: str, port: int, user: str) -> int:
    """Connect, LOGIN, STATUS INBOX, LOGOUT on a raw socket; the INBOX's MESSAGES."""
    with socket.create_connection((host, port), timeout=60) as sock:
        reader = sock.makefile("rb")

        def command(tag: bytes, text: bytes) -> list[bytes]:
            sock.sendall(tag + b" " + text + b"\r\n")
            untagged = []
            while True:
                line = reader.readline()
                if not line:
                    raise ConnectionError(f"connection closed after {text.split()[0]!r}")
                if line.startswith(tag + b" "):
                    if not line.startswith(tag + b" OK"):
                        raise RuntimeError(line.decode(errors="replace").strip())
                    return untagged
                untagged.append(line)

        if not reader.readline().startswith(b"* OK"):
            raise RuntimeError("no IMAP greeting")
        command(b"a", b'LOGIN "%s" "%s"' % (user.encode(), PASSWORD.encode()))
        lines = command(b"b", b"STATUS INBOX (UIDVALIDITY UIDNEXT MESSAGES)")
        command(b"c", b"LOGOUT")
    for line in lines:
        if line.startswith(b"* STATUS"):
            words = line.rsplit(b"(", 1)[1].rstrip(b")\r\n").split()
            return int(dict(zip(words[::2], words[1::2], strict=True))[b"MESSAGES"])
    raise RuntimeError("no STATUS response")


def imapclient_status(host: str, port: int, user: str) -> int:
    from imapclient import IMAPClient

    client = IMAPClient(host, port=port, ssl=False, timeout=60)
    client.login(user, PASSWORD)
    found = client.folder_status("INBOX", [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"])
    client.logout()
    return int(found[b"MESSAGES"])


CLIENTS = {"raw": raw_status, "imapclient": imapclient_status}


def status_pass(host: str, port: int, users: list[str], threads: int, kind: str = "raw") -> dict:
    one = CLIENTS[kind]
    started = time.perf_counter()
    if threads <= 1:
        counts = [one(host, port, user) for user in users]
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
            counts = list(pool.map(lambda user: one(host, port, user), users))
    return {"seconds": time.perf_counter() - started, "accounts": len(counts), "messages": sum(counts)}


# -- the server ------------------------------------------------------------------------------

LOGIN_MODES = {
    "reused": "the test fixture's: imap-login processes reused (service_count = 0, process_min_avail = 2)",
    "security": "Dovecot's out-of-the-box mode: a new imap-login process per connection (service_count = 1)",
    "performance": "login processes reused; imap processes pre-forked (process_min_avail = 2 x cores)",
}
FIXTURE_LOGIN = "  service_count = 0\n  process_min_avail = 2\n"


def make_dovecot(base: Path, users: list[str], login_mode: str):  # noqa: ANN201
    """The private Dovecot of ``espomail.testing.dovecot``, its login and imap services set
    as ``login_mode`` says (see LOGIN_MODES)."""
    from espomail.testing.dovecot import Dovecot

    if login_mode == "reused":
        return Dovecot(base=base, users=users)
    cores = os.cpu_count() or 1

    class ModeDovecot(Dovecot):
        def _config(self, uid: int, gid: int) -> str:
            text = super()._config(uid, gid)
            if FIXTURE_LOGIN not in text:
                raise RuntimeError("unexpected Dovecot config: the fixture's imap-login settings are not there")
            if login_mode == "security":
                return text.replace(FIXTURE_LOGIN, "  service_count = 1\n", 1)
            return text + f"service imap {{\n  process_min_avail = {2 * cores}\n}}\n"

    return ModeDovecot(base=base, users=users)


# -- the espomail store ------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.names = account_names(args.accounts)
        self.binary = espomail_binary()
        if not self.binary:
            raise SystemExit("no espomail executable next to this Python; run .venv/bin/python -m bench.accounts")
        args.workdir.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=f"accounts-{args.accounts}-", dir=args.workdir))
        os.chmod(self.work, 0o755)  # Dovecot's unprivileged processes must reach work/dovecot
        self.dovecot = make_dovecot(self.work / "dovecot", self.names, args.dovecot_login)
        self.mail = dict.fromkeys(self.names, 0)  # messages on the server per account
        self.seen = {w: dict.fromkeys(self.names, 0) for w in args.workers}  # fetched per store
        self.runs: list[dict] = []
        self.server: ServerCpu | None = None

    # -- environment -------------------------------------------------------------------
    def env(self, store: str, workers: int | None = None) -> dict[str, str]:
        base = self.work / store
        env = {k: v for k, v in child_environment(self.args.bytecode).items() if not k.startswith("ESPOMAIL_")}
        env.update(
            ESPOMAIL_DB=str(base / "espomail.db"),
            XDG_CONFIG_HOME=str(base / "config"),
            XDG_DATA_HOME=str(base / "data"),
            HOME=str(base),
            BENCH_PASS=PASSWORD,
        )
        if workers is not None and workers != DEFAULT_WORKERS:
            env["ESPOMAIL_WORKERS"] = str(workers)
        return env

    # -- setup (not timed) -------------------------------------------------------------
    def setup(self) -> dict:
        from espomail.testing.messages import build_message

        started = time.perf_counter()
        self.dovecot.start()
        self.server = ServerCpu(self.dovecot._pid or 0)

        def fill(name: str) -> int:
            batch = [
                build_message(to=f"{name}@example.com", subject=f"{name} message {i}", body=f"Hello {name}, #{i}.\n")
                for i in range(1, self.args.messages + 1)
            ]
            return self.dovecot.append(name, batch)

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for name, accepted in zip(self.names, pool.map(fill, self.names), strict=True):
                self.mail[name] = accepted
        appended = time.perf_counter() - started
        print(f"   {sum(self.mail.values()):,} messages appended in {appended:.1f} s", flush=True)

        started = time.perf_counter()
        template = "store-template"
        (self.work / template).mkdir()
        env = self.env(template)
        self._espomail_ok([self.binary, "init"], env)

        def add(name: str) -> None:
            argv = [
                self.binary, "account", "add-group", name,
                "--address", f"{name}@example.com",
                "--host", self.dovecot.host,
                "--port", str(self.dovecot.port),
                "--security", "none",
                "--username", name,
                "--password-env", "BENCH_PASS",
                "--fetch-since", "2000-01-01",
            ]  # fmt: skip
            self._espomail_ok(argv, env)

        # One at a time: two concurrent 'account add-group' commands can fail with
        # "database is locked" (a read transaction upgraded to a write).
        for done, name in enumerate(self.names, 1):
            add(name)
            if done % 50 == 0 or done == len(self.names):
                print(f"   {done} accounts added ({time.perf_counter() - started:.0f} s)", flush=True)
        accounts_s = time.perf_counter() - started
        self.warm_up()
        for w in self.args.workers:
            shutil.copytree(self.work / template, self.work / f"store-w{w}", symlinks=True)
        return {"append_s": round(appended, 1), "add_accounts_s": round(accounts_s, 1)}

    def warm_up(self) -> None:
        """A whole fetch on a throw-away store of one account, so that every module a fetch
        imports is compiled (and its bytecode cached) before anything is timed."""
        from espomail.testing.messages import build_message

        self.dovecot.add_user("warmup")
        self.dovecot.append("warmup", build_message(to="warmup@example.com"))
        (self.work / "store-warmup").mkdir()
        env = self.env("store-warmup")
        self._espomail_ok([self.binary, "init"], env)
        argv = [
            self.binary, "account", "add-group", "warmup", "--address", "warmup@example.com",
            "--host", self.dovecot.host, "--port", str(self.dovecot.port), "--security", "none",
            "--username", "warmup", "--password-env", "BENCH_PASS", "--fetch-since", "2000-01-01",
        ]  # fmt: skip
        self._espomail_ok(argv, env)
        self._espomail_ok([self.binary, "fetch", "--json"], env)
        self._espomail_ok([self.binary, "fetch", "--json"], env)
        shutil.rmtree(self.work / "store-warmup", ignore_errors=True)

    def _espomail_ok(self, argv: list[str], env: dict[str, str]) -> None:
        step = Child(argv, env, self.work, 300)
        if step.returncode != 0:
            raise RuntimeError(f"setup step failed: {' '.join(argv[1:4])}: {step.error_line()}")

    # -- timed runs --------------------------------------------------------------------
    def record(self, phase: str, child: Child, before: float | None, **fields) -> dict:
        after = self.server.settled() if self.server else None
        run = {
            "phase": phase,
            "seconds": round(child.seconds, 3),
            "cpu_s": round(child.cpu_s, 2),
            "server_cpu_s": round(after - before, 2) if before is not None and after is not None else None,
            "peak_rss_mb": round(child.peak_rss_mb, 1),
            "peak_rss_exact": child.rss_exact,
            "load_1m": load1(),
            "ok": child.returncode == 0,
            "note": "",
        }
        run.update(fields)
        self.runs.append(run)
        return run

    def baseline(self, phase: str, argv: list[str], repeat: int, check=None) -> None:  # noqa: ANN001
        Child(argv, child_environment(self.args.bytecode), ROOT, self.args.timeout)  # untimed warm-up
        for i in range(repeat):
            before = self.server.settled() if self.server else None
            child = Child(argv, child_environment(self.args.bytecode), ROOT, self.args.timeout)
            run = self.record(phase, child, before, repeat=i)
            if child.returncode != 0:
                run["note"] = child.error_line()
            elif check:
                run.update(check(child))
            _progress(run)

    def status_argv(self, threads: int, kind: str) -> list[str]:
        return [
            sys.executable, "-m", "bench.accounts", "--status-client",
            self.dovecot.host, str(self.dovecot.port), str(threads), str(len(self.names)), kind,
        ]  # fmt: skip

    def check_status(self, child: Child) -> dict:
        data = json.loads(child.stdout)
        expected = sum(self.mail.values())
        fields = {"inner_seconds": round(data["seconds"], 3)}
        if data["accounts"] != len(self.names) or data["messages"] != expected:
            fields["ok"] = False
            fields["note"] = f"WARNING: {data['accounts']} accounts, {data['messages']} messages; expected {expected}"
        return fields

    def fetch(self, phase: str, workers: int, expected: dict[str, int], **fields) -> dict:
        env = self.env(f"store-w{workers}", workers)
        before = self.server.settled() if self.server else None
        child = Child([self.binary, "fetch", "--json"], env, self.work, self.args.timeout)
        run = self.record(phase, child, before, workers=workers, **fields)
        run.update(self.check_fetch(child, expected))
        if run["ok"]:
            for name, new in expected.items():
                self.seen[workers][name] += new
        _progress(run)
        return run

    def check_fetch(self, child: Child, expected: dict[str, int]) -> dict:
        if child.returncode != 0:
            return {"ok": False, "note": f"WARNING: exit {child.returncode}: {child.error_line()}"}
        try:
            data = json.loads(child.stdout)
        except ValueError:
            return {"ok": False, "note": f"WARNING: fetch --json printed no JSON: {child.stdout[:200]!r}"}
        accounts = {a["name"]: a for a in data.get("accounts", [])}
        problems = []
        not_ok = [n for n in self.names if accounts.get(n, {}).get("status") != "ok"]
        if not_ok:
            first = accounts.get(not_ok[0], {})
            problems.append(
                f"{len(not_ok)} accounts not ok (e.g. {not_ok[0]}: {first.get('status')} {first.get('error') or ''})"
            )
        wrong = [n for n in self.names if n in accounts and accounts[n].get("new") != expected.get(n, 0)]
        if wrong:
            got = accounts[wrong[0]].get("new")
            problems.append(f"{len(wrong)} accounts with a wrong count (e.g. {wrong[0]}: new={got})")
        want = sum(expected.values())
        if data.get("new") != want:
            problems.append(f"new={data.get('new')}, expected {want}")
        if data.get("failed"):
            problems.append(f"failed={data['failed']}")
        result = {"new": data.get("new"), "duplicates": data.get("duplicates"), "failed": data.get("failed")}
        if problems:
            result.update(ok=False, note="WARNING: " + "; ".join(problems))
        return result

    def pending(self, workers: int) -> dict[str, int]:
        """What the store of this workers setting has not fetched yet, per account."""
        return {n: self.mail[n] - self.seen[workers][n] for n in self.names}

    def add_new_mail(self, round_: int) -> list[str]:
        """One new message in ``--new-accounts`` accounts, different ones each round."""
        from espomail.testing.messages import build_message

        count = min(self.args.new_accounts, len(self.names))
        step = max(1, len(self.names) // count)
        chosen = list(dict.fromkeys(self.names[(round_ + k * step) % len(self.names)] for k in range(count)))
        for name in chosen:
            raw = build_message(to=f"{name}@example.com", subject=f"new mail, round {round_ + 1}")
            self.mail[name] += self.dovecot.append(name, raw)
        return chosen

    # -- profile -----------------------------------------------------------------------
    def profile(self, phase: str, workers: int, expected: dict[str, int], stamp: str) -> dict:
        path = OUT / f"accounts-{stamp}-{phase}.prof"
        env = self.env(f"store-w{workers}", workers)
        argv = [sys.executable, "-m", "bench.accounts", "--profile-child", str(path), "fetch", "--json"]
        child = Child(argv, env, ROOT, self.args.timeout)
        check = self.check_fetch(child, expected)
        if check.get("ok", True):
            for name, new in expected.items():
                self.seen[workers][name] += new
        result = {
            "phase": phase,
            "workers": workers,
            "file": str(path.relative_to(ROOT)),
            "seconds_under_profiler": round(child.seconds, 2),
            "check": check,
        }
        if path.exists():
            result["top_tottime"] = top_functions(path, "tottime", self.args.profile_top)
            result["top_cumulative"] = top_functions(path, "cumulative", self.args.profile_top)
        return result

    def close(self) -> None:
        self.dovecot.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def _progress(run: dict) -> None:
    what = run["phase"] + (f" w={run['workers']}" if "workers" in run else "")
    state = f"{run['seconds']:.2f} s" if run["ok"] else "failed"
    extra = f"  cpu {run['cpu_s']:.2f} s, server cpu {run['server_cpu_s']} s, load {run['load_1m']}"
    note = f"  {run['note']}" if run["note"] else ""
    print(f"   {what:<22} {state:>9}{extra}{note}", flush=True)


# -- profiling a fetch in a child process ------------------------------------------------


def profile_child(out: str, argv: list[str]) -> int:
    """Run the espomail CLI with every thread profiled; dump the merged profile to ``out``."""
    import cProfile
    import threading

    main = cProfile.Profile()
    profiles = [main]
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        try:
            prof.enable()
        except ValueError:  # Python 3.12+: one profiler at a time; the main one sees all threads
            original(self)
            return
        profiles.append(prof)
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread.run = run
    main.enable()
    code = 0
    try:
        from espomail.cli import main as espomail_main

        espomail_main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        main.disable()
        stats = pstats.Stats(main)
        for prof in profiles[1:]:
            stats.add(prof)
        stats.dump_stats(out)
    return code


def top_functions(path: Path, key: str, count: int) -> list[dict]:
    stats = pstats.Stats(str(path))
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        rows.append(
            {
                "function": _short(filename, line, name),
                "calls": calls,
                "tottime": round(tottime, 3),
                "cumulative": round(cumtime, 3),
            }
        )
    rows.sort(key=lambda r: r[key], reverse=True)
    return rows[:count]


def _short(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name
    for marker in ("site-packages/", "/espomail/", "/lib/python"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            if marker == "/espomail/":
                filename = "espomail/" + filename
            break
    return f"{filename}:{line}({name})"


# -- the report ----------------------------------------------------------------------------


def summarize(runs: list[dict], workers: list[int]) -> dict:
    groups: dict[str, dict] = {}
    keys = [
        ("startup", "espomail --help (start-up)", None),
        ("status-seq", "status seq: login + STATUS, 1 thread", None),
        ("status-x4", "status x4: login + STATUS, 4 threads", None),
        ("imapclient-x4", "imapclient x4: the same with imapclient", None),
    ]
    for w in workers:
        for phase in ("a", "b", "c"):
            keys.append((f"{phase}-w{w}", PHASES[phase], w))
    for key, label, w in keys:
        phase = key.split("-w")[0] if w is not None else key
        mine = [r for r in runs if r["phase"] == phase and r.get("workers") == w]
        if not mine:
            continue
        good = [r for r in mine if r["ok"]]
        row = {"label": label, "workers": w, "runs": len(mine), "ok_runs": len(good)}
        if good:
            seconds = [r["seconds"] for r in good]
            row["best_s"] = round(min(seconds), 3)
            row["median_s"] = round(statistics.median(seconds), 3)
            for field in ("cpu_s", "server_cpu_s", "peak_rss_mb", "inner_seconds", "load_1m"):
                values = [r[field] for r in good if r.get(field) is not None]
                if values:
                    row[field] = round(statistics.median(values), 3)
        row["notes"] = sorted({r["note"] for r in mine if r["note"]})
        groups[key] = row
    return groups


def ratios(groups: dict, workers: list[int]) -> dict:
    out = {}
    for w in workers:
        for phase in ("b", "c"):
            top = groups.get(f"{phase}-w{w}", {}).get("median_s")
            if not top:
                continue
            for base in ("status-seq", "status-x4", "imapclient-x4", "startup"):
                bottom = groups.get(base, {}).get("median_s")
                if bottom:
                    out[f"{phase} w={w} / {base}"] = round(top / bottom, 2)
    return out


def print_table(groups: dict, ratio: dict, workers: list[int], accounts: int) -> None:
    print(f"\n== {accounts} accounts; seconds are wall time of the whole child process ==")
    print(
        f"   {'what':<42} {'workers':>7} {'runs':>5} {'best s':>8} {'median s':>9} {'CPU s':>7} "
        f"{'server CPU s':>12} {'RSS MB':>7} {'load':>5}"
    )

    def fmt(value, spec: str) -> str:
        return format(value, spec) if value is not None else "-"

    for row in groups.values():
        w = "" if row["workers"] is None else str(row["workers"]) + ("*" if row["workers"] == DEFAULT_WORKERS else "")
        runs = f"{row['ok_runs']}/{row['runs']}" if row["ok_runs"] != row["runs"] else str(row["runs"])
        print(
            f"   {row['label']:<42} {w:>7} {runs:>5} {fmt(row.get('best_s'), '8.2f')} "
            f"{fmt(row.get('median_s'), '9.2f')} {fmt(row.get('cpu_s'), '7.2f')} "
            f"{fmt(row.get('server_cpu_s'), '12.2f')} {fmt(row.get('peak_rss_mb'), '7.1f')} "
            f"{fmt(row.get('load_1m'), '5.2f')}"
        )
        for note in row["notes"]:
            print(f"      {note}")
    print("   * espomail's default (ESPOMAIL_WORKERS unset); load: 1-minute load average after the runs")
    inner = [(k, groups[k].get("inner_seconds")) for k in ("status-seq", "status-x4", "imapclient-x4") if k in groups]
    if inner:
        print(
            "   baselines without the interpreter's start: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in inner if v is not None)
        )
    for key, row in groups.items():
        if key in ("status-seq", f"b-w{DEFAULT_WORKERS}") and row.get("median_s"):
            cpu = f", client CPU {row['cpu_s'] / accounts * 1000:.1f} ms" if row.get("cpu_s") is not None else ""
            server = row.get("server_cpu_s")
            server = f", Dovecot CPU {server / accounts * 1000:.1f} ms" if server is not None else ""
            name = "(b) steady state" if key.startswith("b-") else "status seq"
            print(f"   per account, {name}: {row['median_s'] / accounts * 1000:.1f} ms wall{cpu}{server}")
    if ratio:
        print("\n   ratios (x = times as long), medians:")
        for w in workers:
            for phase in ("b", "c"):
                parts = [
                    f"{base} {ratio[name]:.1f}x"
                    for base in ("status-seq", "status-x4", "imapclient-x4", "startup")
                    if (name := f"{phase} w={w} / {base}") in ratio
                ]
                if parts:
                    print(f"     ({phase}) w={w}: " + ", ".join(parts))


def print_targets(groups: dict) -> dict:
    verdict = {}
    print("\n   targets (default workers, median):")
    for phase, limit in TARGETS.items():
        row = groups.get(f"{phase}-w{DEFAULT_WORKERS}")
        if row is None:
            verdict[phase] = {"target_s": limit, "median_s": None, "met": None}
            print(f"     {PHASES[phase]:<34} not measured (add {DEFAULT_WORKERS} to --workers)")
            continue
        median = row.get("median_s")
        met = median is not None and median < limit
        verdict[phase] = {"target_s": limit, "median_s": median, "best_s": row.get("best_s"), "met": met}
        shown = f"{median:.2f} s" if median is not None else "no valid run"
        print(f"     {PHASES[phase]:<34} {shown:>9}  target < {limit:.0f} s  {'MET' if met else 'MISSED'}")
    return verdict


def print_profile(result: dict) -> None:
    print(
        f"\n== profile of one more {PHASES[result['phase']]} fetch (workers={result['workers']}): "
        f"{result['seconds_under_profiler']} s under cProfile; {result['file']} =="
    )
    print("   times are summed over threads (thread-seconds): a thread waiting for a lock or the network adds up")
    for key, title in (("top_tottime", "own time"), ("top_cumulative", "cumulative")):
        print(f"   top by {title}:")
        for row in result.get(key, []):
            print(f"     {row['tottime']:8.2f} {row['cumulative']:8.2f} {row['calls']:>8}  {row['function']}")


# -- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    OUT.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    info = machine(args.workdir)
    info["bytecode"] = bytecode_note(args.bytecode)
    info["dovecot_login"] = f"{args.dovecot_login}: {LOGIN_MODES[args.dovecot_login]}"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        print_machine(info)
    print(text.getvalue().rstrip("\n"))
    print(f"  {'bytecode':<17} {info['bytecode']}")
    print(f"  {'dovecot_login':<17} {info['dovecot_login']}\n")
    print(
        "NOTE: absolute times depend on the machine and its load (see the load averages);"
        "\n      compare the ratios, which are against baselines measured in this same run."
    )
    results: dict = {"started": stamp, "machine": info, "args": _args_json(args), "load": {}}
    out_path = OUT / f"accounts-{stamp}.json"
    bench = Bench(args)
    total = args.accounts * args.messages

    def phase_start(name: str, text: str) -> None:
        results["load"][name] = [round(x, 2) for x in os.getloadavg()]
        print(f"\n-- {text} (load average {' '.join(str(x) for x in results['load'][name])})", flush=True)

    try:
        phase_start("setup", f"setup, not timed: Dovecot, {total:,} messages, {args.accounts} accounts via the CLI")
        results["setup"] = bench.setup()
        warm = status_pass(bench.dovecot.host, bench.dovecot.port, bench.names, 4)
        results["setup"]["warmup_s"] = round(warm["seconds"], 2)

        phase_start("baselines", "baselines")
        bench.baseline("startup", [bench.binary, "--help"], args.baseline_repeat)
        baselines = (("status-seq", 1, "raw"), ("status-x4", 4, "raw"), ("imapclient-x4", 4, "imapclient"))
        for phase, threads, kind in baselines:
            bench.baseline(phase, bench.status_argv(threads, kind), args.baseline_repeat, bench.check_status)

        phase_start("a", f"(a) first fetch: {args.accounts} accounts, {total:,} messages")
        for w in args.workers:
            bench.fetch("a", w, bench.pending(w))

        phase_start("b", f"(b) steady state, no new mail, {args.steady_repeat} rounds")
        for i in range(args.steady_repeat):
            for w in args.workers:
                bench.fetch("b", w, bench.pending(w), repeat=i)

        phase_start("c", f"(c) one new message in {args.new_accounts} accounts, {args.new_repeat} rounds")
        for i in range(args.new_repeat):
            chosen = bench.add_new_mail(i)
            for w in args.workers:
                bench.fetch("c", w, bench.pending(w), repeat=i, accounts_with_mail=chosen)

        results["load"]["end"] = [round(x, 2) for x in os.getloadavg()]
        results["runs"] = bench.runs
        groups = summarize(bench.runs, args.workers)
        results["summary"] = groups
        results["ratios"] = ratios(groups, args.workers)
        print_table(groups, results["ratios"], args.workers, args.accounts)
        results["targets"] = print_targets(groups)
        out_path.write_text(json.dumps(results, indent=1) + "\n")

        missed = any(t["met"] is False for t in results["targets"].values())
        if args.profile == "always" or (args.profile == "auto" and missed):
            w = DEFAULT_WORKERS if DEFAULT_WORKERS in args.workers else args.workers[0]
            results["profiles"] = [bench.profile("b", w, bench.pending(w), stamp)]
            bench.add_new_mail(args.new_repeat)
            results["profiles"].append(bench.profile("c", w, bench.pending(w), stamp))
            for result in results["profiles"]:
                print_profile(result)
    finally:
        bench.close()
        results["runs"] = bench.runs
        out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nResults: {out_path.relative_to(ROOT)}")
    return 0


def _args_json(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("status")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accounts", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--accounts", type=int, default=200, metavar="N", help="accounts (Dovecot users)")
    parser.add_argument("--messages", type=int, default=5, metavar="M", help="messages per account at the start")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8], metavar="W", help="ESPOMAIL_WORKERS")
    parser.add_argument("--steady-repeat", type=int, default=5, metavar="K", help="(b) rounds")
    parser.add_argument("--new-repeat", type=int, default=3, metavar="K", help="(c) rounds")
    parser.add_argument("--new-accounts", type=int, default=10, metavar="K", help="(c) accounts with a new message")
    parser.add_argument("--baseline-repeat", type=int, default=3, metavar="K", help="runs of each baseline")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile one (b) and one (c) fetch: auto = when a target is missed",
    )
    parser.add_argument("--profile-top", type=int, default=15, metavar="N", help="functions shown per profile list")
    parser.add_argument(
        "--bytecode",
        choices=("cache", "env"),
        default="cache",
        help="cache: children keep .pyc files in bench/out/pycache (as an installed espomail); "
        "env: the environment's own setting (e.g. PYTHONDONTWRITEBYTECODE=1: every start compiles)",
    )
    parser.add_argument(
        "--dovecot-login",
        choices=tuple(LOGIN_MODES),
        default="reused",
        help="the server's processes: reused (the test fixture's, default), security (Dovecot's out-of-the-box: "
        "a login process per connection) or performance (reused, imap pre-forked)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server and stores)")
    parser.add_argument("--workdir", type=Path, default=OUT / "work", help="where the server and the stores live")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child process")
    parser.add_argument(
        "--status-client", nargs=5, metavar=("HOST", "PORT", "THREADS", "N", "KIND"), help=argparse.SUPPRESS
    )
    parser.add_argument("--profile-child", metavar="OUT", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)

    if args.profile_child:
        return profile_child(args.profile_child, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.status_client:
        host, port, threads, n, kind = args.status_client
        result = status_pass(host, int(port), account_names(int(n)), int(threads), kind)
        print(json.dumps(result))
        return 0
    args.workers = list(dict.fromkeys(max(1, w) for w in args.workers))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
