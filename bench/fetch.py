"""The fetch benchmark: espomail against the limit and against mbsync, in one run.

For each mailbox size, one fresh private Dovecot (``espomail.testing.dovecot``) serves a
generated mailbox (``bench.mailgen``), and in the same run this script times:

limit     a minimal client on a raw socket: LOGIN, SELECT INBOX, one pipelined
          ``UID FETCH 1:* BODY.PEEK[]``; it reads the literal sizes and discards the bytes.
          What the server and the loopback deliver; no client can be faster.
mbsync    isync with its default durable settings (FSync yes), pulling into an empty Maildir.
getmail   getmail6 (``--getmail``; slow), SimpleIMAPRetriever into a Maildir, read_all.
espomail  the real CLI, ``espomail fetch --json``, into a fresh SQLite store.
espomail-pg  the same into a fresh database of a private PostgreSQL (started once per run
          on the same disk, with durable settings: fsync, synchronous_commit and
          full_page_writes on, everything else PostgreSQL's defaults). Target: at least
          0.6 of the SQLite speed (espomail / espomail-pg time >= 0.6).

Figures are printed as ratios against the baselines measured in the same run, because
absolute figures depend on the machine (CPU, disk, page cache, load).

    .venv/bin/python -m bench.fetch --messages 1000 10000 [--repeat 3] [--getmail] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pwd
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
USER = "bench"
PASSWORD = "secret"
TIMEOUT_S = 3600

TOOLS = ("limit", "mbsync", "getmail", "espomail", "espomail-pg")


# -- the limit: a minimal raw-socket client ----------------------------------------------


def raw_fetch(host: str, port: int, user: str, password: str) -> dict:
    """LOGIN, SELECT INBOX, one ``UID FETCH 1:* BODY.PEEK[]``; count and discard literals."""
    started = time.perf_counter()
    sock = socket.create_connection((host, port), timeout=300)
    reader = sock.makefile("rb", buffering=1 << 20)
    sink = bytearray(1 << 20)
    view = memoryview(sink)

    def command(tag: bytes, text: bytes) -> None:
        sock.sendall(tag + b" " + text + b"\r\n")
        while True:
            line = reader.readline()
            if not line:
                raise ConnectionError(f"connection closed after {text.split()[0]!r}")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line.decode(errors="replace").strip())
                return

    if not reader.readline().startswith(b"* OK"):
        raise RuntimeError("no IMAP greeting")
    command(b"a", b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
    command(b"b", b"SELECT INBOX")
    sock.sendall(b"c UID FETCH 1:* BODY.PEEK[]\r\n")
    messages = payload = 0
    while True:
        line = reader.readline()
        if not line:
            raise ConnectionError("connection closed during FETCH")
        if line.startswith(b"c "):
            if not line.startswith(b"c OK"):
                raise RuntimeError(line.decode(errors="replace").strip())
            break
        while line.endswith(b"}\r\n"):
            size = int(line[line.rindex(b"{") + 1 : -3])
            left = size
            while left:
                got = reader.readinto(view[: min(left, len(sink))])
                if not got:
                    raise ConnectionError("connection closed inside a literal")
                left -= got
            messages += 1
            payload += size
            line = reader.readline()  # the rest of the FETCH response, e.g. b")\r\n"
    elapsed = time.perf_counter() - started
    sock.sendall(b"d LOGOUT\r\n")
    sock.close()
    return {"messages": messages, "bytes": payload, "seconds": elapsed}


# -- running children -----------------------------------------------------------------


GNU_TIME = "/usr/bin/time"


class Child:
    """A finished child process: wall time, CPU time and peak RSS.

    The peak RSS comes from GNU time (Debian package ``time``) when it is installed: a
    child forked from this (large) Python process inherits its RSS high-water mark into
    ``ru_maxrss`` (Linux records the old memory's peak at execve), so ``os.wait4`` alone
    would report at least this process's own peak. GNU time is tiny, and it reports the
    peak of the program it forks (and of that program's reaped children). Without it the
    figure is ``os.wait4``'s, marked as an upper bound. ``peak_rss=False`` skips GNU time
    (one process less in the timing, for short commands).

    The wait is a blocking ``os.wait4`` (a kill timer enforces the timeout):
    ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, which would round every
    figure up to a multiple of 50 ms.
    """

    def __init__(
        self, argv: list[str], env: dict[str, str] | None, cwd: Path, timeout: float, peak_rss: bool = True
    ) -> None:
        self.argv = argv
        stats = None
        if peak_rss and os.access(GNU_TIME, os.X_OK):
            handle, stats = tempfile.mkstemp(prefix="bench-time-")
            os.close(handle)
            argv = [GNU_TIME, "-f", "%M", "-o", stats, *argv]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            timer = threading.Timer(timeout, _kill, (proc.pid,))
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            self.seconds = time.perf_counter() - started
            proc.returncode = self.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            self.stdout = out.read().decode(errors="replace")
            self.stderr = err.read().decode(errors="replace")
        self.cpu_s = usage.ru_utime + usage.ru_stime
        # ru_maxrss is in KiB on Linux; wait4 also covers the child's reaped descendants.
        self.peak_rss_mb = usage.ru_maxrss / 1024
        self.rss_exact = False
        if stats:
            lines = Path(stats).read_text().split()
            os.unlink(stats)
            if lines and lines[-1].isdigit():  # "Command exited with non-zero status" comes first
                self.peak_rss_mb = int(lines[-1]) / 1024
                self.rss_exact = True

    def error_line(self) -> str:
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1][:300]
        return f"exit status {self.returncode}"


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class ServerCpu:
    """CPU seconds of Dovecot's reaped children (imap processes), from the master's stat."""

    def __init__(self, master_pid: int) -> None:
        self.pid = master_pid
        self.ticks = os.sysconf("SC_CLK_TCK")

    def read(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[13]) + int(fields[14])) / self.ticks  # cutime + cstime

    def settled(self) -> float | None:
        """Wait until the imap process of the last client has exited and been reaped."""
        last, stable = self.read(), 0
        deadline = time.monotonic() + 5
        while stable < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.read()
            stable = stable + 1 if now == last else 0
            last = now
        return last


def _result(tool: str, **fields) -> dict:
    base = {
        "tool": tool,
        "ok": False,
        "seconds": None,
        "wall_seconds": None,
        "cpu_s": None,
        "server_cpu_s": None,
        "peak_rss_mb": None,
        "messages": None,
        "note": "",
    }
    base.update(fields)
    return base


# -- the contenders -------------------------------------------------------------------


def run_limit(dovecot, n: int, work: Path, timeout: float) -> dict:
    child = Child(
        [sys.executable, "-m", "bench.fetch", "--raw-client", dovecot.host, str(dovecot.port), USER],
        None,
        ROOT,
        timeout,
    )
    if child.returncode != 0:
        return _result("limit", note=child.error_line())
    data = json.loads(child.stdout)
    return _result(
        "limit",
        ok=data["messages"] == n,
        # The transfer itself, without the Python interpreter's start (in wall_seconds).
        seconds=data["seconds"],
        wall_seconds=child.seconds,
        cpu_s=child.cpu_s,
        peak_rss_mb=child.peak_rss_mb,
        peak_rss_exact=child.rss_exact,
        messages=data["messages"],
        bytes=data["bytes"],
        note="" if data["messages"] == n else f"got {data['messages']} messages, expected {n}",
    )


def mbsync_version() -> tuple[int, ...]:
    text = _command_version(["mbsync", "--version"])  # "isync 1.4.4"
    try:
        return tuple(int(part) for part in text.split()[-1].split(".")[:2])
    except ValueError:
        return (1, 4)


def mbsync_config(dovecot, maildir: Path, version: tuple[int, ...] = (1, 4)) -> str:
    """A pull into an empty Maildir with isync's defaults (FSync yes: durable).

    isync 1.5 renamed SSLType to TLSType; before 1.4, Far/Near were Master/Slave.
    """
    security = "TLSType" if version >= (1, 5) else "SSLType"
    far, near = ("Far", "Near") if version >= (1, 4) else ("Master", "Slave")
    return f"""# written by bench/fetch.py for isync {".".join(map(str, version))}: default settings
FSync yes

IMAPStore far
Host {dovecot.host}
Port {dovecot.port}
User {USER}
Pass {PASSWORD}
{security} None

MaildirStore near
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel bench
{far} :far:
{near} :near:
Sync Pull
Create {near}
SyncState *
"""


def run_mbsync(dovecot, n: int, work: Path, timeout: float) -> dict:
    binary = shutil.which("mbsync")
    if not binary:
        return _result("mbsync", note="not installed (apt-get install -y isync)")
    maildir = work / "maildir"
    maildir.mkdir(parents=True)
    config = work / "mbsyncrc"
    config.write_text(mbsync_config(dovecot, maildir, mbsync_version()))
    env = {**os.environ, "HOME": str(work)}
    child = Child([binary, "-c", str(config), "bench"], env, work, timeout)
    count = _maildir_count(maildir / "INBOX")
    if child.returncode != 0:
        return _result("mbsync", note=child.error_line(), messages=count)
    return _done("mbsync", child, count, n)


def run_getmail(dovecot, n: int, work: Path, timeout: float) -> dict:
    binary = shutil.which("getmail")
    if not binary:
        return _result("getmail", note="not installed (apt-get install -y getmail6)")
    maildir = work / "maildir"
    for sub in ("", "cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    deliver_as = ""
    if os.geteuid() == 0:  # getmail refuses to deliver as root: it forks a child per message
        nobody = pwd.getpwnam("nobody")
        for sub in ("", "cur", "new", "tmp"):
            os.chown(maildir / sub, nobody.pw_uid, nobody.pw_gid)
        deliver_as = "user = nobody\n"
    config = work / "getmailrc"
    config.write_text(
        f"""[retriever]
type = SimpleIMAPRetriever
server = {dovecot.host}
port = {dovecot.port}
username = {USER}
password = {PASSWORD}
mailboxes = ("INBOX",)

[destination]
type = Maildir
path = {maildir}/
{deliver_as}
[options]
read_all = true
delete = false
verbose = 0
message_log_syslog = false
"""
    )
    env = {**os.environ, "HOME": str(work)}
    child = Child([binary, "--rcfile", str(config), "--getmaildir", str(work)], env, work, timeout)
    count = _maildir_count(maildir)
    if child.returncode != 0:
        return _result("getmail", note=child.error_line(), messages=count)
    return _done("getmail", child, count, n)


ESPOMAIL = None  # --espomail


def espomail_binary() -> str | None:
    if ESPOMAIL:
        return ESPOMAIL
    local = Path(sys.executable).parent / "espomail"
    return str(local) if local.exists() else shutil.which("espomail")


def run_espomail(dovecot, n: int, work: Path, timeout: float, database: str | None = None) -> dict:
    tool = "espomail-pg" if database else "espomail"
    binary = espomail_binary()
    if not binary:
        return _result(tool, note="not available (no espomail executable next to Python)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPOMAIL_")}
    # As an installed espomail starts (pip compiles it): a bytecode cache, in bench/out.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(__file__).resolve().parent / "out" / "pycache")
    env.update(
        ESPOMAIL_DB=database or str(work / "espomail.db"),
        XDG_CONFIG_HOME=str(work / "config"),
        XDG_DATA_HOME=str(work / "data"),
        HOME=str(work),
        BENCH_PASS=PASSWORD,
        ESPOMAIL_MAX_PER_RUN=str(max(n, 1000)),
    )
    setup = [
        [binary, "init"],
        [
            binary, "account", "add-group", "bench",
            "--address", "bench@example.com",
            "--host", dovecot.host,
            "--port", str(dovecot.port),
            "--security", "none",
            "--username", USER,
            "--password-env", "BENCH_PASS",
            "--fetch-since", "2000-01-01",
        ],
    ]  # fmt: skip
    for argv in setup:
        step = Child(argv, env, work, 300)
        if step.returncode != 0:
            return _result(tool, note=f"not available ({' '.join(argv[1:3])}: {step.error_line()})")
    db_cpu = POSTGRES.cpu() if database else None
    child = Child([binary, "fetch", "--json"], env, work, timeout)
    if child.returncode != 0:
        return _result(tool, note=f"not available (fetch: {child.error_line()})", wall_seconds=child.seconds)
    try:
        summary = json.loads(child.stdout)
    except ValueError:
        return _result(tool, note=f"fetch --json printed no JSON: {child.stdout[:200]!r}")
    new = summary.get("new")
    if new is None:
        new = sum(account.get("new", 0) for account in summary.get("accounts", []))
    result = _done(tool, child, new, n)
    if database:
        result["db_cpu_s"] = round(POSTGRES.cpu() - db_cpu, 2)
        result["db_mb"] = POSTGRES.database_mb(database)
    result["duplicates"] = summary.get("duplicates")
    result["failed"] = summary.get("failed")
    if new != n:
        result["note"] = (
            f"WARNING: new={new}, expected {n} (duplicates={summary.get('duplicates')}, failed={summary.get('failed')})"
        )
    return result


def _done(tool: str, child: Child, count: int, n: int) -> dict:
    result = _result(
        tool,
        ok=count == n,
        seconds=child.seconds,
        wall_seconds=child.seconds,
        cpu_s=child.cpu_s,
        peak_rss_mb=child.peak_rss_mb,
        peak_rss_exact=child.rss_exact,
        messages=count,
        note="" if count == n else f"WARNING: {count} messages, expected {n}",
    )
    tail = [line for line in child.stderr.splitlines() if line.strip()][-3:]
    if tail:
        result["stderr_tail"] = tail
    return result


def _maildir_count(maildir: Path) -> int:
    return sum(len(os.listdir(maildir / sub)) for sub in ("cur", "new") if (maildir / sub).is_dir())


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class BenchPostgres:
    """One private PostgreSQL for the run (espomail.testing.postgres) on the work disk, made
    durable like a production server (the test fixture turns fsync off); a database per run."""

    def __init__(self, base: Path) -> None:
        from espomail.testing.postgres import Postgres

        self.server = Postgres(base=base)
        self.names = iter(range(1, 1_000_000))
        self.started = False

    def start(self) -> None:
        import psycopg

        self.server.start()
        self.started = True
        with psycopg.connect(self.server.url(), autocommit=True) as conn:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(f"ALTER SYSTEM SET {setting} = on")
            conn.execute("SELECT pg_reload_conf()")
            self.version = conn.execute("SHOW server_version").fetchone()[0]
        pid = int((self.server.data / "postmaster.pid").read_text().split()[0])
        self.cpu_of = ServerCpu(pid)

    def new_database(self) -> str:
        return self.server.create_database(f"bench_{next(self.names)}")

    def drop(self, url: str) -> None:
        self.server.drop_database(url.rsplit("/", 1)[1])

    def cpu(self) -> float:
        """CPU seconds of the server's finished backends (a client's backend ends with it)."""
        return self.cpu_of.settled() or 0.0

    def database_mb(self, url: str) -> float:
        import psycopg

        with psycopg.connect(self.server.url(), autocommit=True) as conn:
            size = conn.execute("SELECT pg_database_size(%s)", (url.rsplit("/", 1)[1],)).fetchone()[0]
        return round(size / 1e6, 1)

    def stop(self) -> None:
        if self.started:
            self.server.stop()
            self.started = False
        shutil.rmtree(self.server.base, ignore_errors=True)  # given a base, the fixture leaves it


POSTGRES: BenchPostgres | None = None


def run_espomail_pg(dovecot, n: int, work: Path, timeout: float) -> dict:
    if POSTGRES is None:
        return _result("espomail-pg", note="not available (no PostgreSQL: apt-get install -y postgresql)")
    url = POSTGRES.new_database()
    try:
        return run_espomail(dovecot, n, work, timeout, database=url)
    finally:
        POSTGRES.drop(url)


RUNNERS = {
    "limit": run_limit,
    "mbsync": run_mbsync,
    "getmail": run_getmail,
    "espomail": run_espomail,
    "espomail-pg": run_espomail_pg,
}


# -- the machine ----------------------------------------------------------------------


def _command_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else f"unavailable (exit {done.returncode})"


def _mount_of(path: Path) -> tuple[str, str, str]:
    best = ("?", "?", "?")
    length = -1
    target = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, fstype, options = line.split()[:4]
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > length:
            best, length = (device, fstype, options), len(mount)
    return best


def machine(work: Path) -> dict:
    info: dict = {}
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    info["cpu"] = models[0] if models else platform.processor() or "?"
    info["cores"] = os.cpu_count()
    info["cores_usable"] = len(os.sched_getaffinity(0))
    meminfo = dict(
        (line.split(":")[0], int(line.split()[1])) for line in Path("/proc/meminfo").read_text().splitlines()
    )
    info["ram_gb"] = round(meminfo["MemTotal"] / 1024 / 1024, 1)
    info["ram_available_gb"] = round(meminfo.get("MemAvailable", 0) / 1024 / 1024, 1)
    info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    os_release = Path("/etc/os-release")
    pretty = "?"
    if os_release.exists():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip('"')
    info["os"] = f"{pretty}, Linux {platform.release()}"
    virt = shutil.which("systemd-detect-virt")
    if virt:
        info["virtualization"] = _command_version([virt])
    info["python"] = f"{platform.python_version()} ({sys.executable})"
    import sqlite3

    info["sqlite"] = sqlite3.sqlite_version
    if POSTGRES is not None:
        info["postgresql"] = f"{POSTGRES.version} (private, durable: fsync and synchronous_commit on)"
    info["dovecot"] = _command_version([shutil.which("dovecot") or "/usr/sbin/dovecot", "--version"])
    info["mbsync"] = _command_version(["mbsync", "--version"])
    info["getmail"] = _command_version(["getmail", "--version"])
    binary = espomail_binary()
    info["espomail"] = _command_version([binary, "--version"]) if binary else "unavailable"
    info["git"] = _command_version(["git", "-C", str(ROOT), "describe", "--always", "--dirty"])
    usage = shutil.disk_usage(work)
    device, fstype, options = _mount_of(work)
    info["disk"] = (
        f"{work}: {fstype} on {device} ({options.split(',')[0]}), "
        f"{usage.free / 1e9:.0f} GB free of {usage.total / 1e9:.0f} GB"
    )
    return info


def print_machine(info: dict) -> None:
    print("Machine")
    for key in (
        "cpu", "cores", "cores_usable", "ram_gb", "ram_available_gb", "load_average", "os",
        "virtualization", "python", "sqlite", "postgresql", "dovecot", "mbsync", "getmail", "espomail", "git", "disk",
    ):  # fmt: skip
        if key in info:
            value = info[key]
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            print(f"  {key:<17} {value}")
    print()


# -- the benchmark --------------------------------------------------------------------


def bench_size(n: int, args: argparse.Namespace, tools: list[str]) -> dict:
    from bench import mailgen
    from espomail.testing.dovecot import Dovecot

    mailbox = mailgen.ensure_mailbox(n, args.seed)
    work = Path(tempfile.mkdtemp(prefix=f"fetch-{n}-", dir=args.workdir))
    os.chmod(work, 0o755)  # Dovecot's unprivileged processes must reach work/dovecot
    dovecot = Dovecot(base=work / "dovecot", users=[USER])
    report: dict = {"messages": n, "mailbox": mailbox.as_dict(), "workdir": str(work), "runs": []}
    try:
        dovecot.start()
        mailgen.load_into(dovecot, USER, n, args.seed)  # checks STATUS MESSAGES == n
        server = ServerCpu(dovecot._pid or 0)
        # Warm up, untimed: every tool then meets a hot page cache and Dovecot's built index.
        started = time.perf_counter()
        for path in mailbox.files:
            path.read_bytes()
        warm = raw_fetch(dovecot.host, dovecot.port, USER, PASSWORD)
        report["warmup_s"] = round(time.perf_counter() - started, 2)
        if warm["bytes"] != mailbox.wire_bytes or warm["messages"] != n:
            print(
                f"  WARNING: warm-up fetched {warm['messages']} messages, {warm['bytes']} bytes; "
                f"expected {n}, {mailbox.wire_bytes}"
            )
        server.settled()
        unavailable: dict[str, str] = {}
        for repeat in range(args.repeat):
            for tool in tools:
                if tool in unavailable:
                    continue
                target = work / f"{tool}-{repeat}"
                target.mkdir()
                os.sync()
                before = server.settled()
                try:
                    result = RUNNERS[tool](dovecot, n, target, args.timeout)
                except Exception as exc:  # one contender's failure must not end the benchmark
                    note = f"failed: {type(exc).__name__}: {exc}"
                    if tool.startswith("espomail"):
                        note = f"not available ({type(exc).__name__}: {exc})"
                    result = _result(tool, note=note)
                after = server.settled()
                if before is not None and after is not None:
                    result["server_cpu_s"] = round(after - before, 2)
                result["repeat"] = repeat
                result["written_mb"] = round(_tree_bytes(target) / 1e6, 1)
                report["runs"].append(result)
                _print_progress(result)
                if tool.startswith("espomail") and result["note"].startswith("not available"):
                    unavailable[tool] = result["note"]
                if not args.keep:
                    shutil.rmtree(target, ignore_errors=True)
    finally:
        dovecot.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["median"] = _medians(report["runs"], mailbox.wire_bytes, n)
    report["ratios"] = _ratios(report["median"])
    return report


def _print_progress(result: dict) -> None:
    if result["seconds"] is not None and result["ok"]:
        text = f"{result['seconds']:.2f} s"
    else:
        text = "failed"
    note = f"  {result['note']}" if result["note"] else ""
    print(f"  run {result['repeat'] + 1}: {result['tool']:<8} {text}{note}", flush=True)


def _medians(runs: list[dict], payload: int, n: int) -> dict:
    medians: dict = {}
    for tool in TOOLS:
        mine = [r for r in runs if r["tool"] == tool]
        if not mine:
            continue
        good = [r for r in mine if r["ok"] and r["seconds"]]
        if not good:
            medians[tool] = {"ok": False, "note": mine[-1]["note"], "runs": len(mine)}
            continue
        row: dict = {"ok": True, "runs": len(good)}
        for key in (
            "seconds",
            "wall_seconds",
            "cpu_s",
            "server_cpu_s",
            "peak_rss_mb",
            "written_mb",
            "db_cpu_s",
            "db_mb",
        ):
            values = [r[key] for r in good if r.get(key) is not None]
            row[key] = round(statistics.median(values), 3) if values else None
        row["peak_rss_exact"] = all(r.get("peak_rss_exact") for r in good)
        row["msg_per_s"] = round(n / row["seconds"], 1)
        row["mb_per_s"] = round(payload / 1e6 / row["seconds"], 1)
        row["note"] = "; ".join(sorted({r["note"] for r in mine if r["note"]}))
        medians[tool] = row
    return medians


def _ratios(medians: dict) -> dict:
    def ratio(a: str, b: str, key: str = "seconds") -> float | None:
        if medians.get(a, {}).get("ok") and medians.get(b, {}).get("ok"):
            top, bottom = medians[a].get(key), medians[b].get(key)
            if top and bottom:
                return round(top / bottom, 2)
        return None

    pairs = [
        ("espomail", "limit"),
        ("espomail", "mbsync"),
        ("espomail-pg", "espomail"),
        ("espomail-pg", "limit"),
        ("mbsync", "limit"),
        ("getmail", "limit"),
        ("espomail", "getmail"),
    ]
    ratios = {f"{a}/{b} time": ratio(a, b) for a, b in pairs}
    # PostgreSQL's speed as a share of SQLite's (target >= 0.6): the inverse time ratio.
    ratios["postgresql/sqlite speed"] = ratio("espomail", "espomail-pg")
    ratios["espomail/mbsync peak RSS"] = ratio("espomail", "mbsync", "peak_rss_mb")
    return {k: v for k, v in ratios.items() if v is not None}


def print_report(report: dict, repeat: int) -> None:
    box = report["mailbox"]
    runs = f"median of {repeat} runs" if repeat > 1 else "one run"
    print(
        f"\n== {report['messages']:,} messages: {box['wire_bytes'] / 1e6:.1f} MB as sent by IMAP "
        f"(median {box['median_bytes'] / 1e3:.1f} KB, {box['with_attachment']} with 0.5-5 MB attachments); "
        f"{runs} =="
    )
    print(f"   warm-up (page cache + Dovecot's first index and fetch, untimed): {report['warmup_s']} s")
    print(
        f"   {'tool':<11} {'seconds':>8} {'msg/s':>7} {'MB/s':>7} {'CPU s':>7} {'server CPU s':>12} "
        f"{'peak RSS MB':>12} {'written MB':>11}"
    )

    def fmt(value, spec: str) -> str:
        return format(value, spec) if value is not None else "-"

    for tool, row in report["median"].items():
        if not row["ok"]:
            print(f"   {tool:<11} {'-':>8}   {row['note']}")
            continue
        print(
            f"   {tool:<11} {fmt(row['seconds'], '8.2f')} {fmt(row['msg_per_s'], '7.0f')} "
            f"{fmt(row['mb_per_s'], '7.1f')} {fmt(row['cpu_s'], '7.2f')} {fmt(row['server_cpu_s'], '12.2f')} "
            f"{fmt(row['peak_rss_mb'], '11.1f')}{' ' if row['peak_rss_exact'] else '*'} "
            f"{fmt(row['written_mb'], '11.0f')}"
            + (f"   PostgreSQL CPU {row['db_cpu_s']:.2f} s, database {row['db_mb']:.0f} MB" if row.get("db_mb") else "")
            + (f"   {row['note']}" if row["note"] else "")
        )
    if any(row["ok"] and not row["peak_rss_exact"] for row in report["median"].values()):
        print("   * upper bound: includes this script's own RSS (install GNU time: apt-get install time)")
    if report["ratios"]:
        print(
            "   ratios (x = times as long / as much): "
            + ", ".join(f"{name} {value:.2f}x" for name, value in report["ratios"].items())
        )
    espo = report["median"].get("espomail")
    if espo and not espo["ok"]:
        print(f"   espomail: {espo['note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[1000, 10000], metavar="N")
    parser.add_argument("--repeat", type=int, default=1, metavar="K", help="runs per tool; the median counts")
    parser.add_argument("--getmail", action="store_true", help="also time getmail6 (slow: minutes for 10,000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated mailbox")
    parser.add_argument("--only", nargs="+", choices=TOOLS, help="time only these tools")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=OUT / "work",
        help="where the servers and the destinations live (default bench/out/work; "
        "keep it on the disk you want to measure)",
    )
    parser.add_argument("--espomail", metavar="PATH", help="the espomail executable (default: next to Python)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per tool run")
    parser.add_argument("--raw-client", nargs=3, metavar=("HOST", "PORT", "USER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.raw_client:
        host, port, user = args.raw_client
        print(json.dumps(raw_fetch(host, int(port), user, PASSWORD)))
        return 0

    global ESPOMAIL, POSTGRES
    ESPOMAIL = args.espomail
    tools = list(args.only or [t for t in TOOLS if t != "getmail" or args.getmail])
    if "limit" not in tools:
        tools.insert(0, "limit")  # every ratio needs it
    args.workdir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if "espomail-pg" in tools:
        try:
            POSTGRES = BenchPostgres(Path(tempfile.mkdtemp(prefix="postgres-", dir=args.workdir)))
            POSTGRES.start()
        except Exception as exc:  # noqa: BLE001 - the other contenders still run
            print(f"PostgreSQL not available: {exc}")
            POSTGRES = None
    try:
        return _run(args, tools, stamp)
    finally:
        if POSTGRES is not None:
            POSTGRES.stop()


def _run(args: argparse.Namespace, tools: list[str], stamp: str) -> int:
    info = machine(args.workdir)
    print_machine(info)
    print(
        "NOTE: these figures are from one run on a machine that may be loaded (see the load average);"
        "\n      absolute times are not comparable across machines - compare the ratios, which are"
        "\n      against baselines measured in this same run."
        + (f" Median of {args.repeat} runs per tool." if args.repeat > 1 else " Use --repeat 3 for medians.")
    )
    results = {
        "started": stamp,
        "machine": info,
        "args": {
            "messages": args.messages,
            "repeat": args.repeat,
            "tools": tools,
            "seed": args.seed,
        },
        "sizes": [],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out_path = OUT / f"fetch-{stamp}.json"
    for n in args.messages:
        print(f"\n-- {n:,} messages: preparing the mailbox and the server", flush=True)
        report = bench_size(n, args, tools)
        report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        print_report(report, args.repeat)
        results["sizes"].append(report)
        out_path.write_text(json.dumps(results, indent=1) + "\n")
    results["self_rusage_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nResults: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
